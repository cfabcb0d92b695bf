import numpy as np
import pytest
import torch

from pafpose import COCO17, COCO18, OPENPOSE_COCO18, Decoder, DecoderConfig, Encoder, PafposeError, Pose
from pafpose.decoder import find_peaks
from pafpose.decoder.peaks import _peaks_torch
from pafpose.synthetic import random_scene

SPEC = OPENPOSE_COCO18


def fields(seed=0, n=5, size=(368, 656), separated=True):
    scene = random_scene(np.random.default_rng(seed), n, size, separated=separated)
    t = Encoder(SPEC)(scene.people, SPEC.field_size(*size))
    return scene, t.heatmaps, t.pafs


def assert_valid(poses, shape):
    h, w = shape
    for p in poses:
        assert isinstance(p, Pose) and p.keypoints.shape == (18, 3)
        assert np.isfinite(p.score) and 0 <= p.score
        k = p.keypoints
        assert np.isfinite(k[p.present]).all()
        assert (k[~p.present, 2] == 0).all() and np.isnan(k[~p.present, :2]).all()
        s = SPEC.stride
        assert (k[p.present, 0] >= -s).all() and (k[p.present, 0] <= w * s).all()
        assert (k[p.present, 1] >= -s).all() and (k[p.present, 1] <= h * s).all()
        assert p.num_keypoints >= DecoderConfig().min_keypoints


def test_peaks_are_refined_below_the_cell_size():
    rng = np.random.default_rng(5)
    xy = np.column_stack([rng.uniform(20, 600, 30), rng.uniform(20, 340, 30)])
    people = np.zeros((30, 18, 3))
    people[:, 0, :2] = xy  # noses only, far apart is not guaranteed: keep the isolated ones
    people[:, 0, 2] = 2
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    people = people[d.min(axis=1) > 40]
    hm = Encoder(SPEC).encode_heatmaps(people, (46, 82))
    for mode, tol in [("gaussian", 1e-3), ("quadratic", 1.2), ("centroid", 2.5), ("none", 5.7), ("upsample", 1.0)]:
        pk = find_peaks(hm[:18], DecoderConfig(refine=mode))
        assert len(pk.part) == len(people), mode
        got = pk.xy * 8 + 3.5
        err = np.hypot(*(got[:, None] - people[None, :, 0, :2]).transpose(2, 0, 1)).min(axis=1)
        assert err.max() <= tol, (mode, err.max())


def test_numpy_torch_and_batched_inputs_agree():
    _, hm, paf = fields(1, 6)
    dec = Decoder(SPEC)
    ref = dec.decode(hm, paf)
    assert len(ref) == 6
    for h, p in [(torch.from_numpy(hm), torch.from_numpy(paf)), (hm.astype(np.float64), paf)]:
        got = dec.decode(h, p)
        assert len(got) == len(ref)
        for a, b in zip(ref, got, strict=False):
            assert np.allclose(a.keypoints, b.keypoints, equal_nan=True, atol=1e-4)
    _, hm2, paf2 = fields(2, 3)
    batch = dec.decode_batch(torch.from_numpy(np.stack([hm, hm2])), torch.from_numpy(np.stack([paf, paf2])))
    assert [len(x) for x in batch] == [6, 3]
    nb = dec.decode_batch(np.stack([hm, hm2]), np.stack([paf, paf2]))
    for a, b in zip(batch[1], nb[1], strict=False):
        assert np.allclose(a.keypoints, b.keypoints, equal_nan=True, atol=1e-4)
    with pytest.raises(PafposeError, match="use decode_batch"):  # one return type per method
        dec.decode(np.stack([hm, hm2]), np.stack([paf, paf2]))
    with pytest.raises(PafposeError, match="use decode for one image"):
        dec.decode_batch(hm, paf)


def test_gpu_peak_finder_agrees_with_the_cpu_one():
    """GPU tensors find peaks with PyTorch (run here on CPU tensors), the rest with numpy: the
    same peaks, tie-breaks, caps and refinements, on fields, plateaus, checkerboards and NaN."""
    _, hm, _ = fields(7, 6)
    plateau = np.zeros((18, 10, 10), np.float32)
    plateau[3, 2:6, 3:8] = 0.7
    yy, xx = np.mgrid[0:60, 0:60]
    board = np.repeat(((((yy + xx) % 2) * 0.9 + 0.05) * np.linspace(0.5, 1, 60)[None]).astype(np.float32)[None], 18, 0)
    noisy = np.where(np.random.default_rng(3).random(hm.shape) < 0.05, np.nan, hm).astype(np.float32)
    for maps in (hm[:18], plateau, board, noisy):
        for cfg in (DecoderConfig(), DecoderConfig(refine="quadratic", max_peaks_per_part=7)):
            ref = find_peaks(maps, cfg)
            got = _peaks_torch(torch.from_numpy(np.ascontiguousarray(maps))[None], cfg)[0]
            assert got.part.tolist() == ref.part.tolist() and got.truncated == ref.truncated
            assert np.allclose(got.xy, ref.xy, atol=1e-5) and np.allclose(got.score, ref.score)
    assert find_peaks(board, DecoderConfig(max_peaks_per_part=7)).truncated  # the caps were compared too


def test_edge_peaks_refine_alike_one_by_one_and_as_arrays(monkeypatch):
    """A few edge peaks are refined in Python floats, many as arrays: bit-identical offsets
    on windows with missing sides, corners, flat and convex axes, and values <= 0."""
    import pafpose.decoder.refine as dec

    rng = np.random.default_rng(11)
    win = rng.uniform(-0.2, 1.0, (4000, 3, 3))
    win[:, 1, 1] = 1.0
    for w, kind in zip(win, rng.integers(0, 9, len(win)), strict=True):  # outside the map is NaN
        if kind < 2:  # top or bottom edge
            w[2 * kind, :] = np.nan
        elif kind < 4:  # left or right edge
            w[:, 2 * (kind - 2)] = np.nan
        elif kind < 8:  # a corner
            w[2 * ((kind - 4) // 2), :] = np.nan
            w[:, 2 * ((kind - 4) % 2)] = np.nan
    win[::7, 1, 0] = win[::7, 1, 2] = 1.0  # flat along x
    for mode in ("gaussian", "quadratic"):
        monkeypatch.setattr(dec, "_FEW_EDGE_PEAKS", 10**9)
        one_by_one = dec._refine(win.copy(), mode)
        monkeypatch.setattr(dec, "_FEW_EDGE_PEAKS", 0)
        arrays = dec._refine(win.copy(), mode)
        for a, b in zip(one_by_one, arrays, strict=True):
            assert np.array_equal(a, b), (mode, np.abs(a - b).max())
        assert (np.abs(one_by_one[0]) > 0).mean() > 0.3  # most windows do move the peak


def test_limbs_score_alike_in_one_pass_and_in_chunks(monkeypatch):
    """Few candidate pairs are sampled in one pass, many in early-rejection chunks: the same
    connections and scores to the bit."""
    import pafpose.decoder.limbs as dec

    for seed, n in ((1, 3), (2, 9)):
        _, hm, paf = fields(seed, n, separated=False)
        peaks = find_peaks(hm[:18])
        got = []
        for few in (0, 10**9):
            monkeypatch.setattr(dec, "_FEW_PAIRS", few)
            got.append(dec.score_limbs(paf, peaks, SPEC))
        a, b = got
        assert len(a.limb) >= 2 * n
        for x, y in ((a.limb, b.limb), (a.a, b.a), (a.b, b.b), (a.score, b.score)):
            assert np.array_equal(x, y)


def test_background_channel_is_optional():
    _, hm, paf = fields(3, 4)
    assert len(Decoder(SPEC).decode(hm[:18], paf)) == len(Decoder(SPEC).decode(hm, paf)) == 4


ADVERSARIAL = {
    "zeros": lambda s: (np.zeros((19, *s)), np.zeros((38, *s))),
    "ones": lambda s: (np.ones((19, *s)), np.ones((38, *s))),
    "nan": lambda s: (np.full((19, *s), np.nan), np.full((38, *s), np.nan)),
    "inf": lambda s: (np.full((19, *s), np.inf), np.full((38, *s), -np.inf)),
    "noise": lambda s: (np.random.default_rng(0).random((19, *s)), np.random.default_rng(1).normal(0, 1, (38, *s))),
    "sparse-nan": lambda s: tuple(np.where(np.random.default_rng(2).random(a.shape) < 0.1, np.nan, a)
                                  for a in fields(4, 5)[1:]),
}


CASES = [(k, s) for k in sorted(ADVERSARIAL) for s in [(0, 0), (1, 1), (2, 3), (46, 82)]
         if k != "sparse-nan" or s == (46, 82)]  # sparse-nan is built from real-size fields


@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_adversarial_fields_give_valid_output(kind, shape):
    hm, paf = ADVERSARIAL[kind](shape)
    for h, p in [(hm, paf), (torch.from_numpy(hm).float(), torch.from_numpy(paf).float())]:
        poses = Decoder(SPEC).decode(h, p)
        assert_valid(poses, shape)


def test_tens_of_thousands_of_peaks_are_capped_and_reported():
    # a checkerboard has a strict local maximum on every other cell: 20,000 per channel
    yy, xx = np.mgrid[0:200, 0:200]
    board = (((yy + xx) % 2) * 0.9 + 0.05).astype(np.float32)
    board[::2] *= np.linspace(0.5, 1.0, 200)[None, :]  # break ties so peaks are strict
    hm = np.repeat(board[None], 19, axis=0)
    paf = np.random.default_rng(0).normal(0, 1, (38, 200, 200)).astype(np.float32)
    cfg = DecoderConfig(max_peaks_per_part=50)
    peaks = find_peaks(hm[:18], DecoderConfig())
    assert len(peaks.part) == 18 * 100 and peaks.truncated  # default cap of 100 per part
    for h, p in [(hm, paf), (torch.from_numpy(hm), torch.from_numpy(paf))]:
        poses = Decoder(SPEC, cfg).decode(h, p)
        assert poses.truncated
        assert_valid(poses, (200, 200))
    assert not Decoder(SPEC).decode(*fields(5, 3)[1:]).truncated


def test_plateaus_give_one_peak():
    hm = np.zeros((18, 10, 10), np.float32)
    hm[3, 2:6, 3:8] = 0.7
    pk = find_peaks(hm)
    assert pk.part.tolist() == [3]
    t = Decoder(SPEC)
    h = torch.from_numpy(np.concatenate([hm, np.zeros((1, 10, 10), np.float32)]))
    assert len(t.decode(h, torch.zeros(38, 10, 10))) == 0


def test_thresholds_filter_people():
    _, hm, paf = fields(6, 4)
    assert len(Decoder(SPEC, DecoderConfig(min_keypoints=19)).decode(hm, paf)) == 0
    assert len(Decoder(SPEC, DecoderConfig(peak_threshold=1.01)).decode(hm, paf)) == 0
    # scaling the PAFs below the sample threshold removes every limb, hence every person
    assert len(Decoder(SPEC).decode(hm, paf * 0.04)) == 0


def test_sampling_variants_agree_on_clean_fields():
    _, hm, paf = fields(7, 8)
    base = Decoder(SPEC).decode(hm, paf)
    for cfg in [DecoderConfig(paf_samples=20, paf_samples_per_cell=1.0), DecoderConfig(paf_samples=5),
                DecoderConfig(paf_min_fraction=0.95), DecoderConfig(distance_prior=0.0)]:
        got = Decoder(SPEC, cfg).decode(hm, paf)
        assert sorted(p.num_keypoints for p in got) == sorted(p.num_keypoints for p in base)


def test_people_crossing_each_other_are_kept_apart():
    # two people whose arms cross at right angles: the PAF direction tells the limbs apart
    a = np.full((18, 3), np.nan)
    b = np.full((18, 3), np.nan)
    a[:, 2] = b[:, 2] = 0
    for person, pts in ((a, {"neck": (200, 100), "right_shoulder": (170, 100), "right_elbow": (170, 160),
                             "right_wrist": (170, 220), "left_shoulder": (230, 100), "right_hip": (190, 200)}),
                        (b, {"neck": (120, 180), "right_shoulder": (120, 150), "right_elbow": (170, 190),
                             "right_wrist": (230, 190), "left_shoulder": (120, 210), "right_hip": (60, 180)})):
        for name, (x, y) in pts.items():
            person[COCO18.index(name)] = (x, y, 2)
    t = Encoder(SPEC)(np.stack([a, b]), (40, 40))
    poses = Decoder(SPEC).decode(t.heatmaps, t.pafs)
    assert len(poses) == 2
    for p in poses:
        gt = a if abs(p.keypoints[1, 0] - 200) < 2 else b
        have = p.present
        assert have.sum() == 6
        assert np.allclose(p.keypoints[have, :2], gt[have, :2], atol=0.5)


def test_pose_conversions():
    _, hm, paf = fields(8, 1)
    pose = Decoder(SPEC).decode(hm, paf)[0]
    c17 = pose.to_coco17()
    assert c17.skeleton is COCO17 and c17.keypoints.shape == (17, 3)
    for i, name in enumerate(COCO17.keypoints):
        j = COCO18.index(name)
        assert np.array_equal(c17.keypoints[i], pose.keypoints[j], equal_nan=True)
    flat = pose.to_coco_keypoints()
    assert len(flat) == 51 and all(np.isfinite(flat))
    missing = [i for i in range(17) if not c17.present[i]]
    assert all(flat[3 * i: 3 * i + 3] == [0.0, 0.0, 0.0] for i in missing)
    x0, y0, x1, y1 = pose.bbox()
    assert x0 <= x1 and y0 <= y1


def test_bad_inputs_raise_user_errors():
    dec = Decoder(SPEC)
    with pytest.raises(PafposeError, match="heatmap channels"):
        dec.decode(np.zeros((17, 4, 4)), np.zeros((38, 4, 4)))
    with pytest.raises(PafposeError, match="PAF channels"):
        dec.decode(np.zeros((19, 4, 4)), np.zeros((36, 4, 4)))
    with pytest.raises(PafposeError, match="spatial"):
        dec.decode(np.zeros((19, 4, 4)), np.zeros((38, 4, 5)))
    with pytest.raises(PafposeError, match="both"):
        dec.decode(np.zeros((19, 4)), np.zeros((38, 4)))
    with pytest.raises(PafposeError, match="refine"):
        DecoderConfig(refine="magic")


def test_two_parts_in_one_spot_still_connect():
    # a tiny person: nose and eyes 2 px apart, in one cell, so refine="none" puts them in one spot
    p = np.zeros((1, 18, 3))
    pts = {"neck": (100, 140), "nose": (100, 101), "right_eye": (97, 97), "left_eye": (102, 97),
           "right_shoulder": (80, 140)}
    for name, (x, y) in pts.items():
        p[0, COCO18.index(name)] = (x, y, 2)
    t = Encoder(SPEC)(p, (30, 30))
    poses = Decoder(SPEC, DecoderConfig(refine="none")).decode(t.heatmaps, t.pafs)
    assert len(poses) == 1 and poses[0].num_keypoints == 5


def test_tensors_that_require_grad_are_accepted():
    _, hm, paf = fields(9, 2)
    h = torch.from_numpy(hm).requires_grad_(True)
    p = torch.from_numpy(paf).requires_grad_(True)
    assert len(Decoder(SPEC).decode(h * 1.0, p * 1.0)) == 2


def test_min_fraction_is_strict_despite_float_rounding():
    """0.29 * 100 is 28.999... in floating point: 29 supporting samples of 100 must not pass."""
    from pafpose.decoder import find_peaks, score_limbs

    hm = np.zeros((18, 20, 20), np.float32)
    hm[1, 10, 2] = hm[2, 10, 12] = 1.0  # neck and right shoulder, 10 cells apart on row 10
    paf = np.zeros((38, 20, 20), np.float32)
    cx = SPEC.paf_channels[SPEC.limbs.index(("neck", "right_shoulder"))][0]
    paf[cx, 10, :5] = 1.0
    # samples at x = 2 + 10 j / 99; bilinear value 1 - (x - 4) on [4, 5): above 0.1 for j <= 28
    base = {"paf_samples": 100, "paf_threshold": 0.1, "distance_prior": 0.0}
    peaks = find_peaks(hm, DecoderConfig(**base))
    assert len(score_limbs(paf, peaks, SPEC, DecoderConfig(paf_min_fraction=0.28, **base)).a) == 1
    assert len(score_limbs(paf, peaks, SPEC, DecoderConfig(paf_min_fraction=0.29, **base)).a) == 0


def test_gaussian_refinement_falls_back_where_neighbours_dip_below_zero():
    hm = np.zeros((18, 5, 5), np.float32)
    hm[0, 2, 1:4] = [-0.2, 1.0, 0.5]  # a sharp peak with a negative left neighbour
    hm[0, 1, 2] = hm[0, 3, 2] = 0.4
    quad = find_peaks(hm, DecoderConfig(refine="quadratic")).xy
    gauss = find_peaks(hm, DecoderConfig(refine="gaussian")).xy
    assert np.allclose(gauss, quad)
    assert 2.0 < gauss[0, 0] < 2.5  # pulled right, toward the larger neighbour


def test_fill_missing_puts_unconnected_keypoints_on_their_heatmap_peak():
    scene, hm, paf = fields(3, 4)
    wrist, elbow = COCO18.index("right_wrist"), COCO18.index("right_elbow")
    limb = SPEC.limbs.index(("right_elbow", "right_wrist"))
    paf = paf.copy()
    paf[list(SPEC.paf_channels[limb])] = 0  # the network "missed" every forearm
    plain = Decoder(SPEC).decode(hm, paf)
    assert len(plain) == 4 and all(not p.present[wrist] for p in plain)
    filled = Decoder(SPEC, DecoderConfig(fill_missing=True)).decode(hm, paf)
    assert len(filled) == len(plain)
    truth = scene.people
    recovered = 0
    for a, b in zip(plain, filled, strict=True):
        assert np.allclose(a.keypoints[a.present], b.keypoints[a.present])  # found keypoints untouched
        assert b.present.sum() >= a.present.sum() and a.score == b.score
        assert (b.keypoints[b.present & ~a.present, 2] > 0).all()  # filled only where the heatmap says so
        # the person's own wrist, where the ground truth has one
        g = truth[np.argmin([np.nanmean(np.hypot(*(t[:, :2] - a.keypoints[:, :2]).T)) for t in truth])]
        if g[wrist, 2] > 0 and g[elbow, 2] > 0:
            assert b.present[wrist] and np.hypot(*(b.keypoints[wrist, :2] - g[wrist, :2])) < 1.0
            recovered += 1
            assert b.keypoints[wrist, 2] > 0.5  # the heatmap value at the cell
        assert (b.keypoints[~a.present, 2] <= 1.0).all() and (b.keypoints[~a.present, 2] >= 0).all()
    assert recovered >= 2


def test_fill_missing_leaves_complete_people_alone():
    _, hm, _ = fields(4, 3)
    people = np.zeros((0, 18, 3))
    from pafpose.decoder import fill_missing

    assert fill_missing(people, hm, SPEC, DecoderConfig()).shape == (0, 18, 3)
    complete = np.random.default_rng(0).uniform(5, 40, (2, 18, 3))
    assert (fill_missing(complete, hm, SPEC, DecoderConfig()) == complete).all()
    with pytest.raises(PafposeError, match="fill_radius"):
        DecoderConfig(fill_radius=0)


def test_fill_missing_ignores_nan_and_needs_positive_evidence():
    from pafpose.decoder import fill_missing

    hm = np.zeros((19, 20, 20))
    person = np.full((1, 18, 3), np.nan)
    person[0, :, 2] = 0.0  # missing: NaN, NaN, 0
    person[0, 1] = (10, 10, 0.9)  # a neck
    person[0, 0] = (10, 7, 0.9)  # and a nose
    hm[2, 10, 13] = np.nan  # right shoulder: NaN next to the neck...
    hm[2, 11, 12] = 0.4  # ...and a real response
    out = fill_missing(person, hm, SPEC, DecoderConfig())
    assert np.allclose(out[0, 2, :2], (12, 11), atol=0.5) and out[0, 2, 2] == pytest.approx(0.4)
    assert np.isnan(out[0, 5, 0])  # left shoulder: no positive value anywhere, stays missing
    assert np.isfinite(out[0, :, 2]).all()
