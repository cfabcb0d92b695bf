"""Drawing: the explain figure (pose drawing on a photo is checked with the formats, test_formats),
and the whole-body parts (hands, face, feet) on generated people, pixel by pixel."""

import cv2
import numpy as np
import pytest

from pafpose.pose import Pose


def test_explain_figure(est, images, tmp_path):
    from pafpose.viz import explain_figure, save_figure

    img = cv2.imread(str(images / "p3_dance.png"))
    hm, paf, geometry = est.fields([img])[0]
    fig = explain_figure(img, hm.numpy(), paf.numpy(), est.spec, est.predict(img), geometry)
    out = save_figure(fig, tmp_path / "fig.png", dpi=40)
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 100 and picture.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def missing(n):
    """``n`` missing keypoints: (NaN, NaN, 0)."""
    return np.tile([np.nan, np.nan, 0.0], (n, 1))


def whole_body_person(shift=0.0, scale=1.0, track_id=None):
    """A COCO-18 person with only the left ankle of the body, a right hand (thumb found, the index
    finger's pip below the threshold and dip missing, the rest missing), a left hand (its wrist and
    little finger's base), a face of two dots (a third below the threshold) and a left foot."""
    k = missing(18)
    k[13] = [600, 500, 0.9]  # left ankle
    hand = missing(21)
    hand[0:5] = [[200, 200, 0.9], [240, 200, 0.8], [280, 200, 0.7], [320, 200, 0.9], [360, 200, 0.6]]
    hand[5:9] = [[200, 240, 0.9], [200, 280, 0.05], [np.nan, np.nan, 0.0], [200, 360, 0.9]]
    left = missing(21)
    left[[0, 17]] = [[700, 200, 0.9], [700, 260, 0.9]]
    face = missing(70)
    face[[10, 11, 12]] = [[500, 100, 0.9], [520, 100, 0.5], [540, 100, 0.01]]
    feet = missing(6)
    feet[[0, 2]] = [[660, 500, 0.9], [600, 560, 0.9]]  # left big toe, left heel; the small toe missing
    parts = {"hand_right": hand, "hand_left": left, "face": face, "feet": feet}

    def place(a):
        out = a.copy()
        out[:, :2] = out[:, :2] * scale + shift
        return out

    return Pose(place(k), 0.9, "coco18", track_id, parts={n: place(v) for n, v in parts.items()})


def bgr(rgb):
    return tuple(reversed(rgb))


def test_hands_face_and_feet_are_drawn_as_openpose_draws_them():
    from pafpose.draw import HAND_COLORS, HAND_LIMBS, poses
    from pafpose.skeleton import BODY25, HAND_KEYPOINTS

    assert len(HAND_LIMBS) == 20 and HAND_LIMBS[:5] == (
        ("wrist", "thumb_cmc"), ("thumb_cmc", "thumb_mcp"), ("thumb_mcp", "thumb_ip"), ("thumb_ip", "thumb_tip"),
        ("wrist", "index_mcp"))
    assert {b for _, b in HAND_LIMBS} == set(HAND_KEYPOINTS[1:])  # every finger joint ends one bone
    img = poses(np.zeros((800, 1000, 3), np.uint8), [whole_body_person()])  # body 4 px, hands and face 2 px

    def at(x, y):
        return tuple(int(c) for c in img[y, x])

    for x, tip in ((220, 1), (260, 2), (300, 3), (340, 4)):  # the thumb's bones, each in its tip's colour
        assert at(x, 200) == bgr(HAND_COLORS[tip]), (x, tip)
    assert at(200, 220) == bgr(HAND_COLORS[5])  # wrist -> index base
    assert at(200, 260) == at(200, 280) == at(200, 320) == at(200, 340) == (0, 0, 0)  # weak pip, missing dip
    assert at(200, 360) == bgr(HAND_COLORS[8])  # the index tip's disc, though no bone reaches it
    assert at(200, 200) == bgr(HAND_COLORS[0]) and at(360, 200) == bgr(HAND_COLORS[4])  # joints over bones
    assert at(700, 230) == bgr(HAND_COLORS[17])  # the left hand: wrist -> little finger's base
    assert at(500, 100) == at(520, 100) == (255, 255, 255) and at(540, 100) == (0, 0, 0)  # face dots
    assert not img[:60, :60].any()  # no missing point drawn at the origin
    limb = dict(zip(BODY25.limbs, BODY25.limb_colors, strict=True))
    assert at(600, 530) == bgr(limb[("left_ankle", "left_heel")])  # BODY-25's foot bones from parts["feet"]
    assert at(630, 500) == bgr(limb[("left_ankle", "left_big_toe")])
    assert at(600, 560) == bgr(BODY25.keypoint_colors[BODY25.index("left_heel")])
    assert at(660, 530) == (0, 0, 0)  # big toe -> small toe: the small toe is missing
    drawn = np.argwhere(img.any(axis=2))
    assert drawn[:, 0].min() >= 95 and drawn[:, 1].min() >= 195  # nothing beyond the points found

    twice = poses(np.zeros((1600, 2000, 3), np.uint8), [whole_body_person(scale=2.0)])  # strokes grow with size
    assert (img[190:210, 300] > 0).any(axis=1).sum() < (twice[380:420, 600] > 0).any(axis=1).sum()
    assert (img[90:110, 500] > 0).any(axis=1).sum() < (twice[180:220, 1000] > 0).any(axis=1).sum()


def test_whole_body_parts_follow_the_person_and_are_checked():
    from pafpose.draw import id_color, poses
    from pafpose.errors import PafposeError

    tracked = poses(np.zeros((800, 1000, 3), np.uint8), [whole_body_person(track_id=7)])
    assert tuple(int(c) for c in tracked[200, 260]) == id_color(7)  # a tracked person's hand in their colour
    assert tuple(int(c) for c in tracked[530, 600]) == id_color(7)  # their foot
    assert tuple(int(c) for c in tracked[100, 500]) == id_color(7)  # their face
    weak = whole_body_person()
    for k in weak.parts.values():
        k[:, 2] = np.minimum(k[:, 2], 0.5)
    plain = whole_body_person()
    plain.parts.clear()
    body = poses(np.zeros((800, 1000, 3), np.uint8), [plain], threshold=0.6)
    assert body.any() and not body[:, :560].any()  # no parts: the ankle's disc alone
    # every part's point below the threshold: the body alone
    assert np.array_equal(poses(np.zeros((800, 1000, 3), np.uint8), [weak], threshold=0.6), body)
    bad = whole_body_person()
    bad.parts["hand_left"] = bad.parts["hand_left"][:20]
    with pytest.raises(PafposeError, match="'hand_left' has 20 points, not 21"):
        poses(np.zeros((80, 100, 3), np.uint8), [bad])


def test_a_point_beyond_any_image_is_left_out_not_an_opencv_error():
    from pafpose.draw import poses as draw_people

    image = np.zeros((240, 320, 3), np.uint8)
    drawn = []
    for value in (1e30, 3e9, np.inf, np.nan):
        k = np.c_[np.tile([[120.0, 90.0], [150.0, 140.0]], (9, 1)), np.full(18, 0.9)]
        hand = np.c_[np.full((21, 2), 100.0) + np.arange(21)[:, None], np.full(21, 0.9)]
        k[1, 1] = hand[3, 0] = value
        drawn.append(draw_people(image, [Pose(k, 0.9, "coco18", track_id=2, parts={"hand_left": hand})]))
    assert drawn[0].any() and all(np.array_equal(d, drawn[-1]) for d in drawn)
