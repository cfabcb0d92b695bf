"""pafpose.coords.Geometry: the one mapping between image pixels, network-input pixels and field cells."""

import warnings

import numpy as np
import pytest
import torch

from pafpose import COCO17, OPENPOSE_COCO18, Encoder, EncoderConfig, FieldSpec, PafposeError, Pose
from pafpose.coords import Geometry
from pafpose.pose import Poses, map_poses, scale_poses

FACTORS = [(1.0, 1.0), (0.5, 0.5), (368 / 480, 368 / 480), (2.7, 2.7), (0.13, 0.31)]


@pytest.mark.parametrize("stride", [1, 4, 8, 16])
@pytest.mark.parametrize(("fx", "fy"), FACTORS)
def test_round_trips_through_every_space(fx, fy, stride):
    g = Geometry(fx, fy, stride)
    rng = np.random.default_rng(stride)
    pts = rng.uniform(-10, 2000, (500, 2))
    inp = g.image_to_input(pts)
    cell = g.input_to_cell(inp)
    assert np.allclose(g.input_to_image(g.cell_to_input(cell)), pts, rtol=0, atol=1e-9)
    assert np.allclose(g.cell_to_image(g.image_to_cell(pts)), pts, rtol=0, atol=1e-9)
    assert np.array_equal(g.image_to_cell(pts), cell)  # the composition is the two steps, bit for bit
    # the axis form is the same arithmetic as the points form
    for axis, f in ((0, fx), (1, fy)):
        assert np.array_equal(g.image_to_input(pts[:, axis], axis), inp[:, axis])
        assert np.array_equal(g.input_to_image(pts[:, axis], axis), (pts[:, axis] + 0.5) / f - 0.5)


def test_the_convention():
    g = Geometry(0.5, 0.25, stride=8)
    # pixel edges map onto pixel edges: the image's outer edge is the input's
    assert g.image_to_input(np.array([[-0.5, -0.5], [999.5, 1999.5]])).tolist() == [[-0.5, -0.5], [499.5, 499.5]]
    # cell (gx, gy) covers input pixels gx*s .. gx*s + s-1, centred on gx*s + (s-1)/2
    assert g.offset == 3.5
    assert g.cell_to_input(np.array([[0, 0], [2, 1]])).tolist() == [[3.5, 3.5], [19.5, 11.5]]
    assert g.input_to_cell(np.array([[-0.5, 7.5]])).tolist() == [[-0.5, 0.5]]  # the edges of cell 0
    # extra columns (a keypoint's score) are carried, NaNs stay NaN, the input is not modified
    k = np.array([[1.0, 2.0, 0.7], [np.nan, np.nan, 0.0]])
    out = g.image_to_input(k)
    assert out[0, 2] == 0.7 and np.isnan(out[1, :2]).all() and k[0, 0] == 1.0
    # sizes: the resize as cv2.resize is asked for, then the stride's cells, then the padding
    assert g.input_size((1001, 2001, 3)) == (250, 1000)
    assert g.field_size((1001, 2001, 3)) == (32, 125)
    assert g.padded_size((1001, 2001, 3)) == (256, 1000)
    assert Geometry(1e-4, 1e-4).input_size((10, 10)) == (1, 1)


def test_torch_and_numpy_agree_bit_for_bit():
    g = Geometry.uniform(368 / 733, 8)
    v = torch.arange(50, dtype=torch.float32)
    got = g.cell_to_image(v, 0)
    assert got.dtype == torch.float32
    assert torch.equal(got, (v * 8 + 3.5 + 0.5) / (368 / 733) - 0.5)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_bad_factors_are_refused(bad):
    with pytest.raises(PafposeError, match="positive finite"):
        Geometry(bad, 1.0)


def test_bad_strides_and_shapes_are_refused():
    with pytest.raises(PafposeError, match="stride"):
        Geometry(1.0, 1.0, 0)
    with pytest.raises(PafposeError, match="axis"):
        Geometry(1.0, 1.0).image_to_input(np.zeros(3), axis=2)
    with pytest.raises(PafposeError, match=r"\(x, y\)"):
        Geometry(1.0, 1.0).image_to_input(np.zeros((3, 1)))


def people(n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = Poses()
    for _ in range(n):
        k = np.c_[rng.uniform(0, 500, (18, 2)), rng.uniform(0, 1, 18)]
        k[3] = (np.nan, np.nan, 0.0)
        out.append(Pose(k, float(rng.uniform()), "coco18"))
    out.truncated = True
    return out


def test_people_move_as_the_old_arithmetic_did():
    ps = people()
    fx, fy = 0.37, 0.41
    moved = scale_poses(ps, fx, fy)
    assert moved.truncated and [p.score for p in moved] == [p.score for p in ps]
    for p, q in zip(ps, moved, strict=True):
        k = p.keypoints.copy()
        k[:, 0] = (k[:, 0] + 0.5) * fx - 0.5
        k[:, 1] = (k[:, 1] + 0.5) * fy - 0.5
        assert np.array_equal(q.keypoints, k, equal_nan=True)
    back = map_poses(moved, Geometry(fx, fy).input_to_image)
    for p, q in zip(ps, back, strict=True):
        assert np.allclose(p.keypoints, q.keypoints, equal_nan=True)
    # the Estimator undoing a reduced decode (the service's shrunk uploads too): divided by (sx, sy), not
    # multiplied by the inverse
    sx, sy = 1000 / 3000, 667 / 2000
    for p, q in zip(moved, moved.moved(Geometry(sx, sy).input_to_image), strict=True):
        k = p.keypoints.copy()
        k[:, 0] = (k[:, 0] + 0.5) / sx - 0.5
        k[:, 1] = (k[:, 1] + 0.5) / sy - 0.5
        assert np.array_equal(q.keypoints, k, equal_nan=True)


def old_flip_tables(spec):
    """The Estimator's flip tables as it computed them before FieldSpec owned them."""
    sk, k = spec.skeleton, spec.num_keypoints
    hm = list(sk.flip_permutation.tolist()) + ([k] if spec.background else [])
    perm, reverse = sk.limb_flip(spec.limbs)
    pidx = spec.paf_index
    src = np.zeros(spec.num_pafs, dtype=np.int64)
    sign = np.ones(spec.num_pafs, dtype=np.float32)
    for i in range(len(spec.limbs)):
        j = perm[i]
        src[pidx[i, 0]], src[pidx[i, 1]] = pidx[j, 0], pidx[j, 1]
        sign[pidx[i, 0]], sign[pidx[i, 1]] = (1.0, -1.0) if reverse[i] else (-1.0, 1.0)
    return np.array(hm), src, sign


@pytest.mark.parametrize("spec", [OPENPOSE_COCO18, FieldSpec.sequential(COCO17, background=False),
                                  FieldSpec.sequential(COCO17, stride=4)], ids=["openpose", "coco17-nobg", "coco17"])
def test_flip_tables_belong_to_the_layout(spec):
    tables = spec.flip_tables
    for got, want in zip(tables, old_flip_tables(spec), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
        assert not got.flags.writeable  # cached: nobody changes them for everyone
    assert spec.flip_tables is tables
    assert len(tables.heatmaps) == spec.num_heatmaps and len(tables.pafs) == spec.num_pafs


def test_background_is_the_layouts():
    nobg = FieldSpec.sequential(COCO17, background=False)
    people = np.array([[[10.0, 10.0, 2.0]] * 17])
    assert Encoder(nobg).encode_heatmaps(people, (8, 8)).shape[0] == 17
    assert Encoder(FieldSpec.sequential(COCO17)).encode_heatmaps(people, (8, 8)).shape[0] == 18
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EncoderConfig()  # unset: no warning
    with pytest.warns(DeprecationWarning, match="FieldSpec's background decides"):
        agreeing = EncoderConfig(background=False)
    assert Encoder(nobg, agreeing).encode_heatmaps(people, (8, 8)).shape[0] == 17
    with pytest.raises(PafposeError, match="disagrees with the field layout"):
        Encoder(OPENPOSE_COCO18, agreeing)


def test_the_spec_owns_its_grid():
    spec = FieldSpec.sequential(COCO17, stride=4)
    assert spec.cells == Geometry(1.0, 1.0, 4) and spec.offset == 1.5
    assert spec.field_size(17, 16) == (5, 4)
    assert spec.geometry(0.5) == Geometry(0.5, 0.5, 4)


def test_the_explain_figure_lays_each_cell_on_its_centre():
    from pafpose.viz import explain_figure

    spec = OPENPOSE_COCO18
    g = spec.geometry(0.75)
    image = np.zeros((100, 150, 3), np.uint8)
    gh, gw = g.field_size(image.shape)
    fig = explain_figure(image, np.zeros((spec.num_heatmaps, gh, gw)), np.zeros((spec.num_pafs, gh, gw)), spec, [], g)
    left, right, bottom, top = fig.axes[1].images[1].get_extent()  # the max-heatmap overlay
    # the centre of column gx / row gy is cell (gx, gy)'s centre, where its PAF arrow starts
    assert np.allclose(left + (np.arange(gw) + 0.5) * (right - left) / gw, g.cell_to_image(np.arange(gw), 0))
    assert np.allclose(top + (np.arange(gh) + 0.5) * (bottom - top) / gh, g.cell_to_image(np.arange(gh), 1))
    assert (left, top) == (-0.5, -0.5)  # the field starts where the image does
