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
    r = run("models", "*body25*")
    assert r.returncode == 0 and "openpose-body25.cmu" in r.stdout and "human-pose" not in r.stdout
    r = run("models", "nothing*")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no model matches" in r.stderr

