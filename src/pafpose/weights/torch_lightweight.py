"""Lightweight OpenPose's own PyTorch checkpoints (``checkpoint_iter_370000.pth``).

pafpose's ``LightweightOpenPose`` keeps the reference implementation's module names, so
the remap only unwraps the checkpoint, strips DataParallel's ``module.`` prefix, and fills
BatchNorm's ``num_batches_tracked`` that checkpoints from old PyTorch versions lack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pafpose.errors import PafposeError
from pafpose.models.lightweight import LightweightOpenPose


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Tensors of the checkpoint's state dict (a bare state dict is accepted too)."""
    from pafpose.weights.checkpoint import torch_load

    path = Path(paths[0])
    obj = torch_load(path, "PyTorch checkpoint")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PafposeError(f"{path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v.numpy() for k, v in obj.items()}


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, torch.Tensor]:
    if not isinstance(model, LightweightOpenPose) or model.deployed:
        raise PafposeError(f"Lightweight OpenPose checkpoints load into lightweight-openpose, not "
                           f"{type(model).__name__}")
    state = {k: torch.from_numpy(np.array(v)) for k, v in raw.items()}
    for key in model.state_dict():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0)
    return state
