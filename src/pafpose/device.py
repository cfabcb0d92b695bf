"""Which device runs the network, and what this CPU can do."""

from __future__ import annotations

import torch

from pafpose.errors import PafposeError


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; a CUDA request without CUDA is a user error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise PafposeError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PafposeError(f"device {device!r} requested but this machine has no CUDA GPU; use --device cpu")
    return dev


def cpu_has_bfloat16() -> bool:
    """Whether PyTorch's CPU kernels compute bfloat16 natively here (AVX512-BF16 or AMX;
    emulated, bfloat16 is slower than float32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
