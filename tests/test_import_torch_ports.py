"""The PyTorch-port importers: tensorboy's and Hzzone's OpenPose ports, Lightweight OpenPose checkpoints."""

import numpy as np
import pytest
import torch

import pafpose.weights
import pafpose.weights as W  # noqa: N812
from helpers_openpose import assert_weights, port_state, tensorboy_keys
from pafpose.errors import PafposeError
from pafpose.models import build_architecture
from pafpose.weights import torch_ports


def test_tensorboy_pose_model_loads_every_tensor(coco, tmp_path):
    blobs = coco[3]
    path = tmp_path / "pose_model.pth"
    torch.save(port_state(blobs, tensorboy_keys()), path)
    model = pafpose.weights.load(path, architecture="openpose-coco", file_format="torch-openpose")
    assert_weights(model, blobs)


def test_hzzone_body_pose_model_loads_every_tensor(coco, tmp_path):
    blobs = coco[3]
    path = tmp_path / "body_pose_model.pth"
    torch.save(port_state(blobs), path)  # Hzzone's file: Caffe layer names, no block prefix
    model = pafpose.weights.load(path, architecture="openpose-coco")  # zoo file name -> torch-openpose
    assert_weights(model, blobs)


def test_port_read_unwraps_checkpoints_and_block_prefixes(tmp_path):
    w = torch.arange(6.0).reshape(2, 3)
    for i, obj in enumerate([{"state_dict": {"module.model0.conv1_1.weight": w}}, {"model": {"conv1_1.weight": w}}]):
        path = tmp_path / f"{i}.pth"
        torch.save(obj, path)
        raw = torch_ports.read([path])
        assert list(raw) in (["model0.conv1_1.weight"], ["conv1_1.weight"])
        np.testing.assert_array_equal(next(iter(raw.values())), w.numpy())
    path = tmp_path / "junk.pth"
    path.write_bytes(b"junk")
    with pytest.raises(PafposeError, match=r"junk\.pth"):
        torch_ports.read([path])


def test_port_with_a_missing_tensor_is_refused(body25, tmp_path):
    state = port_state(body25[3], {k: f"model0.{k}" for k in body25[3]})  # Caffe names inside blocks, any port
    del state["model0.Mprelu6_stage1_L1.weight"]
    path = tmp_path / "body25_port.pth"
    torch.save(state, path)
    with pytest.raises(PafposeError, match=r"body25_port\.pth.*1 missing.*Mprelu6_stage1_L1"):
        pafpose.weights.load(path, architecture="openpose-body25", file_format="torch-openpose")


def test_port_with_unknown_names_is_refused():
    with pytest.raises(PafposeError, match="no tensor"):
        torch_ports.remap({"backbone.layer1.weight": np.zeros(3, np.float32)}, build_architecture("openpose-body25"))
    with pytest.raises(PafposeError, match="tensorboy"):
        torch_ports.remap({"model0.0.weight": np.zeros(3, np.float32)}, build_architecture("openpose-body25"))


def published_lightweight_keys():
    """State-dict names and shapes of Lightweight OpenPose (with_mobilenet.py, 1 refinement stage)."""
    keys = {}

    def conv(name, cout, cin, k, bias=True, bn=False):
        keys[f"{name}.0.weight"] = (cout, cin, k, k)
        if bias:
            keys[f"{name}.0.bias"] = (cout,)
        if bn:
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"{name}.1.{p}"] = (cout,)
            keys[f"{name}.1.num_batches_tracked"] = ()

    conv("model.0", 32, 3, 3, bias=False, bn=True)
    chans = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5
    for i, (cin, cout) in enumerate(chans, start=1):
        keys[f"model.{i}.0.weight"] = (cin, 1, 3, 3)
        keys[f"model.{i}.3.weight"] = (cout, cin, 1, 1)
        for j in (1, 4):
            c = cin if j == 1 else cout
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"model.{i}.{j}.{p}"] = (c,)
            keys[f"model.{i}.{j}.num_batches_tracked"] = ()
    conv("cpm.align", 128, 512, 1)
    for i in range(3):
        keys[f"cpm.trunk.{i}.0.weight"] = (128, 1, 3, 3)
        keys[f"cpm.trunk.{i}.2.weight"] = (128, 128, 1, 1)
    conv("cpm.conv", 128, 128, 3)
    for i in range(3):
        conv(f"initial_stage.trunk.{i}", 128, 128, 3)
    for head, n in (("heatmaps", 19), ("pafs", 38)):
        conv(f"initial_stage.{head}.0", 512, 128, 1)
        conv(f"initial_stage.{head}.1", n, 512, 1)
    for b in range(5):
        pre = f"refinement_stages.0.trunk.{b}"
        conv(f"{pre}.initial", 128, 185 if b == 0 else 128, 1)
        conv(f"{pre}.trunk.0", 128, 128, 3, bn=True)
        conv(f"{pre}.trunk.1", 128, 128, 3, bn=True)
    for head, n in (("heatmaps", 19), ("pafs", 38)):
        conv(f"refinement_stages.0.{head}.0", 128, 128, 1)
        conv(f"refinement_stages.0.{head}.1", n, 128, 1)
    return keys


def test_lightweight_checkpoint_lands_in_place(tmp_path):
    keys = published_lightweight_keys()
    gen = torch.Generator().manual_seed(0)
    written = {k: (torch.randn(s, generator=gen) if s else torch.tensor(7)) for k, s in keys.items()}
    # as the reference training script saves it: DataParallel prefix, old PyTorch (no num_batches_tracked)
    ckpt = {"state_dict": {f"module.{k}": v for k, v in written.items() if "num_batches" not in k},
            "optimizer": {}, "iter": 370000}
    path = tmp_path / "checkpoint_iter_370000.pth"
    torch.save(ckpt, path)
    model = W.load(path)
    assert type(model).__name__ == "LightweightOpenPose" and not model.deployed
    ours = model.state_dict()
    assert set(ours) == set(keys)
    for k, v in written.items():
        if "num_batches" not in k:
            assert torch.equal(ours[k], v), k
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PafposeError, match=r"checkpoint_iter_370000\.pth"):
        W.load(path)
    bad = dict(ckpt["state_dict"])
    del bad["module.cpm.conv.0.bias"]
    torch.save(bad, path)
    with pytest.raises(PafposeError, match=r"1 missing.*cpm\.conv\.0\.bias"):
        W.load(path)
