"""pafpose: multi-person 2D pose estimation with Part Affinity Fields.

``import pafpose`` stays light (numpy only); networks and weights load torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pafpose.decoder import Decoder, DecoderConfig, decode
from pafpose.encoder import Encoder, EncoderConfig, Targets
from pafpose.errors import PafposeError
from pafpose.estimator_config import EstimatorConfig
from pafpose.fields import OPENPOSE_COCO18, FieldSpec
from pafpose.pose import Pose, Poses
from pafpose.skeleton import BODY25, COCO17, COCO18, Skeleton, get_skeleton

if TYPE_CHECKING:
    from pafpose.models import PafModel
    from pafpose.predict import Estimator
    from pafpose.weights import PretrainedCfg

__version__ = "0.1.0"


# Submodules reachable as ``pafpose.draw.poses(...)`` without importing them first; loaded on
# first use, so that ``import pafpose`` stays light.
_SUBMODULES = frozenset({"backends", "checks", "controlnet", "coords", "data", "decoder", "draw", "encoder", "errors",
                         "evaluate", "export", "fields", "formats", "images", "io", "loops", "models", "offline",
                         "openpose", "outputs", "pose", "predict", "preprocess", "skeleton", "synthetic", "train",
                         "tracker", "tracking", "video", "viz", "weights"})


def __getattr__(name: str) -> object:
    """``pafpose.Estimator`` and the submodules are imported on first use (some need torch)."""
    if name == "Estimator":
        from pafpose.predict import Estimator

        return Estimator
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"pafpose.{name}")
    raise AttributeError(f"module 'pafpose' has no attribute {name!r}")


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Architecture names, or with ``pretrained=True`` zoo entries (``arch.tag``), matching ``pattern``."""
    if pretrained:
        from pafpose.weights import list_pretrained

        return list_pretrained(pattern)
    from pafpose.models import list_architectures

    return list_architectures(pattern)


def create_model(name: str, pretrained: bool = False, **kwargs: object) -> PafModel:
    """A network by architecture name, or with ``pretrained=True`` a zoo entry with its weights."""
    if pretrained:
        from pafpose.weights import load

        return load(name, **kwargs)  # type: ignore[arg-type]
    from pafpose.models import build_architecture

    return build_architecture(name, **kwargs)


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The zoo entry ``name`` (a frozen dataclass: files, URLs, hashes, license, accuracy)."""
    from pafpose.weights import get_pretrained_cfg as get

    return get(name)

__all__ = [
    "BODY25",
    "COCO17",
    "COCO18",
    "OPENPOSE_COCO18",
    "Decoder",
    "DecoderConfig",
    "Encoder",
    "EncoderConfig",
    "Estimator",
    "EstimatorConfig",
    "FieldSpec",
    "PafposeError",
    "Pose",
    "Poses",
    "Skeleton",
    "Targets",
    "__version__",
    "create_model",
    "decode",
    "get_pretrained_cfg",
    "get_skeleton",
    "list_models",
]
