"""TensorFlow Lite (``.tflite``) reader, without TensorFlow: a small flatbuffer table reader.

Only what an importer needs is decoded (schema ``tensorflow/lite/schema/schema.fbs``):
``Model`` -> ``subgraphs[0]`` -> ``tensors`` / ``operators``, and ``buffers``. Constant
tensors come out as float32 numpy arrays; int8/uint8 weights are dequantised with their
``scale`` / ``zero_point`` (per channel along ``quantized_dimension`` where given), exactly
as the ``DEQUANTIZE`` operator does: ``(q - zero_point) * scale`` in float32.

``read`` returns every constant tensor by its own name (the output of a ``DEQUANTIZE`` of a
constant carries the dequantised values under the output's name, too), and, per operator
``i``, ``@op{i}.type`` (builtin operator name), ``@op{i}.inputs`` / ``@op{i}.outputs``
(tensor names) and its options (``@op{i}.stride``, ``@op{i}.activation`` ...), so that the
importer can follow the graph. It also gives ``@input``/``@output`` (names),
``@input.shape`` and ``@file``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pafpose.errors import PafposeError

# TensorType -> numpy dtype (the types a weight file holds).
_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
# BuiltinOperator codes of the ops these networks use.
_OPS = {0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 18: "MUL",
        19: "RELU", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 34: "PAD", 41: "SUB", 42: "DIV",
        97: "RESIZE_NEAREST_NEIGHBOR"}
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}


class _Buffer:
    """Bounds-checked little-endian reads of a flatbuffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _get(self, fmt: str, pos: int) -> int | float:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise ValueError(f"truncated flatbuffer (offset {pos} beyond {len(self.data)} bytes)")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def u32(self, pos: int) -> int:
        return int(self._get("<I", pos))

    def table(self, pos: int) -> _Table:
        vtable = pos - int(self._get("<i", pos))
        return _Table(self, pos, vtable, int(self._get("<H", vtable)))


class _Table:
    """A flatbuffer table: fields by index (slot ``4 + 2 * index`` of the vtable)."""

    def __init__(self, buf: _Buffer, pos: int, vtable: int, vtable_size: int) -> None:
        self.buf, self.pos, self.vtable, self.vtable_size = buf, pos, vtable, vtable_size

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= self.vtable_size:
            return None
        off = int(self.buf._get("<H", self.vtable + slot))
        return self.pos + off if off else None

    def scalar(self, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self._field(index)
        return default if pos is None else self.buf._get("<" + fmt, pos)

    def _target(self, index: int) -> int | None:
        pos = self._field(index)
        return None if pos is None else pos + self.buf.u32(pos)

    def table(self, index: int) -> _Table | None:
        pos = self._target(index)
        return None if pos is None else self.buf.table(pos)

    def tables(self, index: int) -> list[_Table]:
        pos = self._target(index)
        if pos is None:
            return []
        n = self.buf.u32(pos)
        return [self.buf.table(pos + 4 + 4 * i + self.buf.u32(pos + 4 + 4 * i)) for i in range(n)]

    def vector(self, index: int, dtype: str) -> np.ndarray:
        pos = self._target(index)
        if pos is None:
            return np.zeros(0, dtype)
        n = self.buf.u32(pos)
        size = n * np.dtype(dtype).itemsize
        if pos + 4 + size > len(self.buf.data):
            raise ValueError(f"truncated flatbuffer (vector of {n} at offset {pos})")
        return np.frombuffer(self.buf.data, dtype, n, pos + 4)

    def string(self, index: int) -> str:
        return bytes(self.vector(index, "u1")).decode("utf-8", "replace")


def _dequantize(raw: np.ndarray, quant: _Table | None, name: str) -> np.ndarray:
    """float32 values of a constant, as TFLite's DEQUANTIZE computes them."""
    if raw.dtype in (np.float32, np.float16):
        return raw.astype(np.float32)
    if quant is None:
        return raw
    scale = quant.vector(2, "<f4")
    zero = quant.vector(3, "<i8")
    if scale.size == 0:
        return raw
    if zero.size == 0:
        zero = np.zeros_like(scale, dtype=np.int64)
    axis = int(quant.scalar(6, "i", 0))
    if scale.size > 1:
        if raw.ndim <= axis or raw.shape[axis] != scale.size:
            raise ValueError(f"tensor {name}: {scale.size} scales for shape {raw.shape} axis {axis}")
        shape = [1] * raw.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((raw.astype(np.int32) - zero.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)


def _options(op: _Table, kind: str) -> dict[str, np.ndarray]:
    """The builtin options this importer checks (strides, padding, fused activation...)."""
    opt = op.table(4)
    if opt is None:
        return {}
    if kind == "CONV_2D":
        return {"padding": np.array(["SAME", "VALID"][int(opt.scalar(0, "b"))]),
                "stride": np.array([opt.scalar(2, "i"), opt.scalar(1, "i")]),
                "activation": np.array(_ACTIVATIONS.get(int(opt.scalar(3, "b")), "?")),
                "dilation": np.array([opt.scalar(5, "i", 1), opt.scalar(4, "i", 1)])}
    if kind == "DEPTHWISE_CONV_2D":
        return {"padding": np.array(["SAME", "VALID"][int(opt.scalar(0, "b"))]),
                "stride": np.array([opt.scalar(2, "i"), opt.scalar(1, "i")]),
                "depth_multiplier": np.array(opt.scalar(3, "i")),
                "activation": np.array(_ACTIVATIONS.get(int(opt.scalar(4, "b")), "?")),
                "dilation": np.array([opt.scalar(6, "i", 1), opt.scalar(5, "i", 1)])}
    if kind == "CONCATENATION":
        return {"axis": np.array(opt.scalar(0, "i")), "activation": np.array(_ACTIVATIONS.get(int(opt.scalar(1, "b"))))}
    if kind == "ADD":
        return {"activation": np.array(_ACTIVATIONS.get(int(opt.scalar(0, "b")), "?"))}
    if kind == "RESIZE_BILINEAR":
        return {"align_corners": np.array(bool(opt.scalar(2, "b"))),
                "half_pixel_centers": np.array(bool(opt.scalar(3, "b")))}
    return {}


def _parse(data: bytes) -> dict[str, np.ndarray]:
    if len(data) < 8:
        raise ValueError(f"only {len(data)} bytes")
    if data[4:8] != b"TFL3":
        raise ValueError(f"file identifier {data[4:8]!r}, expected b'TFL3'")
    buf = _Buffer(data)
    model = buf.table(buf.u32(0))
    codes = [int(max(c.scalar(0, "b"), c.scalar(3, "i"))) for c in model.tables(1)]
    buffers = model.tables(4)
    subgraphs = model.tables(2)
    if not subgraphs:
        raise ValueError("no subgraph")
    graph = subgraphs[0]
    tensors = graph.tables(0)
    names = [t.string(3) or f"tensor_{i}" for i, t in enumerate(tensors)]
    out: dict[str, np.ndarray] = {}
    for t, name in zip(tensors, names, strict=True):
        index = int(t.scalar(2, "I"))
        if index == 0 or index >= len(buffers):
            continue  # buffer 0 is the empty sentinel: an activation
        payload = buffers[index].vector(0, "u1")
        if payload.size == 0:
            offset, size = int(buffers[index].scalar(1, "Q")), int(buffers[index].scalar(2, "Q"))
            if size == 0:
                continue
            if offset + size > len(data):
                raise ValueError(f"truncated buffer of tensor {name}")
            payload = np.frombuffer(data, np.uint8, size, offset)
        kind = int(t.scalar(1, "b"))
        if kind not in _TYPES:
            raise ValueError(f"tensor {name} has unsupported type {kind}")
        shape = tuple(int(s) for s in t.vector(0, "<i4"))
        raw = np.frombuffer(payload.tobytes(), _TYPES[kind])
        if raw.size != int(np.prod(shape)):
            raise ValueError(f"tensor {name}: {raw.size} values for shape {shape}")
        out[name] = _dequantize(raw.reshape(shape), t.table(4), name).copy()
    for i, op in enumerate(graph.tables(3)):
        code = int(op.scalar(0, "I"))
        if code >= len(codes):
            raise ValueError(f"operator {i} has opcode index {code} of {len(codes)}")
        kind = _OPS.get(codes[code], f"BUILTIN_{codes[code]}")
        ins = [names[j] if 0 <= j < len(names) else "" for j in op.vector(1, "<i4")]
        outs = [names[j] for j in op.vector(2, "<i4") if 0 <= j < len(names)]
        out[f"@op{i}.type"] = np.array(kind)
        out[f"@op{i}.inputs"] = np.array(ins)
        out[f"@op{i}.outputs"] = np.array(outs)
        for key, value in _options(op, kind).items():
            out[f"@op{i}.{key}"] = value
        if kind == "DEQUANTIZE" and ins and ins[0] in out and outs:
            out[outs[0]] = out[ins[0]]  # already float: DEQUANTIZE is the identity on them
    inputs, outputs = graph.vector(1, "<i4"), graph.vector(2, "<i4")
    out["@input"] = np.array([names[j] for j in inputs])
    out["@output"] = np.array([names[j] for j in outputs])
    if len(inputs):
        out["@input.shape"] = tensors[int(inputs[0])].vector(0, "<i4").astype(np.int64)
    return out


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Constant tensors (dequantised to float32) and the operator list of a ``.tflite`` file."""
    path = Path(paths[0])
    data = path.read_bytes()
    try:
        out = _parse(data)
    except (ValueError, struct.error, IndexError, UnicodeDecodeError) as err:
        raise PafposeError(f"{path}: not a readable TFLite file ({err})") from err
    out["@file"] = np.array(str(path))
    return out


def operators(raw: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """The ``@op{i}.*`` entries of ``read``'s result as a list of dicts (in file order)."""
    ops: list[dict[str, object]] = []
    i = 0
    while f"@op{i}.type" in raw:
        prefix = f"@op{i}."
        ops.append({k[len(prefix):]: (v.tolist() if v.ndim else v.item()) for k, v in raw.items()
                    if k.startswith(prefix)})
        i += 1
    return ops


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, torch.Tensor]:
    """``raw`` onto ``model``'s state dict, layer by layer through ``model.tf_scopes()``.

    Each layer is the CONV_2D / DEPTHWISE_CONV_2D whose weight tensor is ``SCOPE/weights``
    (``SCOPE/depthwise_weights``, possibly behind a DEQUANTIZE); its bias input is the BN
    folded by the converter. Weights go from TFLite's OHWI (depthwise: 1, H, W, C) to OIHW.
    """
    scopes_fn = getattr(model, "tf_scopes", None)
    if scopes_fn is None or not isinstance(model, torch.nn.Module):
        raise PafposeError(f"{type(model).__name__} can't load TFLite weights (tf-pose-mobilenet-v2 can)")
    source = str(raw["@file"]) if "@file" in raw else "TFLite file"
    by_scope: dict[str, dict[str, object]] = {}
    for op in operators(raw):
        if op["type"] in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op["inputs"]) >= 2:
            weight = str(op["inputs"][1]).removesuffix("_dequantize")
            by_scope[weight.rsplit("/", 1)[0]] = op
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for path, scope in scopes_fn().items():
        op = by_scope.get(scope)
        if op is None:
            raise PafposeError(f"{source}: no layer {scope} (expected by {type(model).__name__} layer {path}); "
                               f"not a file of this architecture/variant")
        unit = model.get_submodule(path)
        w = raw[str(op["inputs"][1])]
        w = w.transpose(3, 0, 1, 2) if op["type"] == "DEPTHWISE_CONV_2D" else w.transpose(0, 3, 1, 2)
        key = f"{path}.conv.weight"
        if tuple(own[key].shape) != w.shape:
            raise PafposeError(f"{source}: layer {key} expects shape {tuple(own[key].shape)}, file has {w.shape}")
        stride = tuple(op.get("stride", (1, 1)))
        if stride != (unit.stride, unit.stride):
            raise PafposeError(f"{source}: layer {scope} has stride {stride}, {path} expects {unit.stride}")
        act = op.get("activation", "none")
        if act != (unit.act or "none"):
            raise PafposeError(f"{source}: layer {scope} has activation {act}, {path} expects {unit.act or 'none'}")
        state[key] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        bias_name = str(op["inputs"][2]) if len(op["inputs"]) > 2 else ""
        bias = raw.get(bias_name) if bias_name else None
        if f"{path}.conv.bias" in own:
            if bias is None:
                raise PafposeError(f"{source}: layer {scope} has no bias, {path} expects one")
            state[f"{path}.conv.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
        elif getattr(unit, "bn", None) is not None:
            raise PafposeError(f"{source}: layer {scope} has BN folded into a bias, {path} expects a BatchNorm "
                               f"(TFLite files load into the dm05/dm07/dm10/dm14 variants)")
        elif bias is not None and np.any(bias != 0):
            raise PafposeError(f"{source}: layer {scope} has a non-zero bias, {path} has none")
    return state
