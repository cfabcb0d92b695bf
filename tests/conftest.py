import os
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[1]
# `make test` runs the suite in two processes (pytest-xdist). Each test file goes whole to one of
# them, so its module fixtures (a Ray run, the docs site) are built once; the files that start a
# local Ray go to the same one, one after the other, so two Ray instances never share the machine.
_RAY_FILES = {"test_batch.py", "test_batch_storage.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """By file, as ``--dist loadfile``, the Ray files one unit. (Not ``--dist loadgroup``:
    xdist 3.8 groups by renaming each test's node id, which pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "ray" if Path(file).name in _RAY_FILES else file

    return ByFile(config, log)


def shared_dir() -> Path | None:
    """../shared beside the repo, or $PAFPOSE_SHARED."""
    env = os.environ.get("PAFPOSE_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED to its path)")
    return path


# Random weights of the CMU OpenPose networks in Caffe's layout (helpers_openpose), built once:
# test_architectures, test_import_caffe and test_import_torch_ports share them.
@pytest.fixture(scope="session")
def coco() -> tuple[list, str, str, dict]:
    from helpers_openpose import coco_graph, random_blobs

    g, hm, paf = coco_graph()
    return g, hm, paf, random_blobs(g, seed=1)


@pytest.fixture(scope="session")
def body25() -> tuple[list, str, str, dict]:
    from helpers_openpose import body25_graph, random_blobs

    g, hm, paf = body25_graph()
    return g, hm, paf, random_blobs(g, seed=2)


@pytest.fixture(autouse=True, scope="session")
def _private_weight_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/pafpose."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PAFPOSE_HOME", str(tmp_path_factory.mktemp("pafpose_home")))
    mp.delenv("PAFPOSE_WEIGHTS_PATH", raising=False)
    mp.delenv("PAFPOSE_OFFLINE", raising=False)
    yield
    mp.undo()


# The real model on real photos, as `pafpose` commands run it (test_predict_cli, test_video...)
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): these tests run the real model on real photos")
    e = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    e.update(PAFPOSE_WEIGHTS_PATH=str(shared / "weights"), PAFPOSE_OFFLINE="1",
             PAFPOSE_HOME=str(tmp_path_factory.mktemp("home")))
    return e


@pytest.fixture(scope="module")
def estimator_cls(shared):
    """The Estimator class, with the weights of ../shared (test_predict, test_formats, test_drawing)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    from pafpose.predict import Estimator

    yield Estimator
    mp.undo()


@pytest.fixture(scope="module")
def est(estimator_cls):
    return estimator_cls(device="cpu")


@pytest.fixture(scope="module")
def images(env):
    return shared_dir() / "images"


@pytest.fixture(scope="module")
def dance_frame(images):
    return cv2.resize(cv2.imread(str(images / "p3_dance.png")), (456, 256), interpolation=cv2.INTER_AREA)
