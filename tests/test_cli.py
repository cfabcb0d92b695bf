"""The real console script, as a user runs it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pafpose

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and pafpose.__version__ in r.stdout
    r = run("--help")
    assert r.returncode == 0 and "skeleton" in r.stdout


def test_building_the_command_line_loads_no_network_runtime():
    """Every command builds the whole parser first: it must not load torch, OpenVINO, ONNX
    Runtime or Ray (torch alone took 1.9 s of each call, ``pafpose --help`` included)."""
    code = ("import sys; from pafpose.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'openvino', 'onnxruntime', 'ray'}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.parametrize(("name", "count"), [("coco18", 18), ("body25", 25), ("coco17", 17)])
def test_skeleton_command(name, count):
    r = run("skeleton", name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{name}: {count} keypoints")


def test_bad_arguments_are_one_line_errors():
    r = run("skeleton", "coco19")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "invalid choice" in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_models_lists_the_zoo():
    r = run("models")
    assert r.returncode == 0, r.stderr
    assert "human-pose-estimation-0001.int8" in r.stdout
    assert "fc7e9dde0f4a34876cfbbd266388a59526a8c8c1bc9394ce4827b7a007d20f82" in r.stdout
    assert "openpose-coco.cmu" in r.stdout and "NON-COMMERCIAL" in r.stdout
    # the input the Estimator runs, not only the size the Open Model Zoo publishes
    assert "input: height 368, BGR, mean 128, std 255.004, pad 0, stride 8 (published: 456x256)" in r.stdout
    assert r.stdout.count("\n    input: height ") == len(pafpose.list_models(pretrained=True))
    r = run("models", "*body25*")
    assert r.returncode == 0 and "openpose-body25.cmu" in r.stdout and "human-pose" not in r.stdout
    r = run("models", "nothing*")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no model matches" in r.stderr



@pytest.mark.parametrize("args", [
    ["predict", "x.jpg", "--scales", "inf"],
    ["predict", "x.jpg", "--scales", "1e6"],
    ["predict", "x.jpg", "--scales", "15"],  # a typo for 1.5: 4 GB and invented people
    ["predict", "x.jpg", "--scales", "nan"],
    ["predict", "x.jpg", "--upsample-factor", "100000"],
    ["predict", "x.jpg", "--peak-threshold", "nan"],
    ["predict", "x.jpg", "--min-keypoints", "-1"],
    ["predict", "x.jpg", "--height", "0"],
    ["predict", "x.jpg", "--height", "100000"],
    ["predict", "x.jpg", "--threads", "-1"],
    ["predict", "x.jpg", "--batch-size", "0"],
    ["predict", "x.jpg", "--threshold", "inf"],
    ["predict", "x.jpg", "--timeout", "0"],
    ["batch", "x", "--out", "o", "--workers", "-1"],
    ["batch", "x", "--out", "o", "--cpus-per-worker", "inf"],
    ["batch", "x", "--out", "o", "--gpus-per-worker", "nan"],
    ["batch", "x", "--out", "o", "--shard-size", "0"],
    ["batch", "x", "--out", "o", "--timeout", "0"],
    ["batch", "x", "--out", "o", "--height", "0"],
    ["explain", "x.jpg", "--dpi", "0"],
    ["explain", "x.jpg", "--dpi", "100000"],
    ["bench", "--batch", "0"],
    ["bench", "--warmup", "-1"],
    ["export", "--format", "onnx", "--out", "x.onnx", "--height", "-5"],
])
def test_every_numeric_option_is_checked(args, capsys):
    """Refused while parsing, before any model loads: one line (what, and where help is), exit 2."""
    from pafpose.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "must be" in err and "--help" in err, err


def test_too_many_scales_and_mismatched_export_names(tmp_path):
    r = run("predict", "x.jpg", "--scales", "1", "0.5", "1.5", "2", "0.75")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "scales must be 1 to 4 numbers" in r.stderr, r.stderr
    r = run("export", "--format", "onnx", "--out", str(tmp_path / "x.xml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "a onnx file is named *.onnx" in r.stderr
    assert not (tmp_path / "x.xml").exists()


def test_submodules_are_reachable_from_the_package():
    code = ("import pafpose, numpy as np\n"
            "img = pafpose.draw.poses(np.zeros((8, 8, 3), np.uint8), [])\n"
            "print(img.shape, pafpose.formats.openpose_json([])['version'], callable(pafpose.viz.explain_figure))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "(8, 8, 3) 1.3 True", r.stderr
