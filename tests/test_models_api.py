"""Every registered architecture and zoo entry, through the public calls."""

import pytest
import torch

import pafpose


@pytest.mark.parametrize("name", pafpose.list_models())
def test_every_architecture_builds_and_runs(name):
    model = pafpose.create_model(name).eval()
    spec, ic = model.spec, model.input_config
    assert ic.stride == spec.stride and ic.channel_order in ("BGR", "RGB")
    x = torch.randn(1, 3, 8 * spec.stride, 6 * spec.stride)
    with torch.inference_mode():
        hm, paf = model(x)
    assert hm.shape == (1, spec.num_heatmaps, 8, 6) and paf.shape == (1, spec.num_pafs, 8, 6)
    stages = model.train()(x)
    assert isinstance(stages, list) and len(stages) >= 2
    assert all(h.shape == hm.shape and p.shape == paf.shape for h, p in stages)


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
