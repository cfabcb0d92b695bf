"""OpenVINO IR (``.xml`` + ``.bin``) reader, without the OpenVINO runtime.

IR v10/v11 (opset layers) and v5-v7 (legacy layers with ``<blobs>``) are read. Constant
sub-graphs are folded in numpy — ``Convert`` (f16/u8/i8 to float), ``FakeQuantize`` on
constants (the INT8 weight encoding: ``levels`` steps between input and output ranges),
``Reshape``/``Multiply``/``Add``/``Subtract`` — so every convolution's weights come out
dequantised to float32. ``FakeQuantize`` on activations is left out: pafpose runs float
activations (see the tolerance notes in the tests).

``read`` returns, for each convolution layer ``NAME``: ``NAME.weight`` (O, I/groups, kh, kw)
and ``NAME.bias`` when an ``Add`` of a constant follows it, plus each layer's attributes
for the architecture to check (``NAME.@strides`` ...), and the input normalisation
(``@input.scale``, ``@input.shift``) when the graph starts with one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pafpose.errors import PafposeError

_DTYPES = {"f32": np.float32, "f16": np.float16, "u8": np.uint8, "i8": np.int8, "i32": np.int32,
           "i64": np.int64, "u1": np.uint8, "FP32": np.float32, "FP16": np.float16, "I64": np.int64,
           "I32": np.int32, "U8": np.uint8, "I8": np.int8, "boolean": np.bool_}


@dataclass
class Layer:
    id: str
    name: str
    type: str
    data: dict[str, str]
    out_shapes: dict[str, tuple[int, ...]]
    inputs: dict[int, tuple[str, str]] = field(default_factory=dict)  # in port -> (layer id, out port)
    blobs: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # v5: name -> offset, size, precision


def _shape(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(x) for x in text.split(",") if x.strip())


def _parse_xml(path: Path) -> tuple[dict[str, Layer], int]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise PafposeError(f"{path}: not a valid OpenVINO IR .xml ({err})") from err
    if root.tag != "net":
        raise PafposeError(f"{path}: not an OpenVINO IR .xml (root element <{root.tag}>)")
    version = int(root.get("version", "0"))
    layers: dict[str, Layer] = {}
    for el in root.iter("layer"):
        data = el.find("data")
        outs = {}
        out = el.find("output")
        if out is not None:
            for port in out.findall("port"):
                outs[port.get("id", "")] = tuple(int(d.text or 0) for d in port.findall("dim"))
        layer = Layer(el.get("id", ""), el.get("name", ""), el.get("type", ""),
                      dict(data.attrib) if data is not None else {}, outs)
        blobs = el.find("blobs")
        if blobs is not None:
            for b in blobs:
                layer.blobs[b.tag] = (int(b.get("offset", 0)), int(b.get("size", 0)), b.get("precision", "FP32"))
        layers[layer.id] = layer
    edges = root.find("edges")
    for e in edges if edges is not None else []:
        to = layers.get(e.get("to-layer", ""))
        if to is not None:
            to.inputs[int(e.get("to-port", 0))] = (e.get("from-layer", ""), e.get("from-port", ""))
    return layers, version


class _Folder:
    """Evaluates constant sub-graphs of an IR."""

    def __init__(self, layers: dict[str, Layer], weights: memoryview, path: Path) -> None:
        self.layers, self.weights, self.path = layers, weights, path
        self.cache: dict[str, np.ndarray | None] = {}

    def _const(self, layer: Layer) -> np.ndarray:
        d = layer.data
        dtype = _DTYPES.get(d.get("element_type", d.get("precision", "f32")))
        if dtype is None:
            raise PafposeError(f"{self.path}: layer {layer.name}: unsupported element type {d.get('element_type')}")
        offset, size = int(d.get("offset", 0)), int(d.get("size", 0))
        if offset + size > len(self.weights):
            raise PafposeError(f"{self.path}: layer {layer.name} reads bytes {offset}..{offset + size} "
                               f"but the .bin has {len(self.weights)} (truncated or not its .bin)")
        arr = np.frombuffer(self.weights[offset:offset + size], dtype=dtype)
        shape = _shape(d.get("shape")) if "shape" in d else next(iter(layer.out_shapes.values()), ())
        return arr.reshape(shape) if shape else arr.reshape(())

    def value(self, layer_id: str) -> np.ndarray | None:
        """The layer's constant output, or None if it depends on the network input."""
        if layer_id in self.cache:
            return self.cache[layer_id]
        self.cache[layer_id] = None  # guards against cycles
        layer = self.layers[layer_id]
        ins = [self.value(src) for _, (src, _) in sorted(layer.inputs.items())]
        out: np.ndarray | None = None
        t = layer.type
        if t == "Const":
            out = self._const(layer)
        elif any(v is None for v in ins):
            out = None
        elif t == "Convert":
            out = ins[0].astype(_DTYPES.get(layer.data.get("destination_type", "f32"), np.float32))
        elif t == "FakeQuantize":
            x, il, ih, ol, oh = (np.asarray(v, np.float64) for v in ins)
            levels = int(layer.data["levels"])
            q = np.round((np.clip(x, il, ih) - il) / np.where(ih > il, ih - il, 1) * (levels - 1))
            out = np.where(x <= il, ol, np.where(x > ih, oh, q / (levels - 1) * (oh - ol) + ol))
        elif t == "Reshape":
            target = [int(s) for s in ins[1].reshape(-1)]
            if int(layer.data.get("special_zero", "false") == "true"):
                target = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(target)]
            out = ins[0].reshape(target)
        elif t in ("Multiply", "Add", "Subtract"):
            a, b = (np.asarray(v, np.float64) for v in ins)
            out = a * b if t == "Multiply" else a + b if t == "Add" else a - b
        elif t == "Squeeze" or t == "Unsqueeze":
            out = ins[0].reshape(next(iter(layer.out_shapes.values())))
        self.cache[layer_id] = out
        return out


def quantized_activations(path: str | Path) -> bool:
    """Whether the IR quantizes activations (a ``FakeQuantize`` fed by the network input, not
    only by constants): an INT8 IR such as the Open Model Zoo's FP16-INT8, which OpenVINO runs
    in 8 bits. Reads the ``.xml`` only."""
    layers, _ = _parse_xml(Path(path))
    consumers: dict[str, list[str]] = {}
    for layer in layers.values():
        for src, _ in layer.inputs.values():
            consumers.setdefault(src, []).append(layer.id)
    varying = [lid for lid, layer in layers.items() if layer.type == "Parameter"]
    seen = set(varying)
    while varying:  # everything downstream of the input
        for nxt in consumers.get(varying.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                varying.append(nxt)
    return any(layer.type == "FakeQuantize" and 0 in layer.inputs and layer.inputs[0][0] in seen
               for layer in layers.values())


def read(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """Float32 weights and biases of every convolution, by IR layer name (see module doc)."""
    xml = Path(paths[0])
    binary = Path(paths[1]) if len(paths) > 1 else xml.with_suffix(".bin")
    layers, version = _parse_xml(xml)
    try:
        weights = memoryview(binary.read_bytes())
    except OSError as err:
        raise PafposeError(f"{binary}: cannot read the IR weights ({err.strerror})") from err
    out: dict[str, np.ndarray] = {}
    if version <= 7:
        return _read_legacy(layers, weights, binary)
    fold = _Folder(layers, weights, binary)
    consumers: dict[str, list[Layer]] = {}
    for layer in layers.values():
        for src, _ in layer.inputs.values():
            consumers.setdefault(src, []).append(layer)
    for layer in layers.values():
        if layer.type not in ("Convolution", "GroupConvolution"):
            continue
        w = fold.value(layer.inputs[1][0])
        if w is None:
            raise PafposeError(f"{xml}: convolution {layer.name} has non-constant weights")
        if layer.type == "GroupConvolution":  # (G, O/G, I/G, kh, kw) -> (O, I/G, kh, kw)
            w = w.reshape(-1, *w.shape[2:])
        name = layer.name.removesuffix("/WithoutBiases")
        out[f"{name}.weight"] = w.astype(np.float32)
        for key in ("strides", "dilations", "pads_begin", "pads_end"):
            if key in layer.data:
                out[f"{name}.@{key}"] = np.array(_shape(layer.data[key]))
        for nxt in consumers.get(layer.id, []):
            if nxt.type == "Add":
                other = [src for port, (src, _) in nxt.inputs.items() if src != layer.id]
                b = fold.value(other[0]) if other else None
                if b is not None:
                    out[f"{name}.bias"] = np.asarray(b, np.float32).reshape(-1)
    _input_normalisation(layers, fold, consumers, out)
    return out


def _input_normalisation(layers: dict[str, Layer], fold: _Folder, consumers: dict[str, list[Layer]],
                         out: dict[str, np.ndarray]) -> None:
    """Scale and shift applied right after the Parameter (x * scale + shift), if any."""
    params = [layer for layer in layers.values() if layer.type == "Parameter"]
    if len(params) != 1:
        return
    cur = params[0]
    for key, op in (("@input.scale", "Multiply"), ("@input.shift", "Add")):
        nxt = [c for c in consumers.get(cur.id, []) if c.type == op]
        if len(nxt) != 1:
            return
        consts = [fold.value(src) for src, _ in nxt[0].inputs.values() if src != cur.id]
        if not consts or consts[0] is None:
            return
        out[key] = np.asarray(consts[0], np.float32).reshape(-1)
        cur = nxt[0]


def _read_legacy(layers: dict[str, Layer], weights: memoryview, path: Path) -> dict[str, np.ndarray]:
    """IR v5-v7: weights and biases live in each layer's <blobs>."""
    out: dict[str, np.ndarray] = {}
    for layer in layers.values():
        if layer.type not in ("Convolution", "Deconvolution") or "weights" not in layer.blobs:
            continue
        for blob, key in (("weights", "weight"), ("biases", "bias")):
            if blob not in layer.blobs:
                continue
            offset, size, precision = layer.blobs[blob]
            if offset + size > len(weights):
                raise PafposeError(f"{path}: layer {layer.name} reads past the end of the .bin (truncated?)")
            arr = np.frombuffer(weights[offset:offset + size], dtype=_DTYPES.get(precision, np.float32))
            out[f"{layer.name}.{key}"] = arr.astype(np.float32)
        d = layer.data
        group = int(d.get("group", 1))
        kh, kw = _shape(d.get("kernel", d.get("kernel-y", "1") + "," + d.get("kernel-x", "1")))
        o = int(d.get("output", 0))
        w = out[f"{layer.name}.weight"]
        out[f"{layer.name}.weight"] = w.reshape(o, w.size // (o * kh * kw), kh, kw)
        for key, attr in (("strides", "strides"), ("dilations", "dilations"), ("pads_begin", "pads_begin")):
            if attr in d:
                out[f"{layer.name}.@{key}"] = np.array(_shape(d[attr]))
        out[f"{layer.name}.@group"] = np.array([group])
    return out


def remap(raw: dict[str, np.ndarray], model: object) -> dict[str, np.ndarray]:
    """Onto the model's names: the architecture module knows its IR layer names."""
    fn = getattr(model, "from_openvino", None)
    if fn is None:
        raise PafposeError(f"{type(model).__name__} can't load OpenVINO IR weights")
    return fn(raw)
