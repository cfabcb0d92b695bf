"""Model registry: architectures by name (timm-style, but explicit names with dashes)."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from pafpose.errors import PafposeError
from pafpose.models._base import PafModel

F = TypeVar("F", bound=Callable[..., PafModel])
_ARCHITECTURES: dict[str, Callable[..., PafModel]] = {}


def register_model(name: str) -> Callable[[F], F]:
    """Register an architecture constructor under ``name`` (e.g. ``"openpose-coco"``)."""

    def wrap(fn: F) -> F:
        if name in _ARCHITECTURES:
            warnings.warn(f"architecture {name!r} registered twice; the last one wins", stacklevel=2)
        _ARCHITECTURES[name] = fn
        return fn

    return wrap


def list_architectures(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style ``pattern``."""
    return sorted(n for n in _ARCHITECTURES if fnmatch.fnmatch(n, pattern))


def build_architecture(name: str, **kwargs: Any) -> PafModel:
    """A freshly initialised network of architecture ``name``."""
    try:
        fn = _ARCHITECTURES[name]
    except KeyError:
        raise PafposeError(
            f"unknown architecture {name!r}; known: {', '.join(list_architectures())}"
        ) from None
    return fn(**kwargs)
