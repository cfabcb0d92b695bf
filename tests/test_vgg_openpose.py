"""The CMU OpenPose networks and their Caffe / PyTorch-port importers.

No published weights are available to the tests, so each test writes files in the foreign
formats itself: the layer graphs below are transcribed from the published prototxts
(``pose_deploy_linevec.prototxt`` for COCO, ``body_25/pose_deploy.prototxt``), the weights
are random. A reference forward pass that interprets these graphs checks that the
PyTorch networks wire the layers (and their concatenations) exactly like Caffe.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as fn

import pafpose.weights
from pafpose.errors import PafposeError
from pafpose.models import build_architecture
from pafpose.models.vgg_openpose import OPENPOSE_BODY25
from pafpose.skeleton import BODY25
from pafpose.weights import caffe, torch_ports

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


# ---------------------------------------------------------------------------------------
# Fixtures: each model and its random weights, built once


@pytest.fixture(scope="module")
def coco() -> tuple[list, str, str, dict]:
    g, hm, paf = coco_graph()
    return g, hm, paf, random_blobs(g, seed=1)


@pytest.fixture(scope="module")
def body25() -> tuple[list, str, str, dict]:
    g, hm, paf = body25_graph()
    return g, hm, paf, random_blobs(g, seed=2)


@pytest.fixture(scope="module")
def coco_caffemodel(tmp_path_factory, coco):
    path = tmp_path_factory.mktemp("coco") / "pose_iter_440000.caffemodel"
    write_caffemodel(path, coco[0], coco[3])
    return path


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


# ---------------------------------------------------------------------------------------
# Architectures


def test_coco_parameter_count_is_the_published_one():
    assert build_architecture("openpose-coco").num_parameters() == 52_311_446


def test_body25_parameter_count_matches_the_prototxt(body25):
    # The figure is computed from the layer shapes of body_25/pose_deploy.prototxt (the graph
    # transcribed above): 26,166,084 (convolutions with biases, PReLU slopes per channel).
    total = sum(a.size for v in body25[3].values() for a in v)
    assert total == 26_166_084
    assert build_architecture("openpose-body25").num_parameters() == total


def test_body25_field_layout_is_openposes():
    spec = OPENPOSE_BODY25
    assert spec.skeleton is BODY25 and spec.num_heatmaps == 26 and spec.num_pafs == 52
    # POSE_BODY_PART_PAIRS and POSE_MAP_INDEX of BODY_25 (poseParameters.cpp), as indices.
    pairs = [1, 8, 1, 2, 1, 5, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11, 8, 12, 12, 13, 13, 14, 1, 0, 0, 15, 15,
             17, 0, 16, 16, 18, 2, 17, 5, 18, 14, 19, 19, 20, 14, 21, 11, 22, 22, 23, 11, 24]
    assert spec.limb_index.reshape(-1).tolist() == pairs
    assert spec.paf_index.reshape(-1).tolist()[:8] == [0, 1, 14, 15, 22, 23, 16, 17]


@pytest.mark.parametrize("name, stages, nh, npf", [("openpose-coco", 6, 19, 38), ("openpose-body25", 4, 26, 52)])
def test_forward_shapes_train_and_eval(name, stages, nh, npf):
    model = build_architecture(name)
    assert model.input_config.stride == model.spec.stride == 8
    x = torch.randn(2, 3, 64, 40)
    with torch.no_grad():
        out = model.train()(x)
        assert isinstance(out, list) and len(out) == stages
        assert all(h.shape == (2, nh, 8, 5) and p.shape == (2, npf, 8, 5) for h, p in out)
        hm, paf = model.eval()(x)
    assert hm.shape == (2, nh, 8, 5) and paf.shape == (2, npf, 8, 5)
    torch.testing.assert_close(hm, out[-1][0])
    torch.testing.assert_close(paf, out[-1][1])


def test_input_conventions():
    coco = build_architecture("openpose-coco").input_config
    assert (coco.channel_order, coco.mean, coco.std, coco.pad_value, coco.height) == \
        ("BGR", (128.0,) * 3, (256.0,) * 3, 128.0, 368)


# ---------------------------------------------------------------------------------------
# Caffe


def test_caffemodel_coco_loads_every_blob_and_computes_like_caffe(coco, coco_caffemodel):
    graph, hm, paf, blobs = coco
    model = pafpose.weights.load(coco_caffemodel, architecture="openpose-coco")
    assert_weights(model, blobs)
    assert_same_outputs(model, graph, hm, paf, blobs)


def test_caffemodel_body25_loads_every_blob_and_computes_like_caffe(body25, tmp_path):
    graph, hm, paf, blobs = body25
    path = tmp_path / "pose_iter_584000.caffemodel"
    write_caffemodel(path, graph, blobs)
    model = pafpose.weights.load(path)  # the zoo knows this file name
    assert type(model).__name__ == "OpenPoseBody25"
    assert_weights(model, blobs)
    assert_same_outputs(model, graph, hm, paf, blobs)


def test_caffemodel_v1_layers_with_legacy_shapes(tmp_path):
    graph = [("Convolution", "conv1_1", ["image"], "conv1_1", 64, 3),
             ("PReLU", "prelu4_2", ["conv1_1"], "conv1_1", 0, 0)]
    blobs = random_blobs(graph, seed=3)
    path = tmp_path / "old.caffemodel"
    write_caffemodel(path, graph, blobs, v1=True)
    raw = caffe.read([path])
    assert raw["conv1_1.0"].shape == (64, 3, 3, 3) and raw["conv1_1.1"].shape == (1, 1, 1, 64)
    np.testing.assert_array_equal(raw["prelu4_2.0"].reshape(-1), blobs["prelu4_2"][0])
    state = caffe.remap(raw, build_architecture("openpose-coco"))  # legacy (1, 1, 1, C) -> (C,)
    assert list(state) == ["features.conv1_1.weight", "features.conv1_1.bias"]
    np.testing.assert_array_equal(state["features.conv1_1.bias"].numpy(), blobs["conv1_1"][1])


def test_truncated_caffemodel_names_the_file(coco_caffemodel, tmp_path):
    path = tmp_path / "cut.caffemodel"
    with open(coco_caffemodel, "rb") as f:
        path.write_bytes(f.read(1_000_000))
    with pytest.raises(PafposeError, match=r"cut\.caffemodel.*truncated"):
        pafpose.weights.load(path, architecture="openpose-coco")
    path.write_bytes(b"not a caffemodel at all")
    with pytest.raises(PafposeError, match=r"cut\.caffemodel"):
        pafpose.weights.load(path, architecture="openpose-coco")


def test_caffemodel_with_a_wrong_shape_names_layer_and_shapes(body25, tmp_path):
    graph, _, _, blobs = body25
    bad = dict(blobs)
    bad["Mconv7_stage3_L2"] = [blobs["Mconv7_stage3_L2"][0][:50], blobs["Mconv7_stage3_L2"][1]]
    path = tmp_path / "bad.caffemodel"
    write_caffemodel(path, graph, bad)
    with pytest.raises(PafposeError, match=r"bad\.caffemodel.*Mconv7_stage3_L2\.weight.*\(52, 512, 1, 1\).*"
                                           r"\(50, 512, 1, 1\)"):
        pafpose.weights.load(path, architecture="openpose-body25")


def test_caffe_weights_do_not_load_into_other_networks():
    with pytest.raises(PafposeError, match="openpose-coco"):
        caffe.remap({"conv1_1.0": np.zeros((64, 3, 3, 3), np.float32)}, build_architecture("lightweight-openpose"))


# ---------------------------------------------------------------------------------------
# PyTorch ports


def test_tensorboy_pose_model_loads_every_tensor(coco, tmp_path):
    blobs = coco[3]
    path = tmp_path / "pose_model.pth"
    torch.save(port_state(blobs, tensorboy_keys()), path)
    model = pafpose.weights.load(path, architecture="openpose-coco", file_format="torch-openpose")
    assert_weights(model, blobs)


def test_hzzone_body_pose_model_loads_every_tensor(coco, tmp_path):
    blobs = coco[3]
    path = tmp_path / "body_pose_model.pth"
    torch.save(port_state(blobs), path)  # Hzzone's file: Caffe layer names, no block prefix
    model = pafpose.weights.load(path, architecture="openpose-coco")  # zoo file name -> torch-openpose
    assert_weights(model, blobs)


def test_port_read_unwraps_checkpoints_and_block_prefixes(tmp_path):
    w = torch.arange(6.0).reshape(2, 3)
    for i, obj in enumerate([{"state_dict": {"module.model0.conv1_1.weight": w}}, {"model": {"conv1_1.weight": w}}]):
        path = tmp_path / f"{i}.pth"
        torch.save(obj, path)
        raw = torch_ports.read([path])
        assert list(raw) in (["model0.conv1_1.weight"], ["conv1_1.weight"])
        np.testing.assert_array_equal(next(iter(raw.values())), w.numpy())
    path = tmp_path / "junk.pth"
    path.write_bytes(b"junk")
    with pytest.raises(PafposeError, match=r"junk\.pth"):
        torch_ports.read([path])


def test_port_with_a_missing_tensor_is_refused(body25, tmp_path):
    state = port_state(body25[3], {k: f"model0.{k}" for k in body25[3]})  # Caffe names inside blocks, any port
    del state["model0.Mprelu6_stage1_L1.weight"]
    path = tmp_path / "body25_port.pth"
    torch.save(state, path)
    with pytest.raises(PafposeError, match=r"body25_port\.pth.*1 missing.*Mprelu6_stage1_L1"):
        pafpose.weights.load(path, architecture="openpose-body25", file_format="torch-openpose")


def test_port_with_unknown_names_is_refused():
    with pytest.raises(PafposeError, match="no tensor"):
        torch_ports.remap({"backbone.layer1.weight": np.zeros(3, np.float32)}, build_architecture("openpose-body25"))
    with pytest.raises(PafposeError, match="tensorboy"):
        torch_ports.remap({"model0.0.weight": np.zeros(3, np.float32)}, build_architecture("openpose-body25"))
