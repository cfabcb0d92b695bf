"""PyTorch ports of published PAF models (``file_format="torch-openpose"``).

``read`` loads a state dict (``weights_only``: no code runs). ``remap`` dispatches on the
network it loads into:

* CMU OpenPose VGG networks (:class:`~pafpose.models.vgg_openpose.OpenPoseVGG`), from

  - tensorboy/pytorch_Realtime_Multi-Person_Pose_Estimation ``pose_model.pth``: anonymous
    ``nn.Sequential`` blocks, ``model0.<i>`` (VGG + CPM) and ``model<t>_<b>.<i>`` (stage
    ``t``, branch ``b``: 1 = PAFs, 2 = heatmaps), a ReLU after every convolution but the
    last of a branch and a max-pool between VGG groups;
  - Hzzone/pytorch-openpose ``body_pose_model.pth`` and other ports that kept the Caffe
    layer names (``conv1_1.weight``, ``model2_1.Mconv1_stage2_L1.weight``): the Caffe name
    is the key's second-to-last part.

Lightweight OpenPose's own checkpoints have their importer: :mod:`pafpose.weights.torch_lightweight`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pafpose.errors import PafposeError
from pafpose.models.lightweight import LightweightOpenPose
from pafpose.models.vgg_openpose import OpenPoseCOCO, OpenPoseVGG

log = logging.getLogger(__name__)

_TENSORBOY_KEY = re.compile(r"^model(\d+)(?:_(\d+))?\.(\d+)\.(weight|bias)$")


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Tensors of the file's state dict, ``module.`` prefixes stripped.

    Accepts a bare state dict or a checkpoint holding one under ``state_dict`` or ``model``.
    """
    from pafpose.weights.checkpoint import torch_load

    path = Path(paths[0])
    obj = torch_load(path, "PyTorch state dict")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PafposeError(f"{path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v.detach().cpu().numpy() for k, v in obj.items()}


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, torch.Tensor]:
    """``raw`` (the file's names) onto ``model``'s state-dict names."""
    if isinstance(model, OpenPoseVGG):
        return _remap_openpose(raw, model)
    hint = ""
    if isinstance(model, LightweightOpenPose):
        hint = " (Lightweight OpenPose checkpoints: file_format='torch-lightweight')"
    raise PafposeError(f"torch-openpose files load into openpose-coco or openpose-body25, "
                       f"not {type(model).__name__}{hint}")


def _remap_openpose(raw: dict[str, np.ndarray], model: OpenPoseVGG) -> dict[str, torch.Tensor]:
    tensorboy = [k for k in raw if _TENSORBOY_KEY.match(k)]
    if tensorboy:
        if not isinstance(model, OpenPoseCOCO):
            raise PafposeError(f"this file has tensorboy's COCO layout ({tensorboy[0]!r}); it loads into "
                               f"openpose-coco, not {type(model).__name__}")
        named = _tensorboy_names(raw, model)
    else:
        named = {}
        for key, value in raw.items():
            parts = key.split(".")
            if len(parts) >= 2:
                named.setdefault(f"{parts[-2]}.{parts[-1]}", (key, value))
    layers = model.caffe_layers()
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for caffe_key, (key, value) in named.items():
        layer, param = caffe_key.rsplit(".", 1)
        if layer in layers and f"{layers[layer]}.{param}" in own:
            state[f"{layers[layer]}.{param}"] = torch.from_numpy(np.array(value, dtype=np.float32))
            used.add(key)
    if not state:
        raise PafposeError(f"no tensor of this file has a known OpenPose layer name (first key: {next(iter(raw))!r}); "
                           "expected tensorboy's 'model0.0.weight' or Caffe names like 'conv1_1.weight'")
    unused = sorted(set(raw) - used)
    if unused:
        log.warning("ignoring %d tensors the network does not use (first: %s)", len(unused), unused[0])
    return state


def _tensorboy_names(raw: dict[str, np.ndarray], model: OpenPoseCOCO) -> dict[str, tuple[str, np.ndarray]]:
    """tensorboy's positional keys -> ``"<caffe layer>.<param>"``.

    Its blocks list the prototxt's layers in order, a ReLU after each convolution but a
    branch's last and pools between VGG groups, exactly as pafpose's ``features`` and
    stage branches do; so position ``i`` names the same layer in both.
    """
    out: dict[str, tuple[str, np.ndarray]] = {}
    for key, value in raw.items():
        m = _TENSORBOY_KEY.match(key)
        if m is None:
            continue
        block, branch, index, param = int(m[1]), m[2], int(m[3]), m[4]
        seq: nn.Module | None = None
        if block == 0 and branch is None:
            seq = model.features
        elif 1 <= block <= len(model.stages) and branch in ("1", "2"):
            stage = model.stages[block - 1]
            seq = stage.pafs if branch == "1" else stage.heatmaps
        names = list(seq._modules) if seq is not None else []
        if index < len(names):
            out[f"{names[index]}.{param}"] = (key, value)
    return out
