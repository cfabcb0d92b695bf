"""The CMU OpenPose networks as Caffe sees them, for test_architectures and the importer tests.

No published weights are available to the tests, so each test writes files in the foreign
formats itself: the layer graphs below are transcribed from the published prototxts
(``pose_deploy_linevec.prototxt`` for COCO, ``body_25/pose_deploy.prototxt``), the weights
are random (conftest's ``coco`` and ``body25`` fixtures). A reference forward pass that
interprets these graphs checks that the PyTorch networks wire the layers (and their
concatenations) exactly like Caffe.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as fn

# ---------------------------------------------------------------------------------------
# The prototxts as layer lists: (type, name, bottoms, top, out_channels, kernel)

_VGG = [("conv1_1", 64), ("conv1_2", 64), "pool1_stage1", ("conv2_1", 128), ("conv2_2", 128), "pool2_stage1",
        ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), "pool3_stage1",
        ("conv4_1", 512), ("conv4_2", 512)]


def _trunk(prelu_from: str | None) -> list[tuple]:
    g, x, prelu = [], "image", False
    for item in [*_VGG, ("conv4_3_CPM", 256), ("conv4_4_CPM", 128)]:
        if isinstance(item, str):
            g.append(("Pooling", item, [x], item, 0, 2))
            x = item
            continue
        name, c = item
        prelu = prelu or name == prelu_from
        g.append(("Convolution", name, [x], name, c, 3))
        g.append(("PReLU", "p" + name.replace("conv", "relu"), [name], name, 0, 0) if prelu
                 else ("ReLU", name.replace("conv", "relu"), [name], name, 0, 0))
        x = name
    return g


def coco_graph() -> tuple[list[tuple], str, str]:
    g = _trunk(None)
    tops = {}
    for b, c in ((1, 38), (2, 19)):
        x = "conv4_4_CPM"
        for i, (cout, k) in enumerate([(128, 3), (128, 3), (128, 3), (512, 1), (c, 1)], start=1):
            name = f"conv5_{i}_CPM_L{b}"
            g.append(("Convolution", name, [x], name, cout, k))
            if i < 5:
                g.append(("ReLU", name.replace("conv", "relu"), [name], name, 0, 0))
            x = name
        tops[b] = x
    for t in range(2, 7):
        g.append(("Concat", f"concat_stage{t}", [tops[1], tops[2], "conv4_4_CPM"], f"concat_stage{t}", 0, 0))
        for b, c in ((1, 38), (2, 19)):
            x = f"concat_stage{t}"
            for i, (cout, k) in enumerate([(128, 7)] * 5 + [(128, 1), (c, 1)], start=1):
                name = f"Mconv{i}_stage{t}_L{b}"
                g.append(("Convolution", name, [x], name, cout, k))
                if i < 7:
                    g.append(("ReLU", f"Mrelu{i}_stage{t}_L{b}", [name], name, 0, 0))
                x = name
            tops[b] = x
    return g, tops[2], tops[1]  # heatmaps = L2, PAFs = L1


def body25_graph() -> tuple[list[tuple], str, str]:
    g = _trunk("conv4_2")

    def stage(s: int, b: int, bottom: str, c: int, mid: int, cout: int) -> str:
        x = bottom
        for i in range(1, 6):
            y = x
            for j in range(3):
                name = f"Mconv{i}_stage{s}_L{b}_{j}"
                g.append(("Convolution", name, [y], name, c, 3))
                g.append(("PReLU", f"Mprelu{i}_stage{s}_L{b}_{j}", [name], name, 0, 0))
                y = name
            x = f"Mconv{i}_stage{s}_L{b}_concat"
            g.append(("Concat", x, [f"Mconv{i}_stage{s}_L{b}_{j}" for j in range(3)], x, 0, 0))
        g.append(("Convolution", f"Mconv6_stage{s}_L{b}", [x], f"Mconv6_stage{s}_L{b}", mid, 1))
        g.append(("PReLU", f"Mprelu6_stage{s}_L{b}", [f"Mconv6_stage{s}_L{b}"], f"Mconv6_stage{s}_L{b}", 0, 0))
        g.append(("Convolution", f"Mconv7_stage{s}_L{b}", [f"Mconv6_stage{s}_L{b}"], f"Mconv7_stage{s}_L{b}", cout, 1))
        return f"Mconv7_stage{s}_L{b}"

    paf = stage(0, 2, "conv4_4_CPM", 96, 256, 52)
    for t in (1, 2, 3):
        g.append(("Concat", f"concat_stage{t}_L2", ["conv4_4_CPM", paf], f"concat_stage{t}_L2", 0, 0))
        paf = stage(t, 2, f"concat_stage{t}_L2", 128, 512, 52)
    g.append(("Concat", "concat_stage0_L1", ["conv4_4_CPM", paf], "concat_stage0_L1", 0, 0))
    hm = stage(0, 1, "concat_stage0_L1", 96, 256, 26)
    g.append(("Concat", "concat_stage1_L1", ["conv4_4_CPM", hm, paf], "concat_stage1_L1", 0, 0))
    hm = stage(1, 1, "concat_stage1_L1", 128, 512, 26)
    return g, hm, paf


def random_blobs(graph: list[tuple], seed: int) -> dict[str, list[np.ndarray]]:
    """Random weights of the graph's layers, of the shapes Caffe gives them (fan-in scaled)."""
    rng = np.random.default_rng(seed)
    channels, blobs = {"image": 3}, {}
    for kind, name, bottoms, top, cout, k in graph:
        if kind == "Convolution":
            cin = channels[bottoms[0]]
            w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(math.sqrt(2 / (cin * k * k)))
            blobs[name] = [w, rng.standard_normal(cout, dtype=np.float32) * np.float32(0.1)]
            channels[top] = cout
        elif kind == "PReLU":
            blobs[name] = [rng.uniform(0.0, 0.5, channels[bottoms[0]]).astype(np.float32)]
        elif kind == "Concat":
            channels[top] = sum(channels[b] for b in bottoms)
        else:
            channels[top] = channels[bottoms[0]]
    return blobs


def reference_forward(graph: list[tuple], blobs: dict, x: torch.Tensor, outputs: tuple[str, str]) -> list:
    """Run the Caffe graph with torch functionals (in place layers overwrite their blob)."""
    data = {"image": x}
    for kind, name, bottoms, top, _, k in graph:
        if kind == "Convolution":
            w, b = (torch.from_numpy(a) for a in blobs[name])
            data[top] = fn.conv2d(data[bottoms[0]], w, b, padding=k // 2)
        elif kind == "ReLU":
            data[top] = fn.relu(data[bottoms[0]])
        elif kind == "PReLU":
            data[top] = fn.prelu(data[bottoms[0]], torch.from_numpy(blobs[name][0]))
        elif kind == "Pooling":
            data[top] = fn.max_pool2d(data[bottoms[0]], 2, 2, ceil_mode=True)
        else:
            data[top] = torch.cat([data[b] for b in bottoms], dim=1)
    return [data[o] for o in outputs]


# ---------------------------------------------------------------------------------------
# A protobuf writer for .caffemodel files


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _int_field(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _blob_proto(arr: np.ndarray, legacy: bool = False) -> bytes:
    if legacy:  # num, channels, height, width (V1 era): 1-D blobs as (1, 1, 1, C)
        dims = (1,) * (4 - arr.ndim) + arr.shape
        head = b"".join(_int_field(f, d) for f, d in zip((1, 2, 3, 4), dims, strict=True))
    else:
        head = _len_field(7, _len_field(1, b"".join(_varint(d) for d in arr.shape)))
    return head + _len_field(5, np.ascontiguousarray(arr, dtype="<f4").tobytes())


def write_caffemodel(path, graph: list[tuple], blobs: dict, v1: bool = False) -> None:
    parts = [_len_field(1, b"test net")]
    for kind, name, bottoms, top, _, _ in graph:
        if v1:  # V1LayerParameter in NetParameter.layers (2): bottom 2, top 3, name 4, blobs 6
            msg = b"".join(_len_field(2, b.encode()) for b in bottoms) + _len_field(3, top.encode())
            msg += _len_field(4, name.encode()) + b"".join(_len_field(6, _blob_proto(a, True))
                                                           for a in blobs.get(name, []))
            parts.append(_len_field(2, msg))
        else:  # LayerParameter in NetParameter.layer (100): name 1, type 2, bottom 3, top 4, blobs 7
            msg = _len_field(1, name.encode()) + _len_field(2, kind.encode())
            msg += b"".join(_len_field(3, b.encode()) for b in bottoms) + _len_field(4, top.encode())
            msg += b"".join(_len_field(7, _blob_proto(a)) for a in blobs.get(name, []))
            parts.append(_len_field(100, msg))
    path.write_bytes(b"".join(parts))


# ---------------------------------------------------------------------------------------
# The two PyTorch ports' key names (from their model definitions)


def tensorboy_keys() -> dict[str, str]:
    """Caffe layer -> key prefix in tensorboy's pose_model.pth (positional nn.Sequential)."""
    keys, i = {}, 0
    for item in [*_VGG, ("conv4_3_CPM", 0), ("conv4_4_CPM", 0)]:
        if isinstance(item, str):
            i += 1
            continue
        keys[item[0]] = f"model0.{i}"
        i += 2  # conv, relu
    for b in (1, 2):
        for j in range(5):
            keys[f"conv5_{j + 1}_CPM_L{b}"] = f"model1_{b}.{2 * j}"
        for t in range(2, 7):
            for j in range(7):
                keys[f"Mconv{j + 1}_stage{t}_L{b}"] = f"model{t}_{b}.{2 * j}"
    return keys


def port_state(blobs: dict, prefix: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """The blobs as a PyTorch state dict; keys ``<prefix or layer>.weight`` / ``.bias``."""
    out = {}
    for layer, arrays in blobs.items():
        p = prefix[layer] if prefix else layer
        for param, a in zip(("weight", "bias"), arrays, strict=False):
            out[f"{p}.{param}"] = torch.from_numpy(a)
    return out


def assert_weights(model, blobs: dict) -> None:
    """Every parameter of ``model`` equals the blob of the Caffe layer it is named after."""
    layers = model.caffe_layers()
    assert set(layers) == set(blobs)  # the network has exactly the prototxt's weighted layers
    state = model.state_dict()
    for layer, path in layers.items():
        for param, expected in zip(("weight", "bias"), blobs[layer], strict=False):
            np.testing.assert_array_equal(state[f"{path}.{param}"].numpy(), expected, err_msg=f"{layer}.{param}")
    assert sum(v.numel() for v in state.values()) == sum(a.size for v in blobs.values() for a in v)


def assert_same_outputs(model, graph, hm_name, paf_name, blobs) -> None:
    x = torch.randn(1, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        hm, paf = model.eval()(x)
        ref_hm, ref_paf = reference_forward(graph, blobs, x, (hm_name, paf_name))
    for got, ref in ((hm, ref_hm), (paf, ref_paf)):
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
