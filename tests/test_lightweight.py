"""Lightweight OpenPose / human-pose-estimation-0001, the OpenVINO IR importer, and the zoo."""

import shutil
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import torch

import pafpose.weights as W  # noqa: N812
from pafpose import Decoder, PafposeError
from pafpose.models import build_architecture, list_architectures
from pafpose.weights._download import download, resolve_file

IR = "weights/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001"


def test_parameter_counts_and_stage_outputs():
    hpe = build_architecture("human-pose-estimation-0001")
    assert hpe.num_parameters() == 4_099_058  # Open Model Zoo: 4.099 M (BN folded)
    lw = build_architecture("lightweight-openpose")
    assert lw.num_parameters() == 4_091_698  # with BN, 1 refinement stage (paper: 4.1 M)
    assert build_architecture("lightweight-openpose", refinement_stages=3).num_parameters() > 7_000_000
    x = torch.randn(1, 3, 64, 96)
    stages = lw.train()(x)
    assert len(stages) == 2 and stages[0][0].shape == (1, 19, 8, 12) and stages[0][1].shape == (1, 38, 8, 12)
    hm, paf = lw.eval()(x)
    assert hm.shape == (1, 19, 8, 12) and paf.shape == (1, 38, 8, 12)
    assert {"lightweight-openpose", "human-pose-estimation-0001"} <= set(list_architectures())


def strip_activation_quantization(xml_path, out_dir):
    """A copy of the IR with FakeQuantize removed from activations (weights stay INT8).

    OpenVINO then runs float activations on exactly the dequantised weights pafpose
    uses, so the two must agree to float rounding.
    """
    tree = ET.parse(xml_path)
    root = tree.getroot()
    layers = {el.get("id"): el for el in root.find("layers")}
    edges = root.find("edges")
    source = {(e.get("to-layer"), e.get("to-port")): (e.get("from-layer"), e.get("from-port")) for e in edges}
    acts = {lid for lid, el in layers.items() if el.get("type") == "FakeQuantize"
            and layers[source[(lid, "0")][0]].get("type") not in ("Const", "Convert")}
    bypass = {(lid, el.find("output").find("port").get("id")): source[(lid, "0")]
              for lid, el in layers.items() if lid in acts}
    for e in list(edges):
        if e.get("to-layer") in acts:
            edges.remove(e)
            continue
        src = (e.get("from-layer"), e.get("from-port"))
        while src in bypass:
            src = bypass[src]
        e.set("from-layer", src[0])
        e.set("from-port", src[1])
    for lid in acts:
        root.find("layers").remove(layers[lid])
    out = out_dir / "hpe_float_activations.xml"
    tree.write(out)
    shutil.copy(xml_path.with_suffix(".bin"), out.with_suffix(".bin"))
    return out, len(acts)


def run_both(model, compiled, image):
    x = cv2.resize(image, (456, 256)).astype(np.float32).transpose(2, 0, 1)[None]
    res = compiled([x])
    ref = {o.get_any_name(): res[o] for o in compiled.outputs}
    ic = model.input_config
    xt = (torch.from_numpy(x) - torch.tensor(ic.mean).view(1, 3, 1, 1)) / torch.tensor(ic.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        hm, paf = model(xt)
    return (hm.numpy(), paf.numpy()), (ref["Mconv7_stage2_L2"], ref["Mconv7_stage2_L1"])


@pytest.fixture(scope="module")
def hpe(shared_dir_or_skip):
    return W.load(shared_dir_or_skip / (IR + ".xml"))


@pytest.fixture(scope="module")
def shared_dir_or_skip():
    from conftest import shared_dir

    path = shared_dir()
    if path is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED)")
    return path


def test_ir_matches_openvino_on_real_photos(hpe, shared_dir_or_skip, tmp_path):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    xml = shared_dir_or_skip / (IR + ".xml")
    float_xml, n = strip_activation_quantization(xml, tmp_path)
    assert n == 63
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    same_weights = core.compile_model(str(float_xml), "CPU", f32)
    int8 = core.compile_model(str(xml), "CPU", f32)
    for name in ("p3_dance.png", "ski.jpg", "apink1.jpg"):
        img = cv2.imread(str(shared_dir_or_skip / "images" / name))
        ours, ref = run_both(hpe, same_weights, img)
        # Same graph, same dequantised weights, float activations: float32 rounding only.
        for a, b in zip(ours, ref, strict=True):
            assert np.abs(a - b).max() < 1e-4
        # The shipped graph also quantises activations to 8 bits (63 FakeQuantize ops):
        # measured mean |diff| 0.0007-0.002 and max 0.14-0.21 on these photos, where
        # fields peak at ~1. Bound the mean tightly and the rare large pixels loosely.
        ours, ref = run_both(hpe, int8, img)
        for a, b in zip(ours, ref, strict=True):
            assert np.abs(a - b).mean() < 0.004 and np.abs(a - b).max() < 0.35
        decoded = [Decoder(hpe.spec).decode(a, b) for a, b in ((ours[0][0], ours[1][0]), (ref[0][0], ref[1][0]))]
        assert len(decoded[0]) == len(decoded[1])


def test_three_dancers_found(hpe, shared_dir_or_skip):
    img = cv2.imread(str(shared_dir_or_skip / "images" / "p3_dance.png"))
    h = 368
    w = round(img.shape[1] * h / img.shape[0] / 8) * 8
    x = torch.from_numpy(cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32))
    ic = hpe.input_config
    x = ((x - torch.tensor(ic.mean)) / torch.tensor(ic.std)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        hm, paf = hpe(x)
    poses = Decoder(hpe.spec).decode(hm[0], paf[0])
    assert len(poses) == 3
    for p in poses:
        k = p.keypoints
        nose, neck = k[0], k[1]
        hips = k[[8, 11], 1]
        assert nose[1] < neck[1] < np.nanmean(hips)


def test_zoo_resolves_from_mirror_offline_and_caches(shared_dir_or_skip, monkeypatch, tmp_path):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAFPOSE_OFFLINE", "1")
    monkeypatch.setattr(W, "_MEMORY", {})  # as in a new process
    with pytest.raises(PafposeError, match=r"PAFPOSE_OFFLINE.*storage.openvinotoolkit.org.*PAFPOSE_WEIGHTS_PATH"):
        W.load("human-pose-estimation-0001")
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared_dir_or_skip / "weights"))
    model = W.load("human-pose-estimation-0001")
    assert not model.training and model.num_parameters() == 4_099_058
    converted = list((tmp_path / "home" / "converted").glob("*.pt"))
    assert len(converted) == 1
    again = W.load("human-pose-estimation-0001")
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_download_verifies_and_writes_atomically(shared_dir_or_skip, tmp_path):
    cfg = W.get_pretrained_cfg("human-pose-estimation-0001.int8")
    src = shared_dir_or_skip / (IR + ".xml")
    wf = cfg.files[0]
    got = download(src.as_uri(), tmp_path / "ok" / wf.name, wf.sha256, wf.size)
    assert got.read_bytes() == src.read_bytes()
    bad = tmp_path / "bad" / wf.name
    with pytest.raises(PafposeError, match="sha256"):
        download(src.as_uri(), bad, "0" * 64, wf.size)
    assert not bad.exists() and list(bad.parent.iterdir()) == []  # no partial file left behind
    with pytest.raises(PafposeError, match="bytes"):
        download(src.as_uri(), bad, wf.sha256, wf.size + 1)
    assert list(bad.parent.iterdir()) == []


def test_download_path_of_the_zoo(shared_dir_or_skip, tmp_path, monkeypatch):
    """resolve_file fetches from the entry's URL into the cache (a file:// URL stands in)."""
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    cfg = W.get_pretrained_cfg("human-pose-estimation-0001.int8")
    local = shared_dir_or_skip / IR
    files = tuple(type(wf)(wf.name, ((local.with_suffix(wf.name[-4:])).as_uri(),), wf.sha256, wf.size)
                  for wf in cfg.files)
    mirrored = type(cfg)(**{**cfg.__dict__, "files": files})
    paths = [resolve_file(mirrored, wf) for wf in mirrored.files]
    assert [p.parent for p in paths] == [tmp_path / cfg.name] * 2
    assert all(p.stat().st_size == wf.size for p, wf in zip(paths, files, strict=True))


def test_bad_files_give_one_line_errors(shared_dir_or_skip, tmp_path):
    src = shared_dir_or_skip / IR
    xml = tmp_path / "human-pose-estimation-0001.xml"
    shutil.copy(src.with_suffix(".xml"), xml)
    data = src.with_suffix(".bin").read_bytes()
    xml.with_suffix(".bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(PafposeError, match=r"human-pose-estimation-0001\.bin.*truncated"):
        W.load(xml)
    xml.with_suffix(".bin").unlink()
    with pytest.raises(PafposeError, match="file not found"):
        W.load(xml)
    junk = tmp_path / "junk.xml"
    junk.write_text("this is not xml")
    junk.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(PafposeError, match=r"junk\.bin: empty file"):
        W.load(junk, architecture="human-pose-estimation-0001")
    junk.with_suffix(".bin").write_bytes(b"\x00" * 64)
    with pytest.raises(PafposeError, match=r"junk\.xml"):
        W.load(junk, architecture="human-pose-estimation-0001")
    with pytest.raises(PafposeError, match="deployed variant"):
        W.load(src.with_suffix(".xml"), architecture="lightweight-openpose")
    model = build_architecture("human-pose-estimation-0001")
    state = dict(model.state_dict())
    state["cpm.align.0.weight"] = torch.zeros(64, 512, 1, 1)
    with pytest.raises(PafposeError, match=r"cpm\.align\.0\.weight expects shape \(128, 512, 1, 1\), file has \(64"):
        W.load_state(model, state, "x.pt")
    with pytest.raises(PafposeError, match="unknown model"):
        W.load("openpose-cocoa")
    with pytest.raises(PafposeError, match="file not found"):
        W.load(tmp_path / "missing.caffemodel")


def test_unverifiable_entries_do_not_pick_up_other_files(shared_dir_or_skip, monkeypatch):
    """The FP32 entry has no known hash: the INT8 copy (same file name) must not stand in,
    and pafpose does not download it (it could not check it)."""
    monkeypatch.setenv("PAFPOSE_OFFLINE", "1")
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared_dir_or_skip / "weights"))
    with pytest.raises(PafposeError, match=r"does not download .*no verified sha256"):
        W.load("human-pose-estimation-0001.fp32")


def published_lightweight_keys():
    """State-dict names and shapes of Lightweight OpenPose (with_mobilenet.py, 1 refinement stage)."""
    keys = {}

    def conv(name, cout, cin, k, bias=True, bn=False):
        keys[f"{name}.0.weight"] = (cout, cin, k, k)
        if bias:
            keys[f"{name}.0.bias"] = (cout,)
        if bn:
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{name}.1.{p}"] = (cout,)
            keys[f"{name}.1.num_batches_tracked"] = ()

    conv("model.0", 32, 3, 3, bias=False, bn=True)
    chans = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5
    for i, (cin, cout) in enumerate(chans, start=1):
        keys[f"model.{i}.0.weight"] = (cin, 1, 3, 3)
        keys[f"model.{i}.3.weight"] = (cout, cin, 1, 1)
        for j in (1, 4):
            c = cin if j == 1 else cout
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"model.{i}.{j}.{p}"] = (c,)
            keys[f"model.{i}.{j}.num_batches_tracked"] = ()
    conv("cpm.align", 128, 512, 1)
    for i in range(3):
        keys[f"cpm.trunk.{i}.0.weight"] = (128, 1, 3, 3)
        keys[f"cpm.trunk.{i}.2.weight"] = (128, 128, 1, 1)
    conv("cpm.conv", 128, 128, 3)
    for i in range(3):
        conv(f"initial_stage.trunk.{i}", 128, 128, 3)
    for head, n in (("heatmaps", 19), ("pafs", 38)):
        conv(f"initial_stage.{head}.0", 512, 128, 1)
        conv(f"initial_stage.{head}.1", n, 512, 1)
    for b in range(5):
        pre = f"refinement_stages.0.trunk.{b}"
        conv(f"{pre}.initial", 128, 185 if b == 0 else 128, 1)
        conv(f"{pre}.trunk.0", 128, 128, 3, bn=True)
        conv(f"{pre}.trunk.1", 128, 128, 3, bn=True)
    for head, n in (("heatmaps", 19), ("pafs", 38)):
        conv(f"refinement_stages.0.{head}.0", 128, 128, 1)
        conv(f"refinement_stages.0.{head}.1", n, 128, 1)
    return keys


def test_lightweight_checkpoint_lands_in_place(tmp_path):
    keys = published_lightweight_keys()
    gen = torch.Generator().manual_seed(0)
    written = {k: (torch.randn(s, generator=gen) if s else torch.tensor(7)) for k, s in keys.items()}
    # as the reference training script saves it: DataParallel prefix, old PyTorch (no num_batches_tracked)
    ckpt = {"state_dict": {f"module.{k}": v for k, v in written.items() if "num_batches" not in k},
            "optimizer": {}, "iter": 370000}
    path = tmp_path / "checkpoint_iter_370000.pth"
    torch.save(ckpt, path)
    model = W.load(path)
    assert type(model).__name__ == "LightweightOpenPose" and not model.deployed
    ours = model.state_dict()
    assert set(ours) == set(keys)
    for k, v in written.items():
        if "num_batches" not in k:
            assert torch.equal(ours[k], v), k
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PafposeError, match=r"checkpoint_iter_370000\.pth"):
        W.load(path)
    bad = dict(ckpt["state_dict"])
    del bad["module.cpm.conv.0.bias"]
    torch.save(bad, path)
    with pytest.raises(PafposeError, match=r"1 missing.*cpm\.conv\.0\.bias"):
        W.load(path)


def write_ir(path, weight, bias, element_type):
    """A minimal IR v10: Parameter -> Convolution(Const [-> Convert]) -> Add(Const) -> Result."""
    wdt = {"f32": np.float32, "f16": np.float16}[element_type]
    wbytes, bbytes = weight.astype(wdt).tobytes(), bias.astype(wdt).tobytes()
    o, i, kh, kw = weight.shape
    convert = element_type != "f32"

    def const(lid, name, offset, data, shape):
        dims = "".join(f"<dim>{d}</dim>" for d in shape)
        return (f'<layer id="{lid}" name="{name}" type="Const" version="opset1"><data element_type="{element_type}" '
                f'offset="{offset}" shape="{",".join(map(str, shape))}" size="{len(data)}"/>'
                f'<output><port id="0">{dims}</port></output></layer>')

    layers = [
        '<layer id="0" name="data" type="Parameter" version="opset1"><data element_type="f32" shape="1,3,8,8"/>'
        "<output><port id=\"0\"><dim>1</dim><dim>3</dim><dim>8</dim><dim>8</dim></port></output></layer>",
        const(1, "w", 0, wbytes, (o, i, kh, kw)),
        '<layer id="2" name="w/convert" type="Convert" version="opset1"><data destination_type="f32"/>'
        '<input><port id="0"/></input><output><port id="1"/></output></layer>',
        '<layer id="3" name="conv/WithoutBiases" type="Convolution" version="opset1">'
        '<data strides="1,1" dilations="1,1" pads_begin="1,1" pads_end="1,1"/>'
        '<input><port id="0"/><port id="1"/></input><output><port id="2"/></output></layer>',
        const(4, "b", len(wbytes), bbytes, (1, o, 1, 1)),
        '<layer id="5" name="conv" type="Add" version="opset1"><input><port id="0"/><port id="1"/></input>'
        '<output><port id="2"/></output></layer>',
        '<layer id="6" name="out" type="Result" version="opset1"><input><port id="0"/></input></layer>',
    ]
    w_src = ("2", "1") if convert else ("1", "0")
    edges = [("0", "0", "3", "0"), (*w_src, "3", "1"), ("3", "2", "5", "0"), ("4", "0", "5", "1"), ("5", "2", "6", "0")]
    if convert:
        edges.append(("1", "0", "2", "0"))
    xml = ('<?xml version="1.0"?><net name="t" version="10"><layers>' + "".join(layers) + "</layers><edges>"
           + "".join(f'<edge from-layer="{a}" from-port="{b}" to-layer="{c}" to-port="{d}"/>' for a, b, c, d in edges)
           + "</edges></net>")
    path.write_text(xml)
    path.with_suffix(".bin").write_bytes(wbytes + bbytes)


@pytest.mark.parametrize("element_type", ["f32", "f16"])
def test_ir_reader_float_weights(tmp_path, element_type):
    from pafpose.weights import openvino_ir

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    xml = tmp_path / "t.xml"
    write_ir(xml, w, b, element_type)
    raw = openvino_ir.read([xml])
    tol = 0 if element_type == "f32" else 2e-3
    assert np.allclose(raw["conv.weight"], w, atol=tol, rtol=tol) and raw["conv.weight"].dtype == np.float32
    assert np.allclose(raw["conv.bias"], b, atol=tol, rtol=tol)
    assert raw["conv.@strides"].tolist() == [1, 1]
