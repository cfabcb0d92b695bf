import numpy as np
import pytest

from pafpose import BODY25, COCO17, COCO18, OPENPOSE_COCO18, FieldSpec, PafposeError, get_skeleton
from pafpose.skeleton import convert_keypoints, keypoint_map


def test_sizes():
    assert (COCO18.num_keypoints, len(COCO18.limbs)) == (18, 19)
    assert (BODY25.num_keypoints, len(BODY25.limbs)) == (25, 26)
    assert (COCO17.num_keypoints, len(COCO17.limbs)) == (17, 19)
    for sk in (COCO18, BODY25, COCO17):
        assert len(sk.keypoint_colors) == sk.num_keypoints
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in sk.keypoint_colors)


@pytest.mark.parametrize("sk", [COCO18, BODY25, COCO17])
def test_flip_permutation_swaps_sides(sk):
    perm = sk.flip_permutation
    assert (perm[perm] == np.arange(sk.num_keypoints)).all()  # an involution
    for i, name in enumerate(sk.keypoints):
        other = sk.keypoints[perm[i]]
        if name.startswith("left_"):
            assert other == "right_" + name[5:]
        elif name.startswith("right_"):
            assert other == "left_" + name[6:]
        else:
            assert other == name


@pytest.mark.parametrize("sk", [COCO18, BODY25, COCO17])
def test_limb_flip_permutation(sk):
    perm, reverse = sk.limb_flip()
    assert (perm[perm] == np.arange(len(sk.limbs))).all()
    kperm = sk.flip_permutation
    idx = sk.limb_indices()
    # mirrored limb i joins the mirrored keypoints of limb perm[i] (reversed where flagged)
    mirrored = kperm[idx[perm]]
    mirrored[reverse] = mirrored[reverse][:, ::-1]
    assert (mirrored == idx).all()
    assert reverse.any() == (sk is COCO17)


def test_coco18_to_coco17_by_name():
    m = keypoint_map(COCO18, COCO17)
    assert (m >= 0).all()
    assert [COCO18.keypoints[i] for i in m] == list(COCO17.keypoints)
    assert "neck" not in COCO17.keypoints


def test_convert_derives_neck_and_marks_missing():
    kps = np.zeros((2, 17, 3))
    ls, rs = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
    kps[0, ls] = (10, 20, 2)
    kps[0, rs] = (30, 40, 1)
    kps[1, ls] = (10, 20, 2)  # right shoulder unlabelled: no neck
    out = convert_keypoints(kps, COCO17, COCO18)
    neck = COCO18.index("neck")
    assert out[0, neck].tolist() == [20.0, 30.0, 1.0]
    assert np.isnan(out[1, neck, :2]).all() and out[1, neck, 2] == 0
    back = convert_keypoints(out, COCO18, COCO17)
    assert np.allclose(back[0, ls], kps[0, ls]) and np.allclose(back[0, rs], kps[0, rs])


def test_body25_mid_hip_from_coco18():
    kps = np.zeros((18, 3))
    kps[COCO18.index("left_hip")] = (0, 0, 2)
    kps[COCO18.index("right_hip")] = (4, 8, 2)
    out = convert_keypoints(kps, COCO18, BODY25)
    assert out[BODY25.index("mid_hip")].tolist() == [2.0, 4.0, 2.0]
    assert np.isnan(out[BODY25.index("left_heel"), 0])


def test_openpose_coco18_layout_matches_published_pairs():
    # human-pose-estimation-0001 / Lightweight OpenPose layout, as keypoint indices.
    limbs = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
             (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17)]
    assert OPENPOSE_COCO18.limb_index.tolist() == [list(p) for p in limbs]
    assert OPENPOSE_COCO18.paf_index[0].tolist() == [12, 13]
    assert OPENPOSE_COCO18.paf_index[6].tolist() == [0, 1]
    assert (OPENPOSE_COCO18.num_heatmaps, OPENPOSE_COCO18.num_pafs) == (19, 38)


def test_errors_are_user_errors():
    with pytest.raises(PafposeError, match="unknown skeleton"):
        get_skeleton("coco19")
    with pytest.raises(PafposeError, match="no keypoint"):
        COCO18.index("tail")
    with pytest.raises(PafposeError, match="exactly once"):
        FieldSpec(COCO18, COCO18.limbs, tuple((0, 1) for _ in COCO18.limbs))
    with pytest.raises(PafposeError, match="entries"):
        convert_keypoints(np.zeros((5, 3)), COCO18, COCO17)
