"""The Estimator on real photos (conftest's est and estimator_cls fixtures)."""

import cv2
import numpy as np
import pytest
import torch

from pafpose import DecoderConfig, PafposeError


def upright(pose):
    k = pose.keypoints
    return k[0, 1] < k[1, 1] < np.nanmean(k[[8, 11], 1])


def test_three_dancers_and_no_cat(est, images):
    dance = est.predict(images / "p3_dance.png")
    assert len(dance) == 3 and all(upright(p) for p in dance)
    assert est.predict(str(images / "cat.jpg")) == []


def test_input_kinds_agree(est, images):
    bgr = cv2.imread(str(images / "p3_dance.png"))
    ref = est.predict(bgr)
    rgb = est.predict(bgr[:, :, ::-1], color="RGB")
    assert len(ref) == 3
    assert all(np.allclose(a.keypoints, b.keypoints, equal_nan=True) for a, b in zip(ref, rgb, strict=True))
    for variant in (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
                    bgr.astype(np.uint16) * 257):
        got = est.predict(variant)
        assert 2 <= len(got) <= 4
    huge = cv2.resize(bgr, (5120, 2880))
    assert len(est.predict(huge)) == 3


def test_pil_images(est, images):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed (optional)")
    bgr = cv2.imread(str(images / "p3_dance.png"))
    assert len(est.predict(pil.fromarray(bgr[:, :, ::-1].copy()))) == 3


def test_flip_tta_is_mirror_symmetric(estimator_cls, images):
    est = estimator_cls(device="cpu", flip=True)
    img = cv2.imread(str(images / "p3_dance.png"))
    a, b = est.predict(img), est.predict(img[:, ::-1])
    assert len(a) == len(b) == 3
    w = img.shape[1]
    necks_a = sorted(p.keypoints[1, 0] for p in a)
    necks_b = sorted(w - 1 - p.keypoints[1, 0] for p in b)
    # mirrored fields are averaged exactly; what remains is the network's own asymmetry
    assert np.allclose(necks_a, necks_b, atol=8.0)


def test_multiscale_and_batches(estimator_cls, images):
    est = estimator_cls(device="cpu", scales=(1.0, 0.5, 1.5), flip=True)
    assert len(est.predict(images / "p3_dance.png")) == 3
    single = estimator_cls(device="cpu")
    files = [images / "p3_dance.png", images / "ski.jpg", images / "apink1.jpg"]
    batch = single.predict_batch(files)
    for f, got in zip(files, batch, strict=True):
        alone = single.predict(f)
        assert len(got) == len(alone)  # padding to the batch's size barely moves anything


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_request_without_a_gpu(estimator_cls):
    with pytest.raises(PafposeError, match="no CUDA"):
        estimator_cls(device="cuda:0")


def test_user_errors(estimator_cls, est, tmp_path):
    with pytest.raises(PafposeError, match="scales"):
        estimator_cls(device="cpu", scales=(1.0, -1.0))
    with pytest.raises(PafposeError, match="no such file"):
        est.predict(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(PafposeError, match="not a readable image"):
        est.predict(bad)
    with pytest.raises(PafposeError, match="shape"):
        est.predict(np.zeros((4, 4, 2), np.uint8))


def test_api_misuse_is_a_clear_error_and_ranges_are_kept(estimator_cls, est, images):
    img = cv2.imread(str(images / "p3_dance.png"))
    with pytest.raises(PafposeError, match="predict_batch takes a list of images"):
        est.predict_batch(str(images / "p3_dance.png"))  # not 40-odd one-character "paths"
    with pytest.raises(PafposeError, match="predict_batch takes a list of images"):
        est.predict_batch(img)  # one H x W x 3 image is not a batch of rows
    for bad in ({"peak_threshold": float("nan")}, {"min_score": -0.1}, {"upsample_factor": 10**5},
                {"max_peaks_per_part": 0}, {"fill_radius": float("inf")}):
        with pytest.raises(PafposeError):
            DecoderConfig(**bad)
    for bad in ({"height": 10**6}, {"scales": (1.0, float("nan"))}, {"scales": "1"}, {"max_side": 0},
                {"threads": 0}):
        with pytest.raises(PafposeError):
            estimator_cls(device="cpu", **bad)
    # float64 pixels in 0..255 (what many pipelines hand over) are the same image, not a white one
    ref = est.predict(img)
    for same in (img.astype(np.float64), img.astype(np.float32) / 255.0):
        got = est.predict(same)
        assert len(got) == len(ref) == 3
        assert np.nanmax(np.abs(got[0].keypoints[:, :2] - ref[0].keypoints[:, :2])) < 1.0


def test_one_config_whatever_way_it_is_given(estimator_cls, est):
    from pafpose import EstimatorConfig

    config = EstimatorConfig(device="cpu", scales=[1.0, 0.5], decoder=DecoderConfig(min_score=0.3))
    assert config.scales == (1.0, 0.5)  # normalised
    by_config, by_keywords = estimator_cls(config), estimator_cls(device="cpu", scales=(1.0, 0.5),
                                                                  decoder=DecoderConfig(min_score=0.3))
    # an Estimator's config is what runs: "auto" resolved, the rest as given
    ran = by_config.config
    assert "auto" not in (ran.backend, ran.precision)
    assert by_config.config == by_keywords.config == config.replace(backend=ran.backend, precision=ran.precision)
    assert estimator_cls(ran).config == ran  # resolved already: runs the same, nothing chosen again
    assert estimator_cls(config, flip=True).config == ran.replace(flip=True)  # keywords refine a config
    assert EstimatorConfig.from_dict(config.to_dict()) == config  # what worker processes receive
    import json

    assert EstimatorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(PafposeError, match="unknown Estimator option"):
        EstimatorConfig.from_dict({"colour": "red"})
    with pytest.raises(PafposeError, match="unknown backend"):
        EstimatorConfig(backend="tensorrt")


def test_every_config_field_with_a_flag_documents_it_on_the_command_line():
    import argparse
    from dataclasses import fields

    from pafpose import EstimatorConfig
    from pafpose.cli.options import add_model_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    actions = {a.dest: a for a in parser._actions}
    for f in fields(EstimatorConfig):
        if f.name in ("decoder", "max_side"):  # the decoder has a flag per threshold; max_side none
            continue
        assert actions[f.name].help == f.metadata["help"], f.name
    args = parser.parse_args(["--scales", "1", "0.5", "--flip", "--threads", "2", "--min-score", "0.3"])
    assert config_from_args(args) == EstimatorConfig(scales=(1.0, 0.5), flip=True, threads=2,
                                                     decoder=DecoderConfig(min_score=0.3))
    assert config_from_args(parser.parse_args([])) == EstimatorConfig()  # the defaults are the config's


def test_fields_carry_their_geometry(est, images):
    from pafpose.coords import Geometry
    from pafpose.predict import to_image

    img = cv2.imread(str(images / "p3_dance.png"))
    hm, paf, geometry = est.fields([img])[0]
    factor = est._factor(img.shape, 1.0)
    assert geometry == Geometry(factor, factor, est.spec.stride)
    assert tuple(hm.shape[1:]) == geometry.field_size(img.shape)
    assert est.input_sizes(img.shape) == (geometry.padded_size(img.shape),)
    poses = est.decoder.decode(hm, paf)
    assert len(poses) == 3
    for p, q in zip(poses, to_image(poses, geometry), strict=True):  # the arithmetic it replaced, bit for bit
        k = p.keypoints.copy()
        k[:, :2] = (k[:, :2] + 0.5) / factor - 0.5
        assert np.array_equal(q.keypoints, k, equal_nan=True)
    assert all(np.array_equal(p.keypoints, q.keypoints, equal_nan=True)
               for p, q in zip(to_image(poses, factor), to_image(poses, geometry), strict=True))  # a bare factor too
    # the resampling grid of a second scale, as the Estimator computed it before
    g2 = est._geometry(img.shape, 0.5)
    s, off = est.spec.stride, est.spec.offset
    centres = torch.arange(40, dtype=torch.float32) * s + off
    old = (((centres + 0.5) / factor - 0.5) + 0.5) * g2.fx - 0.5
    assert torch.equal(g2.image_to_cell(geometry.cell_to_image(torch.arange(40, dtype=torch.float32), 1), 1),
                       (old - off) / s)
    # the flip tables are the layout's
    tables = est.spec.flip_tables
    assert est._hm_src.tolist() == tables.heatmaps.tolist() and est._paf_src.tolist() == tables.pafs.tolist()
    assert est._paf_sign.flatten().tolist() == tables.paf_sign.tolist() and est._paf_sign.dtype == torch.float32


def test_multiscale_on_a_sliver(estimator_cls):
    """An image so thin that its top scale rounds to 0 pixels wide: every scale still lands on one grid."""
    est = estimator_cls(device="cpu", height=64, scales=(1.0, 0.5))
    sliver = np.full((2000, 1, 3), 128, np.uint8)
    hm, _, geometry = est.fields([sliver])[0]
    assert tuple(hm.shape[1:]) == geometry.field_size(sliver.shape) == (8, 1)
