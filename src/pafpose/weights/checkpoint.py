"""pafpose's own ``.pt`` files: training checkpoints (``last.pt``, ``best.pt``) or state dicts.

A training checkpoint names its architecture, so ``pafpose eval --weights run/best.pt``
needs no ``--model``. Files are read with ``weights_only=True``: a ``.pt`` from elsewhere
can't run code when it is loaded.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pafpose.errors import PafposeError


def read_file(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise PafposeError(f"{path}: not a readable PyTorch weights file ({str(err).splitlines()[0][:120]})") from err


def architecture_of(path: Path) -> str | None:
    """The architecture a training checkpoint was made for, or None for other files."""
    state = read_file(path)
    if isinstance(state, dict) and isinstance(state.get("architecture"), str) and isinstance(state.get("model"), dict):
        return state["architecture"]
    return None


def read(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    state = read_file(paths[0])
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PafposeError(f"{paths[0]}: neither a pafpose checkpoint nor a state dict of tensors")
    return state


def remap(raw: dict[str, torch.Tensor], model: object) -> dict[str, torch.Tensor]:
    return raw  # pafpose's own names
