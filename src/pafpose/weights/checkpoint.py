"""pafpose's own ``.pt`` files: training checkpoints (``last.pt``, ``best.pt``) or state dicts.

A training checkpoint names its architecture, so ``pafpose eval --weights run/best.pt``
needs no ``--model``. Files are read with ``weights_only=True``: a ``.pt`` from elsewhere
can't run code when it is loaded.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pafpose.errors import PafposeError


def torch_load(path: Path, what: str = "PyTorch weights file") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is a one-line error naming the file.

    The reason never repeats torch's advice to retry with ``weights_only=False``: for a
    file of unknown origin that would let it run code.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise PafposeError(f"{path}: empty file (0 bytes), not a {what}")
        return torch.load(path, map_location="cpu", weights_only=True)
    except PafposeError:
        raise
    except pickle.UnpicklingError as err:
        raise PafposeError(f"{path}: not a {what}: damaged, or it holds objects other than tensors "
                           "(refused: loading those could run code)") from err
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError, struct.error,
            zipfile.BadZipFile, UnicodeDecodeError, IndexError, KeyError, TypeError,
            OverflowError) as err:  # what torch (its weights-only unpickler too) raises on damaged files
        first = (str(err).strip().splitlines() or [""])[0][:120]
        reason = type(err).__name__ if not first or "weights_only" in first else f"{type(err).__name__}: {first}"
        raise PafposeError(f"{path}: not a readable {what} ({reason})") from err


def read_file(path: Path) -> Any:
    return torch_load(path)


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
