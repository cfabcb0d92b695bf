"""Input settings belong to the weights (the zoo entry, the architecture as fallback), and one
normaliser serves inference, export and training data."""

import dataclasses

import numpy as np
import pytest
import torch

from pafpose.backends import TorchBackend
from pafpose.models import InputConfig, build_architecture
from pafpose.predict import Estimator
from pafpose.preprocess import Normalise, denormalise, normalise
from pafpose.weights import ZOO, get_pretrained_cfg, load, resolve_input_config

# What the Estimator has always run each weight set with (the architectures' settings before the
# zoo held them): BGR, stride 8, height 368 everywhere.
OMZ = InputConfig("BGR", (128.0,) * 3, (1.0 / float(np.float16(1 / 255)),) * 3, pad_value=0.0, stride=8, height=368)
RAW = InputConfig("BGR", (0.0,) * 3, (1.0,) * 3, pad_value=0.0, stride=8, height=368)
CMU_DEMO = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=128.0, stride=8, height=368)
PLAIN = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=0.0, stride=8, height=368)
EXPECTED = {"human-pose-estimation-0001": OMZ, "tf-pose-mobilenet-v2": RAW, "openpose-coco": CMU_DEMO,
            "openpose-body25": PLAIN, "lightweight-openpose": PLAIN}
# channels swapped and unequal per channel: a mistake in order or channel shows
RGB = InputConfig("RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375), pad_value=0.0, stride=8, height=64)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_entry_states_its_input(name):
    cfg = ZOO[name]
    assert cfg.input_config is not None
    assert resolve_input_config(name) == EXPECTED[cfg.architecture]
    assert resolve_input_config(cfg).summary().startswith("height 368, BGR, mean ")


def test_an_entry_without_input_settings_gets_the_architectures():
    cfg = dataclasses.replace(get_pretrained_cfg("openpose-coco.cmu"), input_config=None)
    assert resolve_input_config(cfg) == build_architecture("openpose-coco").input_config  # built without memory
    net = build_architecture("lightweight-openpose", refinement_stages=0)
    net.input_config = RGB
    assert resolve_input_config(dataclasses.replace(cfg, architecture="lightweight-openpose"), net) is RGB


def test_summary_names_every_setting():
    assert OMZ.summary() == "height 368, BGR, mean 128, std 255.004, pad 0, stride 8"
    assert RGB.summary() == "height 64, RGB, mean 123.675/116.28/103.53, std 58.395/57.12/57.375, pad 0, stride 8"


def test_loading_a_zoo_model_attaches_the_entrys_input(shared, monkeypatch):
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    name = "human-pose-estimation-0001.int8"
    entry = dataclasses.replace(ZOO[name], input_config=dataclasses.replace(OMZ, height=256, pad_value=7.0))
    monkeypatch.setitem(ZOO, name, entry)
    assert load(name).input_config == entry.input_config  # not the architecture's
    est = Estimator(name, device="cpu")
    assert est.height == 256 and est.input_config.pad_value == 7.0
    xml = shared / "weights" / "human-pose-estimation-0001" / "FP16-INT8" / "human-pose-estimation-0001.xml"
    assert load(xml).input_config == entry.input_config  # a file the zoo knows by name: its entry's too


@pytest.mark.parametrize("ic", [PLAIN, RGB], ids=["BGR", "RGB"])
def test_normalise_and_denormalise_are_inverse(ic):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = normalise(pixels, ic)
    assert x.dtype == np.float32 and x.shape == pixels.shape
    net_channel = pixels[..., ::-1] if ic.channel_order == "RGB" else pixels
    expected = (net_channel.astype(np.float32) - np.float32(ic.mean[0])) / np.float32(ic.std[0])
    assert np.array_equal(x[..., 0], expected[..., 0])
    assert np.allclose(denormalise(x, ic), pixels, atol=1e-4)
    assert np.array_equal(denormalise(normalise(pixels, PLAIN), PLAIN), pixels)  # powers of two: exact


@pytest.mark.parametrize("ic", [PLAIN, RGB], ids=["BGR", "RGB"])
def test_the_graph_layer_computes_the_same_bits(ic):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    expected = normalise(pixels, ic).transpose(0, 3, 1, 2)
    for layer, x in ((Normalise(ic, nhwc=True), torch.from_numpy(pixels)),
                     (Normalise(ic), torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float32)))):
        got = layer(x)
        assert got.dtype == torch.float32 and np.array_equal(got.numpy(), expected)
    assert Normalise(ic, nhwc=True)(torch.from_numpy(pixels)).is_contiguous(memory_format=torch.channels_last)


def small_net(ic):
    torch.manual_seed(0)
    net = build_architecture("lightweight-openpose", refinement_stages=0).eval()
    net.input_config = ic
    return net


def reference(net, pixels, ic):
    """The network on what training feeds it: normalise() of the pixels."""
    with torch.no_grad():
        return net(torch.from_numpy(normalise(pixels, ic).transpose(0, 3, 1, 2).copy()))


def test_the_torch_backend_normalises_as_training_data_does():
    pixels = np.random.default_rng(2).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    net = small_net(RGB)
    backend = TorchBackend(net, torch.device("cpu"), optimize=False)
    assert isinstance(backend.normalise, Normalise)
    with torch.no_grad():
        got = backend(torch.from_numpy(pixels))
    for g, r in zip(got, reference(net, pixels, RGB), strict=True):
        assert torch.allclose(g, r, atol=1e-5)


def test_the_exported_graph_normalises_as_training_data_does(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from pafpose.export import export_onnx

    pixels = np.random.default_rng(3).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    net = small_net(RGB)
    path = export_onnx(net, tmp_path / "n.onnx", height=32, width=48, layout="NHWC")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": pixels.astype(np.float32)})
    for g, r in zip(got, reference(net, pixels, RGB), strict=True):
        assert np.abs(g - r.numpy()).max() < 1e-4


def test_a_training_sample_is_the_normalised_crop(tmp_path):
    from pafpose.data import AugmentConfig, CocoKeypoints
    from test_data import SPEC, write_dataset

    for augment in (None, AugmentConfig(size=128)):
        ds = CocoKeypoints(write_dataset(tmp_path), tmp_path, SPEC, RGB, augment=augment, size=128)
        sample = ds.sample(0)
        assert np.array_equal(sample["image"], normalise(sample["crop"], RGB).transpose(2, 0, 1))
