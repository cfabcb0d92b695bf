"""Every architecture: parameter counts, stage outputs, forward shapes, input conventions."""

import pytest
import torch

import pafpose
from helpers_weights import PARAMS
from pafpose import PafposeError
from pafpose.models import build_architecture, list_architectures
from pafpose.models.mobilenet_v2 import TFBatchNorm, resize_bilinear_tf
from pafpose.models.vgg_openpose import OPENPOSE_BODY25
from pafpose.skeleton import BODY25


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


# Lightweight OpenPose / human-pose-estimation-0001


def test_parameter_counts_and_stage_outputs():
    hpe = build_architecture("human-pose-estimation-0001")
    assert hpe.num_parameters() == 4_099_058  # Open Model Zoo: 4.099 M (BN folded)
    lw = build_architecture("lightweight-openpose")
    assert lw.num_parameters() == 4_091_698  # with BN, 1 refinement stage (paper: 4.1 M)
    assert build_architecture("lightweight-openpose", refinement_stages=3).num_parameters() > 7_000_000
    x = torch.randn(1, 3, 64, 96)
    stages = lw.train()(x)
    assert len(stages) == 2 and stages[0][0].shape == (1, 19, 8, 12) and stages[0][1].shape == (1, 38, 8, 12)
    hm, paf = lw.eval()(x)
    assert hm.shape == (1, 19, 8, 12) and paf.shape == (1, 38, 8, 12)
    assert {"lightweight-openpose", "human-pose-estimation-0001"} <= set(list_architectures())


# tf-pose-estimation MobileNetV2 OpenPose


@pytest.mark.parametrize("variant", list(PARAMS))
def test_architecture(variant):
    model = build_architecture("tf-pose-mobilenet-v2", variant=variant)
    assert model.num_parameters() == PARAMS[variant]
    cfg = model.input_config
    assert (cfg.channel_order, cfg.mean, cfg.std, cfg.stride) == ("BGR", (0.0,) * 3, (1.0,) * 3, 8)
    x = torch.rand(1, 3, 72, 88) * 255  # 72/16 is not whole: asymmetric SAME padding, 5 -> 9 resize
    stages = model.train()(x)
    assert len(stages) == 6
    assert all(h.shape == (1, 19, 9, 11) and p.shape == (1, 38, 9, 11) for h, p in stages)
    hm, paf = model.eval()(x)
    assert hm.shape == (1, 19, 9, 11) and paf.shape == (1, 38, 9, 11)
    with pytest.raises(PafposeError, match="variant"):
        build_architecture("tf-pose-mobilenet-v2", variant="dm12")


def test_batch_stats_norm_is_per_image_at_inference():
    """graph_opt.pb's is_training=True BNs: an image's output must not depend on its batch-mates."""
    bn = TFBatchNorm(4, batch_stats=True).eval()
    x = torch.randn(3, 4, 5, 6) * 7 + 3
    y = bn(x)
    assert torch.allclose(y[1:2], bn(x[1:2]), atol=1e-6)
    flat = x.transpose(0, 1).reshape(4, 3, -1)
    ref = (flat - flat.mean(-1, keepdim=True)) / torch.sqrt(flat.var(-1, unbiased=False, keepdim=True) + 1e-3)
    assert torch.allclose(y.transpose(0, 1).reshape(4, 3, -1), ref, atol=1e-5)
    assert not hasattr(bn, "running_mean")  # the file has no statistics to load
    bn.train()
    z = bn(x).transpose(0, 1).reshape(4, -1)  # training: over (N, H, W), as TF trains
    assert torch.allclose(z.mean(-1), torch.zeros(4), atol=1e-5)


def test_resize_bilinear_tf_is_tf1_legacy():
    x = torch.arange(3.0).view(1, 1, 1, 3)
    # dst * in / out: 0, 0.6, 1.2, 1.8, 2.4 (clamped) -> no half-pixel shift, last sample repeats
    out = resize_bilinear_tf(x, (1, 5))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.6, 1.2, 1.8, 2.0]))


# The CMU OpenPose networks (the random weights of conftest's body25 fixture follow the prototxt)


def test_coco_parameter_count_is_the_published_one():
    assert build_architecture("openpose-coco").num_parameters() == 52_311_446


def test_body25_parameter_count_matches_the_prototxt(body25):
    # The figure is computed from the layer shapes of body_25/pose_deploy.prototxt (the graph
    # transcribed above): 26,166,084 (convolutions with biases, PReLU slopes per channel).
    total = sum(a.size for v in body25[3].values() for a in v)
    assert total == 26_166_084
    assert build_architecture("openpose-body25").num_parameters() == total


def test_body25_field_layout_is_openposes():
    spec = OPENPOSE_BODY25
    assert spec.skeleton is BODY25 and spec.num_heatmaps == 26 and spec.num_pafs == 52
    # POSE_BODY_PART_PAIRS and POSE_MAP_INDEX of BODY_25 (poseParameters.cpp), as indices.
    pairs = [1, 8, 1, 2, 1, 5, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11, 8, 12, 12, 13, 13, 14, 1, 0, 0, 15, 15,
             17, 0, 16, 16, 18, 2, 17, 5, 18, 14, 19, 19, 20, 14, 21, 11, 22, 22, 23, 11, 24]
    assert spec.limb_index.reshape(-1).tolist() == pairs
    assert spec.paf_index.reshape(-1).tolist()[:8] == [0, 1, 14, 15, 22, 23, 16, 17]


@pytest.mark.parametrize("name, stages, nh, npf", [("openpose-coco", 6, 19, 38), ("openpose-body25", 4, 26, 52)])
def test_forward_shapes_train_and_eval(name, stages, nh, npf):
    model = build_architecture(name)
    assert model.input_config.stride == model.spec.stride == 8
    x = torch.randn(2, 3, 64, 40)
    with torch.no_grad():
        out = model.train()(x)
        assert isinstance(out, list) and len(out) == stages
        assert all(h.shape == (2, nh, 8, 5) and p.shape == (2, npf, 8, 5) for h, p in out)
        hm, paf = model.eval()(x)
    assert hm.shape == (2, nh, 8, 5) and paf.shape == (2, npf, 8, 5)
    torch.testing.assert_close(hm, out[-1][0])
    torch.testing.assert_close(paf, out[-1][1])


def test_input_conventions():
    coco = build_architecture("openpose-coco").input_config
    assert (coco.channel_order, coco.mean, coco.std, coco.pad_value, coco.height) == \
        ("BGR", (128.0,) * 3, (256.0,) * 3, 128.0, 368)
