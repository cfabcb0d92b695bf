"""The zoo: entries, mirror / offline resolution, caching, download verification."""

import pytest
import torch

import pafpose
import pafpose.weights as W  # noqa: N812
from helpers_weights import IR
from pafpose import PafposeError
from pafpose.weights._download import download, resolve_file


def test_zoo_entries_name_registered_architectures():
    archs = set(pafpose.list_models())
    for name in pafpose.list_models(pretrained=True):
        cfg = pafpose.get_pretrained_cfg(name)
        assert cfg.name == name and name.split(".")[0] == cfg.architecture
        assert cfg.architecture in archs, name
        assert cfg.files and all(f.sha256 is None or len(f.sha256) == 64 for f in cfg.files)
    assert pafpose.get_pretrained_cfg("human-pose-estimation-0001").name == "human-pose-estimation-0001.int8"
    with pytest.raises(pafpose.PafposeError, match="known"):
        pafpose.get_pretrained_cfg("posenet")


def test_zoo_resolves_from_mirror_offline_and_caches(shared, monkeypatch, tmp_path):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAFPOSE_OFFLINE", "1")
    monkeypatch.setattr(W, "_MEMORY", {})  # as in a new process
    with pytest.raises(PafposeError, match=r"PAFPOSE_OFFLINE.*storage.openvinotoolkit.org.*PAFPOSE_WEIGHTS_PATH"):
        W.load("human-pose-estimation-0001")
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    model = W.load("human-pose-estimation-0001")
    assert not model.training and model.num_parameters() == 4_099_058
    converted = list((tmp_path / "home" / "converted").glob("*.pt"))
    assert len(converted) == 1
    again = W.load("human-pose-estimation-0001")
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_download_verifies_and_writes_atomically(shared, tmp_path):
    cfg = W.get_pretrained_cfg("human-pose-estimation-0001.int8")
    src = shared / (IR + ".xml")
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


def test_download_path_of_the_zoo(shared, tmp_path, monkeypatch):
    """resolve_file fetches from the entry's URL into the cache (a file:// URL stands in)."""
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    cfg = W.get_pretrained_cfg("human-pose-estimation-0001.int8")
    local = shared / IR
    files = tuple(type(wf)(wf.name, ((local.with_suffix(wf.name[-4:])).as_uri(),), wf.sha256, wf.size)
                  for wf in cfg.files)
    mirrored = type(cfg)(**{**cfg.__dict__, "files": files})
    paths = [resolve_file(mirrored, wf) for wf in mirrored.files]
    assert [p.parent for p in paths] == [tmp_path / cfg.name] * 2
    assert all(p.stat().st_size == wf.size for p, wf in zip(paths, files, strict=True))


def test_unverifiable_entries_do_not_pick_up_other_files(shared, monkeypatch):
    """The FP32 entry has no known hash: the INT8 copy (same file name) must not stand in,
    and pafpose does not download it (it could not check it)."""
    monkeypatch.setenv("PAFPOSE_OFFLINE", "1")
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    with pytest.raises(PafposeError, match=r"does not download .*no verified sha256"):
        W.load("human-pose-estimation-0001.fp32")


def test_part_networks_are_zoo_files_verified_like_the_body_weights(shared, tmp_path, monkeypatch):
    """Issue 23: MediaPipe's networks at one commit of its repository, sha256 and size known; found in a
    mirror folder offline, fetched into the cache from their address (a file:// URL stands in), and a
    damaged copy is neither used nor left behind."""
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAFPOSE_OFFLINE", "1")
    monkeypatch.delenv("PAFPOSE_WEIGHTS_PATH", raising=False)
    folder = shared / "weights" / "mediapipe"
    for cfg in W.PART_NETS.values():
        (wf,) = cfg.files
        assert wf.refusal() is None and cfg.license == "Apache-2.0"
        assert wf.urls[0].startswith("https://raw.githubusercontent.com/google/mediapipe/63e679d99ca45b30514a9d84c9351a2d77bb9ba0/")
        assert (folder / wf.name).stat().st_size == wf.size
        with pytest.raises(PafposeError, match="PAFPOSE_OFFLINE"):
            resolve_file(cfg, wf)
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    cfg = W.PART_NETS["mediapipe-hand"]
    assert resolve_file(cfg, cfg.files[0]) == folder / "hand_landmark_lite.tflite"
    monkeypatch.delenv("PAFPOSE_WEIGHTS_PATH")
    monkeypatch.delenv("PAFPOSE_OFFLINE")
    wf = cfg.files[0]
    local = type(cfg)(**{**cfg.__dict__, "files": (type(wf)(wf.name, ((folder / wf.name).as_uri(),), wf.sha256,
                                                                        wf.size),)})
    got = resolve_file(local, local.files[0])
    assert got == tmp_path / "home" / cfg.name / wf.name and got.read_bytes() == (folder / wf.name).read_bytes()
    got.write_bytes(b"damaged")  # a damaged cache entry is fetched again
    assert resolve_file(local, local.files[0]).stat().st_size == wf.size
    bad = type(cfg)(**{**cfg.__dict__, "name": "other", "files": (type(wf)(wf.name, local.files[0].urls, "0" * 64,
                                                                              wf.size),)})
    with pytest.raises(PafposeError, match="sha256"):
        resolve_file(bad, bad.files[0])
    assert not (tmp_path / "home" / "other" / wf.name).exists()
