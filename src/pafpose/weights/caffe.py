"""Binary Caffe models (``.caffemodel``), read without Caffe.

A ``.caffemodel`` is a serialised ``NetParameter`` (``caffe.proto``). Field numbers used:

* ``NetParameter``: ``layer`` 100 (``LayerParameter``), ``layers`` 2 (deprecated
  ``V1LayerParameter``).
* ``LayerParameter``: ``name`` 1, ``blobs`` 7. ``V1LayerParameter``: ``name`` 4, ``blobs`` 6.
* ``BlobProto``: ``shape`` 7 (``BlobShape``: ``dim`` 1, packed int64), ``data`` 5 (packed
  float), ``double_data`` 8 (packed double), legacy ``num``/``channels``/``height``/``width`` 1-4.

``read`` names blob ``i`` of layer ``L`` ``"L.i"``; ``remap`` places them on networks that
name their modules like the Caffe layers (:class:`pafpose.models.vgg_openpose.OpenPoseVGG`):
blob 0 is a convolution's weight or a PReLU's slopes, blob 1 a convolution's bias.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pafpose.errors import PafposeError
from pafpose.models.vgg_openpose import OpenPoseVGG
from pafpose.weights import _protobuf as pb

log = logging.getLogger(__name__)

_LAYER, _V1_LAYERS = 100, 2
_NAME, _BLOBS = 1, 7
_V1_NAME, _V1_BLOBS = 4, 6
_SHAPE, _DATA, _DOUBLE_DATA = 7, 5, 8
_LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width


def _message(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ValueError("a number where a message belongs")
    return value


def _blob(msg: memoryview) -> np.ndarray:
    fields = pb.parse(msg)
    if _SHAPE in fields:
        dims = pb.parse(_message(fields[_SHAPE][-1])).get(1, [])
        shape = tuple(pb.signed(d) for d in pb.packed_varints(dims))
    else:
        shape = tuple(pb.signed(fields[f][-1]) if f in fields else 0 for f in _LEGACY_DIMS)
        shape = shape if any(shape) else ()
    if _DOUBLE_DATA in fields:
        data = np.concatenate([np.frombuffer(v, "<f8") if isinstance(v, memoryview)
                               else np.array([struct.unpack("<d", v.to_bytes(8, "little"))[0]])
                               for v in fields[_DOUBLE_DATA]]).astype(np.float32)
    else:
        data = pb.packed_floats(fields.get(_DATA, []))
    if data.size != math.prod(shape):
        raise ValueError(f"blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Every weighted layer's blobs as ``{"<layer>.<i>": array}``, shaped as in the file."""
    path = Path(paths[0])
    try:
        net = pb.parse(path.read_bytes())
    except ValueError as err:
        raise PafposeError(f"{path}: not a readable .caffemodel, truncated or corrupt ({err})") from err
    layers = [(m, _NAME, _BLOBS) for m in net.get(_LAYER, [])]
    layers += [(m, _V1_NAME, _V1_BLOBS) for m in net.get(_V1_LAYERS, [])]
    out: dict[str, np.ndarray] = {}
    for msg, name_field, blobs_field in layers:
        name = "?"
        try:
            layer = pb.parse(_message(msg))
            name = pb.string(layer[name_field][-1]) if name_field in layer else "?"
            blobs = [_blob(_message(b)) for b in layer.get(blobs_field, [])]
        except (ValueError, KeyError) as err:
            raise PafposeError(f"{path}: corrupt .caffemodel, layer {name} ({err})") from err
        for i, blob in enumerate(blobs):
            out[f"{name}.{i}"] = blob
    if not out:
        raise PafposeError(f"{path}: no layer with weights; is it a .caffemodel (not a .prototxt)?")
    return out


def _like(arr: np.ndarray, target: torch.Tensor) -> torch.Tensor:
    """The blob as a tensor; legacy 4-D shapes of 1-D blobs ((1, 1, 1, C)) become (C,)."""
    if target.dim() == 1 and arr.ndim > 1 and arr.size == target.numel() and all(d == 1 for d in arr.shape[:-1]):
        arr = arr.reshape(-1)
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, torch.Tensor]:
    """``raw`` blobs onto ``model``'s state dict, by Caffe layer name.

    Layers the file lacks stay out (the loader's strict load names them); blobs the network
    does not use are logged and skipped.
    """
    if not isinstance(model, OpenPoseVGG):
        raise PafposeError(f"Caffe weights load into the CMU OpenPose networks (openpose-coco, openpose-body25), "
                           f"not {type(model).__name__}")
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for layer, path in model.caffe_layers().items():
        for i, param in enumerate(("weight", "bias")):
            key, blob = f"{path}.{param}", f"{layer}.{i}"
            if key in own and blob in raw:
                state[key] = _like(raw[blob], own[key])
                used.add(blob)
    unused = sorted(set(raw) - used)
    if unused:
        log.warning("ignoring %d blobs the network does not use (first: %s)", len(unused), unused[0])
    return state
