"""TensorFlow 1 frozen GraphDef (``.pb``) reader, without TensorFlow.

The binary protobuf is decoded with :mod:`pafpose.weights._protobuf` (schema from
``tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto``):
``GraphDef.node`` (1) -> ``NodeDef`` {name 1, op 2, input 3, device 4, attr 5 (map entries
key 1 / value 2)} -> ``AttrValue`` {list 1, s 2, i 3, f 4, b 5, type 6, shape 7, tensor 8}
-> ``TensorProto`` {dtype 1, tensor_shape 2 (dim 2 -> size 1), tensor_content 4,
float_val 5, double_val 6, int_val 7, int64_val 10, bool_val 11, half_val 13}.

``read`` returns every ``Const`` node's value under the node's name, and for every other
node ``@NAME.op``, ``@NAME.inputs`` and the attributes importers check (``strides``,
``dilations``, ``padding``, ``epsilon``, ``is_training``, ``data_format``). ``remap``
follows the graph from each layer's TF scope (``SCOPE/Conv2D`` or ``SCOPE/depthwise``,
then ``SCOPE/BatchNorm/FusedBatchNorm`` or ``SCOPE/BiasAdd``) onto a network that
declares ``tf_scopes()`` (tf-pose-mobilenet-v2).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pafpose.errors import PafposeError
from pafpose.weights import _protobuf as pb

# DataType enum -> numpy dtype (types.proto).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 19: np.float16}
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
_BN_OPS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")


def _shape(data: memoryview) -> tuple[int, ...]:
    msg = pb.parse(data)
    return tuple(pb.signed(int(pb.parse(d).get(1, [0])[0])) for d in msg.get(2, []))


def _tensor(data: memoryview) -> np.ndarray:
    """A TensorProto as a numpy array."""
    msg = pb.parse(data)
    dtype_code = int(msg.get(1, [1])[0])
    if dtype_code not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype {dtype_code}")
    dtype = np.dtype(_DTYPES[dtype_code]).newbyteorder("<")
    shape = _shape(msg[2][0]) if 2 in msg else ()
    count = int(np.prod(shape)) if shape else 1
    if 4 in msg:  # tensor_content: raw little-endian bytes
        values = np.frombuffer(bytes(msg[4][0]), dtype)
    elif dtype_code == 1:
        values = pb.packed_floats(msg.get(5, []))
    elif dtype_code == 2:
        values = np.concatenate([np.frombuffer(v, "<f8") if isinstance(v, memoryview)
                                 else np.array([struct.unpack("<d", v.to_bytes(8, "little"))[0]])
                                 for v in msg.get(6, [])] or [np.zeros(0)])
    elif dtype_code == 19:
        values = np.array(pb.packed_varints(msg.get(13, [])), np.uint16).view(np.float16)
    else:
        field = {9: 10, 10: 11}.get(dtype_code, 7)
        values = np.array([pb.signed(v) for v in pb.packed_varints(msg.get(field, []))], np.int64)
    values = values.astype(dtype.newbyteorder("="), copy=False)
    if values.size == count:
        return values.reshape(shape).copy()
    if values.size == 1:  # one value repeated to fill the shape (TensorProto's convention)
        return np.full(shape, values[0], values.dtype)
    if values.size == 0 and count == 0:
        return values.reshape(shape)
    raise ValueError(f"tensor has {values.size} values for shape {shape}")


def _attr(data: memoryview) -> np.ndarray | None:
    """The attribute values importers check, as small arrays (None for others)."""
    msg = pb.parse(data)
    if 1 in msg:  # list: ints (strides, dilations)
        lst = pb.parse(msg[1][0])
        return np.array([pb.signed(v) for v in pb.packed_varints(lst.get(3, []))], np.int64)
    if 2 in msg:
        return np.array(pb.string(msg[2][0]))
    if 4 in msg:
        return np.array(struct.unpack("<f", int(msg[4][0]).to_bytes(4, "little"))[0], np.float32)
    if 5 in msg:
        return np.array(bool(msg[5][0]))
    if 3 in msg:
        return np.array(pb.signed(int(msg[3][0])), np.int64)
    return None


_CHECKED_ATTRS = ("strides", "dilations", "padding", "epsilon", "is_training", "data_format")


def _parse(data: bytes) -> dict[str, np.ndarray]:
    graph = pb.parse(data)
    if not graph.get(1):
        raise ValueError("no nodes (not a GraphDef)")
    out: dict[str, np.ndarray] = {}
    for node_bytes in graph[1]:
        if not isinstance(node_bytes, memoryview):
            raise ValueError("malformed node")
        node = pb.parse(node_bytes)
        if 1 not in node or 2 not in node:
            raise ValueError("node without name or op")
        name, op = pb.string(node[1][0]), pb.string(node[2][0])
        attrs: dict[str, memoryview] = {}
        for entry in node.get(5, []):
            kv = pb.parse(entry)
            if 1 in kv and 2 in kv:
                attrs[pb.string(kv[1][0])] = kv[2][0]
        if op == "Const":
            if "value" not in attrs:
                raise ValueError(f"Const node {name} without value")
            value = pb.parse(attrs["value"])
            if 8 not in value:
                raise ValueError(f"Const node {name} without tensor")
            out[name] = _tensor(value[8][0])
            continue
        out[f"@{name}.op"] = np.array(op)
        out[f"@{name}.inputs"] = np.array([pb.string(v) for v in node.get(3, [])])
        for key in _CHECKED_ATTRS:
            if key in attrs:
                value = _attr(attrs[key])
                if value is not None:
                    out[f"@{name}.{key}"] = value
    return out


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Const tensors by node name, plus each op node's type, inputs and checked attributes."""
    path = Path(paths[0])
    data = path.read_bytes()
    try:
        out = _parse(data)
    except (ValueError, struct.error, UnicodeDecodeError, IndexError) as err:
        raise PafposeError(f"{path}: not a readable TensorFlow GraphDef ({err})") from err
    out["@file"] = np.array(str(path))
    return out


class _Graph:
    """Lookups on ``read``'s result, with errors that name the file."""

    def __init__(self, raw: dict[str, np.ndarray]) -> None:
        self.raw = raw
        self.source = str(raw["@file"]) if "@file" in raw else "GraphDef"
        self.readers: dict[str, list[str]] = {}  # node -> nodes whose first input it is
        for key, value in raw.items():
            if key.startswith("@") and key.endswith(".inputs") and value.size:
                self.readers.setdefault(str(value[0]).split(":")[0], []).append(key[1:-len(".inputs")])

    def error(self, message: str) -> PafposeError:
        return PafposeError(f"{self.source}: {message}")

    def op(self, name: str) -> str | None:
        v = self.raw.get(f"@{name}.op")
        return None if v is None else str(v)

    def inputs(self, name: str) -> list[str]:
        return [str(s) for s in self.raw.get(f"@{name}.inputs", np.array([]))]

    def attr(self, name: str, key: str, default: object = None) -> object:
        v = self.raw.get(f"@{name}.{key}")
        return default if v is None else v.item() if v.ndim == 0 else tuple(v.tolist())

    def const(self, ref: str) -> np.ndarray:
        """The value behind an input reference, through ``Identity`` nodes."""
        name = ref.split(":")[0].lstrip("^")
        for _ in range(16):
            if name in self.raw and not name.startswith("@"):
                return self.raw[name]
            if self.op(name) != "Identity":
                break
            name = self.inputs(name)[0].split(":")[0]
        raise self.error(f"input {ref} is not a constant (not a frozen graph?)")

    def next_layer(self, scope: str, node: str, names: Sequence[str], ops: Sequence[str]) -> str | None:
        """The node ``SCOPE/NAME`` of a type in ``ops``, else the one of that type reading ``node``."""
        for n in names:
            if self.op(f"{scope}/{n}") in ops:
                return f"{scope}/{n}"
        return next((r for r in self.readers.get(node, []) if self.op(r) in ops), None)


def _check_shape(g: _Graph, key: str, expected: torch.Size, got: tuple[int, ...]) -> None:
    if tuple(expected) != tuple(got):
        raise g.error(f"layer {key} expects shape {tuple(expected)}, file has {tuple(got)}")


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, torch.Tensor]:
    """``raw`` onto ``model``'s state dict, layer by layer through ``model.tf_scopes()``.

    Conv weights go from TF's HWIO (depthwise: H, W, C, multiplier) to PyTorch's OIHW.
    A ``FusedBatchNorm`` loads into the layer's BN; one frozen with ``is_training=True``
    only into a BN with ``batch_stats`` (the statistics are the image's own). A layer with
    a conv bias instead gets the file's ``BiasAdd``, or its (moving-statistics) BN folded.
    """
    scopes_fn = getattr(model, "tf_scopes", None)
    if scopes_fn is None or not isinstance(model, torch.nn.Module):
        raise PafposeError(f"{type(model).__name__} can't load TensorFlow GraphDef weights "
                           f"(tf-pose-mobilenet-v2 can)")
    g = _Graph(raw)
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for path, scope in scopes_fn().items():
        unit = model.get_submodule(path)
        conv = next((f"{scope}/{n}" for n in ("Conv2D", "depthwise") if g.op(f"{scope}/{n}") in _CONV_OPS), None)
        if conv is None:
            raise g.error(f"no layer {scope} (expected by {type(model).__name__} layer {path}); "
                          f"not a graph of this architecture/variant")
        _check_conv(g, conv, unit, path)
        w = g.const(g.inputs(conv)[1]).astype(np.float32)
        if w.ndim != 4:
            raise g.error(f"layer {scope}: weights of shape {w.shape}")
        if g.op(conv) == "DepthwiseConv2dNative":
            w = w.transpose(2, 3, 0, 1).reshape(-1, 1, w.shape[0], w.shape[1])  # (C*M, 1, H, W)
        else:
            w = w.transpose(3, 2, 0, 1)
        _check_shape(g, f"{path}.conv.weight", own[f"{path}.conv.weight"].shape, w.shape)
        bn = g.next_layer(scope, conv, ("BatchNorm/FusedBatchNorm", "BatchNorm/FusedBatchNormV3"), _BN_OPS)
        if getattr(unit, "bn", None) is not None:
            state.update(_batch_norm(g, bn, scope, f"{path}.bn", unit.bn, own))
        elif f"{path}.conv.bias" in own:
            w, b = _bias(g, bn, scope, conv, path, w)
            _check_shape(g, f"{path}.conv.bias", own[f"{path}.conv.bias"].shape, b.shape)
            state[f"{path}.conv.bias"] = torch.from_numpy(b)
        elif bn is not None or g.next_layer(scope, conv, ("BiasAdd",), ("BiasAdd",)) is not None:
            raise g.error(f"layer {scope} has a {'FusedBatchNorm' if bn else 'bias'}; {path} has neither")
        state[f"{path}.conv.weight"] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    return state


def _check_conv(g: _Graph, node: str, unit: torch.nn.Module, path: str) -> None:
    if g.attr(node, "data_format", "NHWC") != "NHWC":
        raise g.error(f"layer {node}: data_format {g.attr(node, 'data_format')}, only NHWC is supported")
    strides = g.attr(node, "strides", (1, 1, 1, 1))
    if strides[1:3] != (unit.stride, unit.stride):
        raise g.error(f"layer {node} has strides {strides[1:3]}, {path} expects {unit.stride}")
    if g.attr(node, "dilations", (1, 1, 1, 1))[1:3] != (1, 1):
        raise g.error(f"layer {node} has dilations {g.attr(node, 'dilations')[1:3]}, {path} expects 1")
    if g.attr(node, "padding", "SAME") != "SAME":
        raise g.error(f"layer {node} has padding {g.attr(node, 'padding')}, {path} expects SAME")


def _batch_norm(g: _Graph, node: str | None, scope: str, key: str, bn: torch.nn.Module,
                own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A FusedBatchNorm's tensors for the model's ``TFBatchNorm`` at ``key``."""
    if node is None:
        raise g.error(f"layer {scope} has no FusedBatchNorm; {key} expects one")
    training = bool(g.attr(node, "is_training", False))
    if training != bn.batch_stats:
        what = "per-image statistics (is_training=True)" if training else "moving statistics"
        raise g.error(f"layer {node} normalises with {what}; {key} has batch_stats={bn.batch_stats} (wrong variant?)")
    eps = float(g.attr(node, "epsilon", 1e-4))
    if not np.isclose(eps, bn.eps, rtol=1e-5):
        raise g.error(f"layer {node} has epsilon {eps}, {key} uses {bn.eps}")
    gamma, beta, mean, var = (g.const(r).astype(np.float32) for r in g.inputs(node)[1:5])
    out = {"bias": beta}
    if bn.weight is not None:
        out["weight"] = gamma
    elif not np.all(gamma == 1):
        raise g.error(f"layer {node} has a learned scale, {key} has none")
    if not bn.batch_stats:
        out.update(running_mean=mean, running_var=var)
    for name, value in out.items():
        _check_shape(g, f"{key}.{name}", own[f"{key}.{name}"].shape, value.shape)
    return {f"{key}.{name}": torch.from_numpy(value) for name, value in out.items()}


def _bias(g: _Graph, bn: str | None, scope: str, conv: str, path: str, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias for a layer with a conv bias: the file's BiasAdd, or its BN folded."""
    if bn is None:
        add = g.next_layer(scope, conv, ("BiasAdd",), ("BiasAdd",))
        b = g.const(g.inputs(add)[1]) if add else np.zeros(w.shape[0])
        return w, b.astype(np.float32)
    if g.attr(bn, "is_training", False):
        raise g.error(f"layer {bn} normalises with per-image statistics (is_training=True); {path} has a conv "
                      f"bias and can't hold it (wrong variant?)")
    gamma, beta, mean, var = (g.const(r).astype(np.float64) for r in g.inputs(bn)[1:5])
    k = gamma / np.sqrt(var + float(g.attr(bn, "epsilon", 1e-4)))
    return (w * k[:, None, None, None]).astype(np.float32), (beta - mean * k).astype(np.float32)
