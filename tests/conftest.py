import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the repo, or $PAFPOSE_SHARED."""
    env = os.environ.get("PAFPOSE_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED to its path)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_weight_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/pafpose."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PAFPOSE_HOME", str(tmp_path_factory.mktemp("pafpose_home")))
    mp.delenv("PAFPOSE_WEIGHTS_PATH", raising=False)
    mp.delenv("PAFPOSE_OFFLINE", raising=False)
    yield
    mp.undo()
