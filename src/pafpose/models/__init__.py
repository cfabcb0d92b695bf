"""Network architectures (PyTorch, no torchvision) and their registry.

Architecture modules register themselves on import; the list below is explicit (no scanning).
"""

from pafpose.models import lightweight, mobilenet_v2, vgg_openpose  # noqa: F401
from pafpose.models._base import InputConfig, PafModel
from pafpose.models._registry import build_architecture, list_architectures, register_model

__all__ = ["InputConfig", "PafModel", "build_architecture", "list_architectures", "register_model"]
