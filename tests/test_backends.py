"""Backends, export and `pafpose bench`: the same fields and poses whatever runs the network."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pafpose.backends
import pafpose.predict
from pafpose import PafposeError
from pafpose.backends import fuse_conv_bn
from pafpose.export import export_onnx, export_openvino
from pafpose.models import build_architecture
from pafpose.predict import Estimator

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'pafpose[onnx]')")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The CPU backends set PyTorch to one thread for the process; the other tests want theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cpu_backends_leave_pytorch_one_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    torch.set_num_threads(2)
    Estimator(random_net(), device="cpu", height=64, backend="onnxruntime")
    assert torch.get_num_threads() == 1
    Estimator(random_net(), device="cpu", height=64, backend="torch")  # torch restores what the CPU backend lowered
    assert torch.get_num_threads() == pafpose.backends._TORCH_THREADS
    torch.set_num_threads(2)
    Estimator(random_net(), device="cpu", height=64, backend="torch")  # ... but leaves a caller's own setting alone
    assert torch.get_num_threads() == 2


def random_net(seed=0):
    """lightweight-openpose (with batch-norm) with random weights and non-trivial BN statistics."""
    torch.manual_seed(seed)
    net = build_architecture("lightweight-openpose").eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net


def test_folding_batch_norm_keeps_the_outputs():
    net = random_net()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        before = net(x)
        fuse_conv_bn(net)
        after = net(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_onnx_export_is_dynamic_and_matches_pytorch(tmp_path):
    import onnx

    net = random_net()
    path = export_onnx(net, tmp_path / "lw.onnx", height=64, width=64, dynamic=True)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["pafpose.stride"] == "8" and "BGR pixels" in meta["pafpose.input"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ic = net.input_config
    for shape in ((1, 3, 64, 64), (2, 3, 96, 136)):  # other batch and sizes than exported with
        pixels = np.random.default_rng(1).uniform(0, 255, shape).astype(np.float32)
        hm, paf = session.run(None, {"image": pixels})
        x = (torch.from_numpy(pixels) - torch.tensor(ic.mean).view(1, 3, 1, 1)) / torch.tensor(ic.std).view(1, 3, 1, 1)
        with torch.no_grad():
            ref_hm, ref_paf = net(x)
        assert hm.shape == tuple(ref_hm.shape) and paf.shape == tuple(ref_paf.shape)
        assert np.abs(hm - ref_hm.numpy()).max() < 1e-4 and np.abs(paf - ref_paf.numpy()).max() < 1e-4
    fixed = export_onnx(net, tmp_path / "fixed.onnx", height=64, width=96, dynamic=False)
    dims = [d.dim_value for d in onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 64, 96]
    assert not list(tmp_path.glob(".*"))  # written atomically


def test_openvino_export_matches_pytorch(tmp_path):
    ov = pytest.importorskip("openvino")
    net = random_net()
    xml = export_openvino(net, tmp_path / "lw.xml", height=64, width=64)
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and not list(tmp_path.glob(".*"))
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # not bf16
    pixels = np.random.default_rng(2).uniform(0, 255, (1, 3, 80, 120)).astype(np.float32)
    out = compiled(pixels)
    ic = net.input_config
    x = (torch.from_numpy(pixels) - torch.tensor(ic.mean).view(1, 3, 1, 1)) / torch.tensor(ic.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = net(x)
    for port, r in zip(compiled.outputs, ref, strict=True):
        assert np.abs(out[port] - r.numpy()).max() < 1e-3
    with pytest.raises(PafposeError, match=r"an \.xml file"):
        export_openvino(net, tmp_path / "lw.onnx")


def test_estimator_backends_give_the_same_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))  # the exported file is cached here
    net = random_net()
    image = np.random.default_rng(3).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    ref = Estimator(net, device="cpu", height=64, backend="torch").fields([image])[0]
    for backend in ("onnxruntime", "openvino"):
        got = Estimator(net, device="cpu", height=64, backend=backend, threads=1).fields([image])[0]
        assert got[2] == ref[2]
        assert torch.allclose(got[0], ref[0], atol=1e-4) and torch.allclose(got[1], ref[1], atol=1e-4)
    assert len(list((tmp_path / "exported").glob("*.onnx"))) == 1  # exported once, reused
    with pytest.raises(PafposeError, match="unknown backend 'tensorrt'"):
        Estimator(net, device="cpu", backend="tensorrt")
    with pytest.raises(PafposeError, match=r"threads must be in \[1, 1024\]"):
        Estimator(net, device="cpu", threads=0)


def test_a_callers_network_is_not_modified():
    net = random_net()
    Estimator(net, device="cpu", backend="torch")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


@pytest.fixture(scope="module")
def photos():
    from conftest import shared_dir

    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): the backends are compared on its photos")
    os.environ["PAFPOSE_WEIGHTS_PATH"] = str(shared / "weights")
    yield [cv2.imread(str(p)) for p in sorted((shared / "images").glob("*.*"))[:8]]
    del os.environ["PAFPOSE_WEIGHTS_PATH"]


def matched_keypoint_errors(a, b):
    """Image-pixel distances between the same keypoints of the same people (lists in score order)."""
    errors = []
    for pa, pb in zip(a, b, strict=True):
        for x, y in zip(sorted(pa, key=lambda p: p.bbox()[0]), sorted(pb, key=lambda p: p.bbox()[0]), strict=True):
            both = (x.keypoints[:, 2] > 0) & (y.keypoints[:, 2] > 0)
            errors.extend(np.hypot(*(x.keypoints[both, :2] - y.keypoints[both, :2]).T))
    return np.asarray(errors)


def test_backends_find_the_same_people_on_real_photos(photos):
    """onnxruntime runs the exported float32 network: the same poses to 0.01 px. openvino runs
    human-pose-estimation-0001's own IR as the Open Model Zoo ships it, activations quantized
    to INT8 too (PyTorch has its weights, dequantized): the same people on every photo, and
    keypoints that differ by quantization (measured: median 0.9 px, 95 % within 4.8 px, the
    odd one swapped with its neighbour)."""
    results = {b: [Estimator(backend=b, height=256).predict(im) for im in photos]
               for b in ("torch", "onnxruntime", "openvino")}
    counts = {b: [len(p) for p in r] for b, r in results.items()}
    assert counts["torch"] == counts["onnxruntime"] == counts["openvino"] and sum(counts["torch"]) >= 8
    errors = matched_keypoint_errors(results["torch"], results["onnxruntime"])
    assert len(errors) > 100 and errors.max() < 0.01, errors.max()
    errors = matched_keypoint_errors(results["torch"], results["openvino"])
    assert len(errors) > 100 and np.median(errors) < 1.5 and np.percentile(errors, 95) < 6.0, \
        np.percentile(errors, [50, 95, 100])


def test_predict_and_export_and_bench_commands(photos, tmp_path):
    env = {**os.environ}
    shared_images = Path(env["PAFPOSE_WEIGHTS_PATH"]).parent / "images"
    r = subprocess.run([EXE, "predict", str(shared_images / "p3_dance.png"), "--backend", "onnxruntime",
                        "--threads", "2", "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    people = json.loads((tmp_path / "out" / "p3_dance_keypoints.json").read_text())["people"]
    assert len(people) == 3

    r = subprocess.run([EXE, "export", "--format", "onnx", "--out", str(tmp_path / "hpe.onnx"), "--height", "256",
                        "--width", "456"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "N x 3 x 256 x 456" in r.stdout and "largest difference from PyTorch" in r.stdout
    r = subprocess.run([EXE, "export", "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--height", "250"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "multiple of the stride 8" in r.stderr and r.stderr.count("\n") == 1

    (tmp_path / "few").mkdir()
    for name in ("p3_dance.png", sorted(p.name for p in shared_images.glob("*.jpg"))[0]):
        shutil.copy(shared_images / name, tmp_path / "few" / name)
    (tmp_path / "few" / "broken.jpg").write_bytes(b"not a jpeg")
    r = subprocess.run([EXE, "bench", "--images", str(tmp_path / "few"), "--warmup", "0", "--repeat", "1",
                        "--height", "256", "--json", str(tmp_path / "bench.json")], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout and "broken.jpg" in r.stdout
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["images"] == 2 and figures["people"] >= 3
    assert set(figures["stages_ms"]) == {"read", "preprocess", "network", "decode", "draw"}
    assert all(v["median"] > 0 for v in figures["stages_ms"].values())
    assert 0 < figures["network_share"] < 1 and figures["machine"]["cores"] >= 1
    r = subprocess.run([EXE, "bench", "--images", str(tmp_path / "nowhere")], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_bfloat16_on_the_cpu_is_checked(monkeypatch):
    net = random_net()
    with pytest.raises(PafposeError, match="float16 needs a CUDA device"):
        Estimator(net, device="cpu", precision="float16")
    with pytest.raises(PafposeError, match="only with --backend torch or openvino"):
        Estimator(net, device="cpu", precision="bfloat16", backend="onnxruntime")
    monkeypatch.setattr(pafpose.predict, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(PafposeError, match="this CPU lacks"):
        Estimator(net, device="cpu", precision="bfloat16")


def test_bfloat16_on_the_cpu_finds_the_same_people(photos):
    """bfloat16 autocast on a CPU with bfloat16 instructions (measured on the 18 photos at
    height 256: 1.5x faster end to end, keypoints median 0.14 px from float32, val2017-dev AP
    0.424 both ways): the same people, keypoints within a pixel or two."""
    if not pafpose.predict.cpu_has_bfloat16():
        pytest.skip("this CPU has no bfloat16 instructions")
    f32 = Estimator(height=256, device="cpu", backend="torch")
    bf16 = Estimator(height=256, device="cpu", backend="torch", precision="bfloat16")
    a, b = [f32.predict(im) for im in photos], [bf16.predict(im) for im in photos]
    assert [len(p) for p in a] == [len(p) for p in b] and sum(len(p) for p in a) >= 8
    errors = matched_keypoint_errors(a, b)
    assert len(errors) > 100 and np.median(errors) < 0.5 and np.percentile(errors, 95) < 3.0, \
        np.percentile(errors, [50, 95, 100])


def test_pipeline_gives_what_predict_gives_in_order(photos):
    """Estimator.pipeline runs the network on the next batch while this one decodes (or,
    without overlap, batch after batch): the same poses as predict, in the frames' order,
    whatever the batch size."""
    est = Estimator(height=128, device="cpu", backend="openvino" if _has("openvino") else "torch")
    frames = [cv2.resize(im, (320, 240)) for im in photos]  # one input size, so batches form
    ref = [est.predict(f) for f in frames]
    for batch_size, overlap in ((1, None), (3, True), (2, False)):
        got = list(est.pipeline(iter(frames), batch_size=batch_size, overlap=overlap, track=False))  # no sequence
        assert [f is g for f, (g, _) in zip(frames, got, strict=True)] == [True] * len(frames)
        for a, (_, b) in zip(ref, got, strict=True):
            assert len(a) == len(b)
            for p, q in zip(a, b, strict=True):
                assert np.allclose(p.keypoints, q.keypoints, equal_nan=True, atol=1e-3)
    assert sum(len(p) for p in ref) >= 4
    assert list(est.pipeline([])) == []
    with pytest.raises(PafposeError, match="batch_size must be at least 1"):
        list(est.pipeline(frames, batch_size=0))


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_pipeline_overlaps_only_where_the_network_leaves_cpus_free(tmp_path, monkeypatch):
    import threading

    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        pytest.skip("one CPU: nothing is ever left free")
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    frames = [np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8) for i in range(3)]
    for backend, threads, overlapped in (("onnxruntime", 1, True), ("torch", cpus, False)):
        est = Estimator(random_net(), device="cpu", height=64, backend=backend, threads=threads)
        assert est.backend.threads == threads
        names = []
        run = est._outputs
        monkeypatch.setattr(est, "_outputs", lambda inputs, run=run, names=names:
                            names.append(threading.current_thread().name) or run(inputs))
        assert len(list(est.pipeline(frames))) == 3
        assert all(n.startswith("pafpose-network") for n in names) == overlapped and len(names) == 3, names


def test_with_options_shares_the_network_and_backend_and_touches_no_setting(tmp_path, monkeypatch):
    """A server runs each request's options this way: nothing reloaded, PyTorch's threads left as
    the CPU backend set them (a clone through the constructor reset them for the whole process)."""
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    torch.set_num_threads(2)
    net = random_net()
    base = Estimator(net, device="cpu", height=64, backend="onnxruntime", threads=1)
    assert torch.get_num_threads() == 1
    other = base.with_options(scales=(1.0, 0.5), flip=True)
    assert torch.get_num_threads() == 1
    assert other.net is base.net and other.backend is base.backend and base.scales == (1.0,) and not base.flip
    assert other.config == base.config.replace(scales=(1.0, 0.5), flip=True)
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    fresh = Estimator(net, device="cpu", height=64, backend="onnxruntime", threads=1, scales=(1.0, 0.5), flip=True)
    a, b = other.fields([image])[0], fresh.fields([image])[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    with pytest.raises(PafposeError, match="scales"):
        base.with_options(scales=(9.0,))
