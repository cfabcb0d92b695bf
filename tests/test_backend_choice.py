"""``backend="auto"``: what it picks (on a GPU torch; on a CPU the fastest backend that keeps
torch float32's COCO AP, measured by benchmarks/backend_choice.py), that it falls back to
PyTorch with one line when OpenVINO is missing, and that it gives exactly the chosen
backend's poses. The explicit backends keep their meaning."""

import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

import pafpose.backends
from pafpose import PafposeError
from pafpose.backends import choose_backend, runtime_missing
from pafpose.device import cpu_has_bfloat16
from pafpose.models import build_architecture
from pafpose.predict import Estimator

CPU, GPU = torch.device("cpu"), torch.device("cuda")  # choose_backend only reads the device's type


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The CPU backends set PyTorch to one thread for the process; the other tests want theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def expected_on_this_cpu() -> tuple[str, str]:
    """The rule as BENCHMARKS.md states it, written out here rather than read from the code."""
    if runtime_missing("openvino") is None:
        return ("openvino", "bfloat16") if cpu_has_bfloat16() else ("openvino", "float32")
    return ("torch", "bfloat16") if cpu_has_bfloat16() else ("torch", "float32")


def test_auto_picks_openvino_on_a_cpu_and_torch_on_a_gpu(monkeypatch):
    assert choose_backend("auto", "auto", CPU) == expected_on_this_cpu()
    assert runtime_missing("openvino") is None  # a dependency now: this machine has it
    assert choose_backend("auto", "auto", GPU) == ("torch", "float32")
    assert choose_backend("auto", "float16", GPU) == ("torch", "float16")
    # a precision asked for narrows the choice to the backends that run it
    assert choose_backend("auto", "float32", CPU) == ("openvino", "float32")
    assert choose_backend("auto", "int8", CPU) == ("openvino", "int8")
    with pytest.raises(PafposeError, match="int8 runs on the CPU"):
        choose_backend("auto", "int8", GPU)
    # explicit backends are kept; openvino's own precision waits for the weights (its IR)
    assert choose_backend("torch", "auto", CPU) == ("torch", "float32")
    assert choose_backend("onnxruntime", "auto", CPU) == ("onnxruntime", "float32")
    assert choose_backend("openvino", "auto", CPU) == ("openvino", "auto")
    # a CPU without bfloat16 instructions: openvino float32
    monkeypatch.setattr(pafpose.backends, "cpu_has_bfloat16", lambda: False)
    assert choose_backend("auto", "auto", CPU) == ("openvino", "float32")


def test_the_estimator_says_what_it_runs_and_explicit_backends_keep_their_meaning(shared, monkeypatch):
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    est = Estimator(device="cpu", height=128)
    assert (est.config.backend, est.config.precision) == expected_on_this_cpu() == (est.backend.name, est.precision)
    if est.config.backend == "openvino":  # the float network, exported, in float32 or bfloat16
        assert str(est.backend.path).endswith(".onnx")
        assert est.backend.config["INFERENCE_PRECISION_HINT"] == {"float32": "f32", "bfloat16": "bf16"}[est.precision]
    # as before this issue: openvino alone runs the Open Model Zoo's INT8 IR, torch float32
    ov = Estimator(device="cpu", height=128, backend="openvino")
    assert ov.config.precision == "int8" and str(ov.backend.path).endswith("FP16-INT8/human-pose-estimation-0001.xml")
    assert "INFERENCE_PRECISION_HINT" not in ov.backend.config
    tch = Estimator(device="cpu", height=128, backend="torch")
    assert tch.config.precision == "float32" and tch.backend.dtype is None
    assert Estimator(device="cpu", height=128, precision="int8").config.backend == "openvino"


def test_a_callers_network_runs_in_pytorch_as_it_is(tmp_path, monkeypatch):
    """Estimator(network): a network being trained, say; no snapshot exported, no threads taken."""
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    torch.set_num_threads(2)
    est = Estimator(build_architecture("lightweight-openpose").eval(), device="cpu", height=64)
    assert (est.config.backend, est.config.precision) == ("torch", "float32")
    assert torch.get_num_threads() == 2 and not (tmp_path / "exported").exists()


def test_int8_is_openvinos_and_needs_an_int8_ir(shared):
    from pafpose.weights.openvino_ir import quantized_activations

    net = build_architecture("lightweight-openpose").eval()
    with pytest.raises(PafposeError, match="int8 is OpenVINO's"):
        Estimator(net, device="cpu", backend="torch", precision="int8")
    with pytest.raises(PafposeError, match="has no INT8 OpenVINO IR"):
        Estimator(net, device="cpu", backend="openvino", precision="int8")
    xmls = {p.parent.name: p for p in (shared / "weights").rglob("*.xml")}
    assert quantized_activations(xmls["FP16-INT8"])  # FakeQuantize on activations
    assert not quantized_activations(xmls["mobilenet-v2-pose"])  # a float IR


def test_auto_gives_exactly_the_chosen_backends_poses(shared, monkeypatch):
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    photos = [cv2.imread(str(p)) for p in sorted((shared / "images").glob("*.*"))[:6]]
    auto = Estimator(device="cpu", height=256)
    chosen = Estimator(device="cpu", height=256, backend=auto.config.backend, precision=auto.config.precision)
    torch32 = Estimator(device="cpu", height=256, backend="torch")
    people = 0
    for im in photos * 2:  # twice: OpenVINO compiles a model for an input size on its second sight
        a, b, ref = auto.predict(im), chosen.predict(im), torch32.predict(im)
        assert len(a) == len(b) == len(ref)
        for p, q in zip(a, b, strict=True):
            assert np.array_equal(p.keypoints, q.keypoints, equal_nan=True) and p.score == q.score
        people += len(a)
    assert people >= 12


def child(first: str, code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python process under a memory limit, after the line ``first``."""
    prelude = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))  # a safety net for the machine
    """)
    return subprocess.run([sys.executable, "-c", prelude + first + textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("missing", ["openvino", "onnx"])
def test_auto_falls_back_to_torch_with_one_line_when_the_runtime_is_missing(shared, tmp_path, missing):
    env = {**os.environ, "PAFPOSE_WEIGHTS_PATH": str(shared / "weights"), "PAFPOSE_OFFLINE": "1",
           "PAFPOSE_HOME": str(tmp_path / "home")}
    # the module can't be imported in the child, as where it isn't installed
    hide = f"sys.modules[{missing!r}] = None\n"
    fallback = "torch bfloat16" if cpu_has_bfloat16() else "torch float32"
    photo = shared / "images" / "p3_dance.png"
    r = child(hide, """
        from pafpose.cli import main
        sys.exit(main(sys.argv[1:]))
    """, env, "predict", str(photo), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert f"{missing} can't be imported" in r.stderr and "pip install openvino onnx" in r.stderr, r.stderr
    assert f"running {fallback} instead" in r.stderr, r.stderr
    assert r.stdout.splitlines()[0] == f"network: {fallback} on cpu (chosen by --backend auto)", r.stdout
    people = json.loads((tmp_path / "out" / "p3_dance_keypoints.json").read_text())["people"]
    assert len(people) == 3
    # the library the same way: one line on stderr (logging's last resort), the fallback in the config
    r = child(hide, """
        from pafpose import Estimator
        est = Estimator(device="cpu", height=64)
        print(est.config.backend, est.config.precision)
    """, env)
    assert r.returncode == 0 and r.stdout.split() == fallback.split(), r.stderr
    assert r.stderr.count("\n") == 1 and "pip install openvino onnx" in r.stderr, r.stderr
    # asked for by name, a missing runtime is an error, not a quiet change
    r = child(hide, """
        from pafpose.cli import main
        sys.exit(main(sys.argv[1:]))
    """, env, "predict", str(photo), "--out", str(tmp_path / "out2"), "--backend", "openvino",
              "--precision", "float32")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "pip install" in r.stderr, r.stderr


def test_the_commands_say_what_auto_runs(shared, tmp_path):
    env = {**os.environ, "PAFPOSE_WEIGHTS_PATH": str(shared / "weights"), "PAFPOSE_OFFLINE": "1",
           "PAFPOSE_HOME": str(tmp_path / "home")}
    backend, precision = expected_on_this_cpu()
    run = [sys.executable, "-m", "pafpose.cli"]
    r = subprocess.run([*run, "models", "human-pose-estimation-0001.int8"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and f"runs them here with {backend} {precision} on cpu" in r.stdout, r.stderr
    r = subprocess.run([*run, "predict", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert "--backend {auto,torch,onnxruntime,openvino}" in r.stdout and "auto (on a GPU torch" in r.stdout
    r = subprocess.run([*run, "predict", str(shared / "images" / "p3_dance.png"), "--device", "cpu", "--out",
                        str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("network:")]
    assert lines == [f"network: {backend} {precision} on cpu (chosen by --backend auto)"]


# ---------------------------------------------------------------- issue 24: auto falls back when OpenVINO can't run
def test_auto_skips_an_openvino_that_imports_but_cannot_use_the_cpu(monkeypatch, caplog):
    ov = pytest.importorskip("openvino")

    class BrokenCore:
        def __init__(self):
            raise RuntimeError("Failed to create plugin libopenvino_intel_cpu_plugin.so for device CPU\nmore")

    monkeypatch.setattr(ov, "Core", BrokenCore)
    assert "CPU" in (runtime_missing("openvino") or "")
    with caplog.at_level("WARNING"):
        backend, _ = choose_backend("auto", "auto", CPU)
    assert backend == "torch"
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage(), caplog.text


@pytest.mark.parametrize("how", ["cache", "compile"])
def test_auto_runs_torch_when_openvino_fails_to_start(how, tmp_path, monkeypatch, caplog):
    """A PAFPOSE_HOME that can't be written (the exported network has nowhere to go), or an
    OpenVINO that fails to compile: auto runs torch, with one line; asked for, it is one line."""
    pytest.importorskip("openvino")
    if how == "cache":
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "file" / "home"))  # no folder can be made there
    else:
        monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))

        def no_compile(*args, **kwargs):
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:109: can't compile\nmore")

        monkeypatch.setattr(pafpose.backends.OpenVINOBackend, "_compile", no_compile)
    torch.manual_seed(0)
    net = build_architecture("lightweight-openpose")
    with caplog.at_level("WARNING"):
        est = Estimator(device="cpu", height=64, weights=_weights_file(net, tmp_path))
    assert est.config.backend == "torch" and est.backend.name == "torch"
    assert est.predict(np.zeros((64, 64, 3), np.uint8)) is not None
    notices = [r.getMessage() for r in caplog.records if "running torch" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0], caplog.text
    with pytest.raises(PafposeError) as info:
        Estimator(device="cpu", height=64, weights=_weights_file(net, tmp_path), backend="openvino",
                  precision="float32")
    assert "\n" not in str(info.value)


def _weights_file(net, tmp_path):
    path = tmp_path / "mine.pt"
    torch.save({"architecture": "lightweight-openpose", "model": net.state_dict()}, path)
    return str(path)
