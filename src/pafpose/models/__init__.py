"""Network architectures (PyTorch, no torchvision) and their registry."""

from pafpose.models._base import InputConfig, PafModel
from pafpose.models._registry import build_architecture, list_architectures, register_model

# Architecture modules register themselves on import; the list is explicit (no scanning).
from pafpose.models import lightweight, mobilenet_v2, vgg_openpose  # noqa: E402, F401, I001

__all__ = ["InputConfig", "PafModel", "build_architecture", "list_architectures", "register_model"]
