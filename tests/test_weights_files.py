"""Weights files: damaged ones of every format are one-line errors; pafpose's own caches
(converted weights, exported networks) heal; the zoo downloads only what it can verify."""

import logging
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pafpose.weights as W  # noqa: N812
from pafpose import PafposeError
from pafpose.models import build_architecture
from pafpose.weights._download import download, intact, resolve_file

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
IR = "human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001"

# (file name, architecture to load it into) for each format the importers read
FORMATS = [
    ("mine.pt", "lightweight-openpose"),  # a pafpose checkpoint or state dict
    ("mine.pth", "lightweight-openpose"),
    ("checkpoint_iter_370000.pth", None),  # Lightweight OpenPose's own checkpoint (zoo name)
    ("pose_model.pth", None),  # the tensorboy / Hzzone ports
    ("body_pose_model.pth", None),
    ("human-pose-estimation-0001.xml", None),  # OpenVINO IR (.xml with its .bin)
    ("graph_opt.pb", None),  # TensorFlow GraphDef
    ("mobilenet_v2_pose_dm05_368_432_weight_quant.tflite", None),
    ("pose_iter_440000.caffemodel", None),
]


def lightweight_checkpoint(path):
    """A Lightweight OpenPose checkpoint as its authors' code writes it (random weights)."""
    torch.manual_seed(0)
    net = build_architecture("lightweight-openpose")
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "iter": 7}, path)
    return net


def damaged_versions(name, tmp_path):
    """(label, bytes) of zero, garbage and (from a real file) truncated versions of a file."""
    rng = np.random.default_rng(len(name))
    out = [("zero bytes", b""), ("garbage", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()),
           ("garbage after a zip header", b"PK\x03\x04" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())]
    if name.endswith((".pt", ".pth")):
        lightweight_checkpoint(tmp_path / "real.pth")
        real = (tmp_path / "real.pth").read_bytes()
        out.append(("truncated", real[: len(real) // 2]))
    return out


@pytest.mark.parametrize(("name", "architecture"), FORMATS)
def test_damaged_weight_files_of_every_format_are_one_line_errors(name, architecture, tmp_path, monkeypatch):
    from conftest import shared_dir

    monkeypatch.setattr(W, "_MEMORY", {})
    versions = damaged_versions(name, tmp_path)
    shared = shared_dir()
    real = {"human-pose-estimation-0001.xml": f"{IR}.xml", "graph_opt.pb": "tf-pose-mobilenet_v2_small/graph_opt.pb",
            "mobilenet_v2_pose_dm05_368_432_weight_quant.tflite":
                "mobilenet-v2-pose/mobilenet_v2_pose_dm05_368_432_weight_quant.tflite"}
    if shared is not None and name in real:
        data = (shared / "weights" / real[name]).read_bytes()
        versions.append(("truncated", data[: len(data) // 2]))
    for label, data in versions:
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        if name.endswith(".xml"):
            path.with_suffix(".bin").write_bytes(data[:100])
        with pytest.raises(PafposeError) as info:
            W.load(path, architecture=architecture)
        message = str(info.value)
        assert str(path) in message and "\n" not in message, (label, message)
        assert "weights_only" not in message, message  # never the advice to let a file run code
        assert path.exists()  # a user's file is never deleted


def test_a_damaged_ir_bin_beside_a_good_xml_is_a_one_line_error(shared, tmp_path):
    xml = shared / "weights" / f"{IR}.xml"
    shutil.copy(xml, tmp_path / xml.name)
    for data in (b"", b"\x00" * 1000, xml.with_suffix(".bin").read_bytes()[:-1000]):
        (tmp_path / xml.name).with_suffix(".bin").write_bytes(data)
        with pytest.raises(PafposeError, match=r"human-pose-estimation-0001\.(xml|bin)"):
            W.load(tmp_path / xml.name)


def test_an_empty_weights_file_on_the_command_line_is_one_line(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    r = subprocess.run([EXE, "predict", str(tmp_path / "a.png"), "--model", "lightweight-openpose", "--weights",
                        str(tmp_path / "empty.pt"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "empty.pt: empty file (0 bytes)" in r.stderr


def test_damaged_converted_weights_in_the_cache_are_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    source = tmp_path / "checkpoint_iter_370000.pth"
    net = lightweight_checkpoint(source)
    monkeypatch.setattr(W, "_MEMORY", {})
    W.load(source)
    cached = list((tmp_path / "home" / "converted").glob("*.pt"))
    assert len(cached) == 1
    cached = cached[0]
    good = cached.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # still loads as a zip, with one weight changed
    for label, data in (("zero bytes", b""), ("garbage", b"\x80\x02garbage"), ("truncated", good[:1000]),
                        ("one flipped byte", bytes(flipped))):
        cached.write_bytes(data)
        monkeypatch.setattr(W, "_MEMORY", {})  # as in a new process
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            model = W.load(source)
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in model.state_dict().items()), label
        assert "rebuilding it" in caplog.text and str(cached) in caplog.text, label
        assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
        assert intact(cached), label  # healed: the next run uses it again
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in torch.load(cached, weights_only=True).items())
    caplog.clear()
    monkeypatch.setattr(W, "_MEMORY", {})
    with caplog.at_level(logging.WARNING):
        W.load(source)
    assert not caplog.records  # an intact cache is used without a word
    assert source.exists()


def test_a_damaged_exported_network_in_the_cache_is_exported_again(tmp_path, monkeypatch, caplog):
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'pafpose[onnx]')")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'pafpose[onnx]')")
    from pafpose.backends import exported_onnx

    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    net = build_architecture("human-pose-estimation-0001").eval()
    path = exported_onnx(net, "t")
    good = path.read_bytes()
    for data in (b"", good[: len(good) // 3]):
        path.write_bytes(data)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            again = exported_onnx(net, "t")
        assert again == path and "rebuilding it" in caplog.text
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # a usable file again
    assert len(path.read_bytes()) == len(good)


def test_the_zoo_downloads_only_verified_files_over_https(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    downloadable = 0
    for cfg in W.ZOO.values():
        for wf in cfg.files:
            if wf.refusal() is None:
                downloadable += 1
                assert cfg.available, cfg.name
                assert all(u.startswith("https://") for u in wf.urls), cfg.name
                assert len(wf.sha256) == 64 and int(wf.sha256, 16) >= 0 and wf.size > 0, cfg.name
            else:
                assert not cfg.available, f"{cfg.name} is listed as downloadable but {wf.refusal()}"
                with pytest.raises(PafposeError, match=f"{cfg.name}: pafpose does not download {wf.name} "):
                    resolve_file(cfg, wf)
    assert downloadable >= 3  # the INT8 IR's two files and tf-pose's graph
    for url, sha, size in (("http://example.org/w.pt", "0" * 64, 10), ("https://example.org/w.pt", None, 10),
                           ("https://example.org/w.pt", "0" * 64, None)):
        with pytest.raises(PafposeError, match="refusing a download"):
            download(url, tmp_path / "w.pt", sha, size)
    assert not (tmp_path / "w.pt").exists()


# ---------------------------------------------------------------- issue 24: caches are an optimisation
@pytest.mark.parametrize("data", [b".", b"\x80\x02.", b"\x80\x02R."], ids=["stop", "proto-stop", "reduce"])
def test_a_pt_file_the_unpickler_chokes_on_is_one_line_naming_it(data, tmp_path):
    from pafpose.weights.checkpoint import torch_load

    path = tmp_path / "odd.pt"
    path.write_bytes(data)  # torch's weights-only unpickler: IndexError (pop from empty list)
    with pytest.raises(PafposeError, match=r"odd\.pt: not a readable PyTorch weights file") as info:
        torch_load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("error", [RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed"),
                                   OSError(28, "No space left on device")], ids=["torch", "os"])
def test_a_full_cache_warns_once_and_runs_on_the_converted_network(error, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    source = tmp_path / "checkpoint_iter_370000.pth"
    net = lightweight_checkpoint(source)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):  # a part written, then the disk is full
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:1000])
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    for _ in range(2):  # and the rerun alike
        monkeypatch.setattr(W, "_MEMORY", {})
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            model = W.load(source)
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in model.state_dict().items())
        assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage(), caplog.text
        assert "could not cache" in caplog.text
        assert not [p for p in (tmp_path / "home" / "converted").iterdir()]  # nothing partial left
