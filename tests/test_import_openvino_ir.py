"""The OpenVINO IR importer: human-pose-estimation-0001 (IR v10, INT8) against OpenVINO,
IR v5 against the TFLite import, float IRs written here, and damaged files."""

import shutil
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import torch

import pafpose.weights as W  # noqa: N812
from helpers_weights import IR
from pafpose import Decoder, PafposeError
from pafpose.models import build_architecture


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
def hpe(shared):
    return W.load(shared / (IR + ".xml"))


def test_ir_matches_openvino_on_real_photos(hpe, shared, tmp_path):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    xml = shared / (IR + ".xml")
    float_xml, n = strip_activation_quantization(xml, tmp_path)
    assert n == 63
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    same_weights = core.compile_model(str(float_xml), "CPU", f32)
    int8 = core.compile_model(str(xml), "CPU", f32)
    for name in ("p3_dance.png", "ski.jpg", "apink1.jpg"):
        img = cv2.imread(str(shared / "images" / name))
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


def test_three_dancers_found(hpe, shared):
    img = cv2.imread(str(shared / "images" / "p3_dance.png"))
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


def test_bad_files_give_one_line_errors(shared, tmp_path):
    src = shared / IR
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


def test_openvino_ir_v5_is_the_float_model_behind_the_dm05_tflite(shared):
    """IR v5 can't be run by today's OpenVINO; check it against the verified TFLite import.

    The TFLite file holds the same network with int8 weights, so every weight read from the
    IR must lie within half a quantisation step of the dequantised TFLite weight (measured:
    0.5000001 steps at worst) and the biases must agree to float rounding.
    """
    folder = shared / "weights" / "mobilenet-v2-pose"
    ir = W.load(folder / "mobilenet_v2_0.5_224__FP32__frozen-model.xml")
    tfl = W.load(folder / "mobilenet_v2_pose_dm05_368_432_weight_quant.tflite")
    a, b = ir.state_dict(), tfl.state_dict()
    assert a.keys() == b.keys() and len(a) == 258
    for k in a:
        diff = (a[k] - b[k]).abs().max().item()
        if k.endswith("weight"):
            assert diff <= 0.5001 * b[k].abs().max().item() / 127, k
        else:
            assert diff < 1e-5, k
    with pytest.raises(PafposeError, match="folded"):
        W.load(folder / "mobilenet_v2_0.5_224__FP32__frozen-model.xml", arch_kwargs={"variant": "small"})
