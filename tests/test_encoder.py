import numpy as np
import pytest

from pafpose import COCO18, OPENPOSE_COCO18, Encoder, EncoderConfig, FieldSpec, PafposeError
from pafpose.encoder import ignore_mask_from_coco
from pafpose.synthetic import random_scene

SPEC = OPENPOSE_COCO18  # stride 8: cell (gx, gy) is centred on pixel (8 gx + 3.5, 8 gy + 3.5)


def cell_centre(gx, gy, s=8):
    return gx * s + (s - 1) / 2, gy * s + (s - 1) / 2


def one_person(points: dict, k=18):
    p = np.zeros((1, k, 3))
    for name, (x, y) in points.items():
        p[0, COCO18.index(name)] = (x, y, 2)
    return p


def test_heatmap_peak_is_one_at_keypoint_and_gaussian_elsewhere():
    x, y = cell_centre(10, 7)
    hm = Encoder(SPEC).encode_heatmaps(one_person({"nose": (x, y)}), (20, 30))
    nose = hm[COCO18.index("nose")]
    assert nose[7, 10] == pytest.approx(1.0)
    assert nose.max() == pytest.approx(1.0)
    # one cell away: exp(-8^2 / (2 * 7^2))
    assert nose[7, 11] == pytest.approx(np.exp(-64 / 98), rel=1e-5)
    # beyond OpenPose's cut-off (value < 0.01) the map is exactly zero
    d2 = ((np.arange(30) * 8 + 3.5 - x) ** 2)[None, :] + ((np.arange(20) * 8 + 3.5 - y) ** 2)[:, None]
    assert (nose[np.exp(-d2 / 98) < 0.01] == 0).all()
    others = np.delete(hm[:18], COCO18.index("nose"), axis=0)
    assert (others == 0).all()
    assert np.allclose(hm[18], 1 - nose)  # background


def test_heatmaps_take_the_max_over_people_not_the_sum():
    x, y = cell_centre(10, 7)
    people = np.concatenate([one_person({"neck": (x, y)}), one_person({"neck": (x + 8, y)})])
    hm = Encoder(SPEC).encode_heatmaps(people, (20, 30))[COCO18.index("neck")]
    assert hm.max() == pytest.approx(1.0)
    assert hm[7, 10] == pytest.approx(1.0) and hm[7, 11] == pytest.approx(1.0)


def test_heatmaps_match_a_direct_per_pixel_reference():
    rng = np.random.default_rng(3)
    scene = random_scene(rng, 6, size=(96, 128), separated=False)
    cfg = EncoderConfig(sigma=5.0)
    hm = Encoder(SPEC, cfg).encode_heatmaps(scene.people, (12, 16))
    gy, gx = np.mgrid[0:12, 0:16] * 8 + 3.5
    for k in range(18):
        ref = np.zeros((12, 16))
        for p in scene.people:
            if p[k, 2] > 0:
                e = ((gx - p[k, 0]) ** 2 + (gy - p[k, 1]) ** 2) / (2 * 25.0)
                ref = np.maximum(ref, np.where(e > 4.6052, 0, np.exp(-e)))
        assert np.allclose(hm[k], ref, atol=1e-6)


def test_unlabelled_or_nan_keypoints_leave_no_trace():
    p = one_person({"nose": cell_centre(5, 5), "neck": cell_centre(5, 9)})
    p[0, COCO18.index("nose"), 2] = 0
    q = one_person({"neck": (np.nan, np.nan), "nose": cell_centre(2, 2)})
    t = Encoder(SPEC)(np.concatenate([p, q]), (16, 16))
    assert t.heatmaps[COCO18.index("nose"), 5, 5] == 0
    assert t.heatmaps[COCO18.index("neck")].max() == pytest.approx(1.0)  # from p only
    assert not np.isnan(t.heatmaps).any() and not np.isnan(t.pafs).any()
    assert (t.pafs == 0).all()  # neither person has a limb with both ends labelled


def paf_of(pafs, spec, a, b):
    i = spec.limbs.index((a, b))
    cx, cy = spec.paf_channels[i]
    return pafs[cx], pafs[cy]


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0, 250.0])
def test_paf_unit_inside_band_zero_outside(angle):
    cfg = EncoderConfig(paf_width=8.0)
    a = np.array([120.0, 100.0])
    t = np.deg2rad(angle)
    u = np.array([np.cos(t), np.sin(t)])
    b = a + 70.0 * u
    pafs = Encoder(SPEC, cfg).encode_pafs(one_person({"neck": a, "right_hip": b}), (32, 32))
    vx, vy = paf_of(pafs, SPEC, "neck", "right_hip")
    gy, gx = np.mgrid[0:32, 0:32] * 8 + 3.5
    rx, ry = gx - a[0], gy - a[1]
    along = rx * u[0] + ry * u[1]
    across = np.abs(rx * u[1] - ry * u[0])
    band = (along >= -8) & (along <= 78) & (across <= 8)
    assert band.sum() > 10
    assert np.allclose(vx[band], u[0], atol=1e-6) and np.allclose(vy[band], u[1], atol=1e-6)
    assert (vx[~band] == 0).all() and (vy[~band] == 0).all()
    other = np.ones(38, bool)
    other[list(SPEC.paf_channels[SPEC.limbs.index(("neck", "right_hip"))])] = False
    assert (pafs[other] == 0).all()


def test_paf_overlap_is_the_average():
    a, b = (40.0, 60.0), (200.0, 60.0)
    same = np.concatenate([one_person({"neck": a, "right_hip": b})] * 2)
    opposite = np.concatenate([one_person({"neck": a, "right_hip": b}),
                               one_person({"neck": b, "right_hip": a})])
    enc = Encoder(SPEC)
    vx, _ = paf_of(enc.encode_pafs(same, (16, 32)), SPEC, "neck", "right_hip")
    assert vx.max() == pytest.approx(1.0)
    vx, vy = paf_of(enc.encode_pafs(opposite, (16, 32)), SPEC, "neck", "right_hip")
    assert np.abs(vx).max() < 1e-6 and np.abs(vy).max() < 1e-6


def test_smooth_paf_falls_off_from_the_axis():
    cfg = EncoderConfig(paf_mode="smooth", paf_width=16.0)
    a, b = (40.0, 67.5), (200.0, 67.5)  # axis on row 8 (y = 67.5)
    vx, vy = paf_of(Encoder(SPEC, cfg).encode_pafs(one_person({"neck": a, "right_hip": b}), (17, 32)),
                    SPEC, "neck", "right_hip")
    col = vx[:, 15]
    assert col[8] == pytest.approx(1.0)
    assert col[7] == pytest.approx(col[9]) and 0 < col[9] < col[8]
    assert col[10] < col[9]
    assert col[11] == 0 and (vy == 0).all()


def test_flip_consistency_with_skeleton_permutations():
    """Fields of a mirrored scene = mirrored fields with the skeleton's flip permutations."""
    rng = np.random.default_rng(11)
    h, w = 96, 160  # multiples of the stride, so the cell grid is symmetric
    scene = random_scene(rng, 4, size=(h, w), separated=False, border=0)
    mirror = scene.people[:, COCO18.flip_permutation].copy()
    mirror[..., 0] = (w - 1) - mirror[..., 0]
    enc = Encoder(SPEC)
    fs = SPEC.field_size(h, w)
    t, tm = enc(scene.people, fs), enc(mirror, fs)
    hm_expect = t.heatmaps[[*list(COCO18.flip_permutation), 18], :, ::-1]
    assert np.allclose(tm.heatmaps, hm_expect, atol=1e-6)
    perm, reverse = COCO18.limb_flip(SPEC.limbs)
    assert not reverse.any()
    pidx = SPEC.paf_index
    for i in range(len(SPEC.limbs)):
        cx, cy = pidx[perm[i]]
        assert np.allclose(tm.pafs[pidx[i, 0]], -t.pafs[cx, :, ::-1], atol=1e-6)
        assert np.allclose(tm.pafs[pidx[i, 1]], t.pafs[cy, :, ::-1], atol=1e-6)


def square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_mask_is_zero_exactly_on_crowd_and_unlabelled_people():
    h, w = 64, 96
    anns = [
        {"id": 1, "iscrowd": 1, "num_keypoints": 0, "segmentation": square(16, 8, 40, 32)},
        {"id": 2, "iscrowd": 0, "num_keypoints": 0, "segmentation": square(64, 40, 80, 56)},
        {"id": 3, "iscrowd": 0, "num_keypoints": 9, "segmentation": square(0, 40, 30, 60)},
    ]
    ignore = ignore_mask_from_coco(anns, (h, w))
    # pycocotools rasterises a polygon's [x0, x1] edges into pixels x0..x1-1
    expect = np.zeros((h, w), bool)
    expect[8:32, 16:40] = True
    expect[40:56, 64:80] = True
    assert (ignore == expect).all()
    enc = Encoder(SPEC)
    mask = enc.encode_mask(ignore, SPEC.field_size(h, w))
    cells = np.ones((8, 12), np.float32)
    cells[1:4, 2:5] = 0
    cells[5:7, 8:10] = 0
    assert (mask == cells).all()
    spec1 = FieldSpec.sequential(COCO18, stride=1)
    assert (Encoder(spec1).encode_mask(ignore, (h, w)) == ~expect).all()
    assert (Encoder(SPEC, EncoderConfig(mask=False)).encode_mask(ignore, (8, 12)) == 1).all()


def test_mask_from_rle_crowd():
    from pycocotools import mask as mask_utils

    m = np.zeros((32, 48), np.uint8, order="F")
    m[4:12, 8:24] = 1
    rle = mask_utils.encode(m)
    ignore = ignore_mask_from_coco([{"iscrowd": 1, "segmentation": rle}], (32, 48))
    assert (ignore == m.astype(bool)).all()


def test_bad_inputs_raise_user_errors():
    enc = Encoder(SPEC)
    with pytest.raises(PafposeError, match=r"\(N, 18, 3\)"):
        enc(np.zeros((2, 17, 3)), (8, 8))
    with pytest.raises(PafposeError, match="paf_mode"):
        EncoderConfig(paf_mode="fuzzy")
    with pytest.raises(PafposeError, match="positive"):
        EncoderConfig(sigma=0)
    with pytest.raises(PafposeError, match="segmentation"):
        ignore_mask_from_coco([{"id": 7, "iscrowd": 1, "segmentation": [[1, 2, 3]]}], (8, 8))
    t = enc(np.zeros((0, 18, 3)), (4, 5))
    assert t.heatmaps.shape == (19, 4, 5) and (t.heatmaps[18] == 1).all() and (t.pafs == 0).all()
