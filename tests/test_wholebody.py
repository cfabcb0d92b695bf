"""Whole body (issue 23): crop geometry with exact answers, and hands, faces and feet found on
real photos by MediaPipe's networks (../shared/weights/mediapipe) from the body's keypoints."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from pafpose.errors import PafposeError
from pafpose.estimator_config import EstimatorConfig, check_parts
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18, FOOT_KEYPOINTS
from pafpose.wholebody.crops import MIN_SIDE, Crop, around, body_points, face_crop, hand_crop, person_crop, upright

# ---------------------------------------------------------------------- geometry (synthetic, exact)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, math.pi / 2, 3.0])
def test_a_crop_maps_points_both_ways(angle):
    crop = Crop(103.5, 57.25, 80.0, angle)
    pts = np.array([[0.0, 0.0, 7.0], [224.0, 224.0, 1.0], [112.0, 30.5, 0.5]])
    back = crop.from_image(crop.to_image(pts, 224), 224)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    np.testing.assert_allclose(crop.to_image(np.array([[112.0, 112.0]]), 224)[0], [103.5, 57.25])  # the centre
    # the corners of the crop lie side/sqrt(2) from its centre
    corner = crop.to_image(np.array([[0.0, 0.0]]), 224)[0]
    assert math.hypot(corner[0] - 103.5, corner[1] - 57.25) == pytest.approx(80 / math.sqrt(2))


@pytest.mark.parametrize("angle", [0.0, 0.7, -2.0])
def test_cut_puts_an_image_point_where_from_image_says(angle):
    image = np.zeros((200, 300, 3), np.uint8)
    cv2.circle(image, (170, 90), 3, (255, 255, 255), -1)
    crop = Crop(150.0, 100.0, 120.0, angle)
    cut = crop.cut(image, 96)
    ys, xs = np.nonzero(cut[..., 0] > 128)
    found = np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # the network's convention: left edge 0
    np.testing.assert_allclose(found, crop.from_image(np.array([[170.0, 90.0]]), 96)[0], atol=0.35)


def test_upright_turns_a_direction_to_the_crop_up():
    for d in ([0, -1], [1, 0], [0, 1], [-3, 4]):
        crop = Crop(0.0, 0.0, 10.0, upright(np.array(d, float)))
        up = crop.to_image(np.array([[5.0, 0.0]]), 10)[0] - crop.to_image(np.array([[5.0, 5.0]]), 10)[0]
        np.testing.assert_allclose(up / np.hypot(*up), np.array(d) / np.hypot(*d), atol=1e-9)


def test_around_boxes_turned_points():
    pts = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 50.0], [10.0, 50.0], [np.nan, 0.0]])
    crop = around(pts, 0.0, 2.0, 0.1)
    assert (crop.cx, crop.side) == (20.0, 80.0)
    assert crop.cy == pytest.approx(30.0 - 0.1 * 40.0)  # moved a tenth of the box's side up
    assert around(np.full((3, 2), np.nan), 0.0, 1.5) is None


def _body(**points):
    return {k: np.array([*v, 0.9]) for k, v in points.items()}


def test_hand_crop_is_openposes_box_beyond_the_wrist():
    body = _body(left_shoulder=(100, 0), left_elbow=(100, 40), left_wrist=(100, 70))
    crop = hand_crop(body, "left")
    # a third of the forearm (30) beyond the wrist, 1.5 x max(30, 0.9 x 40) across, fingers down
    assert (crop.cx, crop.cy) == pytest.approx((100.0, 79.9))
    assert crop.side == pytest.approx(1.5 * 36.0)
    assert crop.angle == pytest.approx(math.pi)
    assert hand_crop(body, "right") is None  # no right arm
    assert hand_crop(_body(left_elbow=(0, 0), left_wrist=(0, 2)), "left") is None  # a 3-pixel box


def test_face_crop_centres_on_the_nose_and_levels_the_eyes():
    body = _body(nose=(50, 50), right_eye=(44, 46), left_eye=(56, 46), right_ear=(36, 50))
    crop = face_crop(body, scale=1.0)
    assert (crop.cx, crop.cy, crop.angle) == (50.0, 50.0, 0.0)
    assert crop.side == pytest.approx(2 * max(3 * 6, 1.5 * 14))
    assert face_crop(body).side == pytest.approx(0.8 * crop.side)  # what the mesh network wants
    tilted = face_crop(_body(nose=(50, 50), right_eye=(44, 44), left_eye=(54, 54)))
    assert tilted.angle == pytest.approx(math.pi / 4)
    # in profile the eyes nearly meet: their line says nothing, the crop stays upright
    profile = face_crop(_body(nose=(50, 50), right_eye=(57, 44), left_eye=(58, 42), left_ear=(70, 46)))
    assert profile.angle == 0.0
    assert face_crop(_body(nose=(5, 5))) is None  # no eye
    assert face_crop(_body(nose=(5, 5), left_eye=(5.5, 5))) is None  # a 1-pixel face


def test_person_crop_is_blazeposes():
    body = _body(left_hip=(110, 200), right_hip=(90, 200), left_shoulder=(110, 100), right_shoulder=(90, 100),
                 nose=(100, 60), left_ankle=(110, 380))
    crop = person_crop(body)
    assert (crop.cx, crop.cy, crop.angle) == (100.0, 200.0, 0.0)
    assert crop.side == pytest.approx(2.5 * math.hypot(10, 180))
    assert person_crop(_body(left_hip=(1, 1), left_shoulder=(1, 0))) is None


def test_body_points_keep_found_and_confident_keypoints():
    kps = np.full((18, 3), np.nan)
    kps[:, 2] = 0.0
    kps[0] = (5, 5, 0.9)
    kps[1] = (6, 6, 0.05)
    assert list(body_points(kps, COCO18.keypoints, 0.1)) == ["nose"]


def test_parts_option_is_checked():
    assert check_parts(["wholebody"]) == ("hands", "face", "feet")
    assert check_parts(("feet", "hand")) == ("hands", "feet")
    with pytest.raises(PafposeError, match="unknown part 'toes'"):
        EstimatorConfig(parts=("toes",))
    with pytest.raises(PafposeError, match="face detector"):
        EstimatorConfig(face_detector="opencv")
    assert EstimatorConfig(face_detector="detector").parts == ("face",)
    assert EstimatorConfig.from_dict(EstimatorConfig(parts=("feet",)).to_dict()).parts == ("feet",)


def test_feet_fill_body25_and_absent_ones_stay_absent():
    feet = np.tile([np.nan, np.nan, 0.0], (6, 1))
    feet[0] = (10, 20, 0.8)  # left big toe
    kps = np.tile([1.0, 1.0, 0.5], (18, 1))
    p = Pose(kps, 0.5, COCO18, parts={"feet": feet})
    b25 = p.convert("body25")
    k = b25.keypoints
    np.testing.assert_array_equal(k[b25.skeleton.index("left_big_toe")], [10, 20, 0.8])
    assert np.isnan(k[b25.skeleton.index("left_small_toe"), :2]).all()
    np.testing.assert_array_equal(b25.feet(), feet)
    doc = Poses([b25]).to_openpose()["people"][0]["pose_keypoints_2d"]
    small = b25.skeleton.index("left_small_toe")
    assert doc[3 * small: 3 * small + 3] == [0, 0, 0]  # OpenPose's "not found", with confidence 0
    assert FOOT_KEYPOINTS[0] == "left_big_toe"


# ---------------------------------------------------------------------- real photos
@pytest.fixture(scope="module")
def wb_est(estimator_cls):
    return estimator_cls(device="cpu", parts=("wholebody",))


def _missing(k):
    return np.isnan(k[:, :2]).all() and (k[:, 2] == 0).all()


def test_hands_faces_and_feet_on_a_real_photo(wb_est, images):
    people = wb_est.predict(str(images / "handsup1.jpg"))
    assert len(people) >= 3
    for p in people:
        assert set(p.parts) == {"face", "hand_left", "hand_right", "feet"}
        assert [len(p.parts[n]) for n in ("face", "hand_left", "hand_right", "feet")] == [70, 21, 21, 6]
        assert _missing(p.parts["feet"][[1, 4]])  # BlazePose has no small toe: never invented
    hands = [(p, side) for p in people for side in ("left", "right") if not _missing(p.parts[f"hand_{side}"])]
    assert len(hands) >= 3  # the three raised hands in view
    for p, side in hands:
        hand = p.parts[f"hand_{side}"]
        wrist = p.keypoints[p.skeleton.index(f"{side}_wrist")]
        forearm = np.hypot(*(wrist[:2] - p.keypoints[p.skeleton.index(f"{side}_elbow"), :2]))
        assert np.hypot(*(hand[0, :2] - wrist[:2])) < 0.5 * forearm  # the hand's wrist is the body's
        assert 0.5 <= hand[0, 2] <= 1
    raised = [p.parts[f"hand_{s}"] for p, s in hands if p.parts[f"hand_{s}"][0, 1] < 200]
    assert raised and all((h[[8, 12, 16], 1] < h[0, 1]).all() for h in raised)  # raised: fingertips above wrists
    faces = [p for p in people if not _missing(p.parts["face"])]
    assert len(faces) >= 2
    for p in faces:
        face = p.parts["face"]
        nose = p.keypoints[p.skeleton.index("nose")]
        x0, y0 = np.nanmin(face[:68, :2], axis=0)
        x1, y1 = np.nanmax(face[:68, :2], axis=0)
        assert x0 < nose[0] < x1 and y0 < nose[1] < y1  # the body's nose is inside the face
        right, left = face[68, :2], face[69, :2]
        # each pupil lies between its eye's corners (iBUG 36-39: the right eye, 42-45: the left)
        assert face[36, 0] < right[0] < face[39, 0] and face[42, 0] < left[0] < face[45, 0]


def test_people_without_arms_or_faces_get_empty_parts(wb_est):
    from pafpose.wholebody import WholeBody

    wb = wb_est.wholebody
    assert isinstance(wb, WholeBody)
    image = np.zeros((40, 60, 3), np.uint8)
    kps = np.tile([np.nan, np.nan, 0.0], (18, 1))
    kps[COCO18.index("left_wrist")] = (-500, -500, 0.9)  # a wrist far outside the image, no elbow
    kps[COCO18.index("nose")] = (30, 20, 0.9)
    kps[COCO18.index("left_eye")] = (30.4, 19.8, 0.9)  # a 1-pixel face
    kps[COCO18.index("right_elbow")] = (-300, -300, 0.9)  # a right arm whose hand crop lies outside the image
    kps[COCO18.index("right_wrist")] = (-200, -200, 0.9)
    kps[COCO18.index("left_hip")] = (5, 30, 0.9)  # hips on one point, no shoulder: no person crop
    kps[COCO18.index("right_hip")] = (5, 30, 0.9)
    out = wb(image, Poses([Pose(kps, 0.5, COCO18)]))
    assert len(out) == 1 and all(_missing(k) for k in out[0].parts.values())
    assert len(wb(np.zeros((1, 1, 3), np.uint8), Poses([Pose(kps, 0.5, COCO18)]))) == 1  # a 1-pixel image
    assert len(wb(image, Poses())) == 0


def test_a_close_up_face_with_the_face_detector(estimator_cls, shared):
    d = json.loads((shared / "wholebody/faces_300w_helen/face_landmarks_68.json").read_text())
    ann, info = d["annotations"][0], {i["id"]: i for i in d["images"]}
    path = shared / "wholebody/faces_300w_helen/images" / info[ann["image_id"]]["file_name"]
    truth = np.array(ann["keypoints"]).reshape(68, 3)[:, :2]
    est = estimator_cls(device="cpu", parts=("face",), face_detector="detector")
    people = est.predict(str(path))
    faces = [p.parts["face"] for p in people if not _missing(p.parts["face"])]
    assert faces
    norm = np.hypot(*(truth[45] - truth[36]))
    nme = min(np.mean(np.hypot(*(f[:68, :2] - truth).T)) / norm for f in faces)
    assert nme < 0.12


def test_small_hands_and_people_get_no_crop():
    """Crops under what the networks can see are not run: hands under ~25 pixels, tiny people's feet."""
    assert 5 <= MIN_SIDE <= 25
    small = _body(left_shoulder=(100, 0), left_elbow=(100, 20), left_wrist=(100, 40))  # a 30-pixel hand box
    assert hand_crop(small, "left") is None
    tiny = _body(left_hip=(11, 20), right_hip=(9, 20), left_shoulder=(11, 10), right_shoulder=(9, 10),
                 left_ankle=(11, 38))
    assert person_crop(tiny) is None


# ---------------------------------------------------------------------- hands without arms: the palm detector
def test_palm_anchors_are_mediapipes_ssd_grid():
    from pafpose.wholebody.face import FaceDetector
    from pafpose.wholebody.hands import PalmDetector
    from pafpose.wholebody.nets import ssd_anchors

    a = ssd_anchors(PalmDetector.LAYERS)
    assert a.shape == (2016, 2) and len(ssd_anchors(FaceDetector.LAYERS)) == 896
    # strides 8 (24 x 24 cells, 2 anchors each), then three layers of stride 16 merged (12 x 12, 6 each)
    np.testing.assert_allclose(a[:2], [[0.5 / 24, 0.5 / 24]] * 2)
    np.testing.assert_allclose(a[2], [1.5 / 24, 0.5 / 24])  # row by row: x moves first
    np.testing.assert_allclose(a[48], [0.5 / 24, 1.5 / 24])
    np.testing.assert_allclose(a[1151], [23.5 / 24, 23.5 / 24])
    np.testing.assert_allclose(a[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6)
    np.testing.assert_allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_decode_ssd_scores_boxes_keypoints_and_suppression():
    from pafpose.wholebody.hands import PalmDetector
    from pafpose.wholebody.nets import decode_ssd, ssd_anchors

    anchors = ssd_anchors(PalmDetector.LAYERS)
    raw, logits = np.zeros((2016, 18)), np.full(2016, -200.0)  # beyond MediaPipe's clip at -100: score 0
    k = 1152 + 6 * (12 * 3 + 5)  # the 12 x 12 grid's row 3, column 5: anchor (5.5/12, 3.5/12) -> (88, 56) px
    raw[k, :4] = (2, -4, 40, 30)
    raw[k, 4:6], raw[k, 8:10] = (0, 10), (0, -10)  # keypoints 0 and 2
    logits[k] = 3.0
    raw[k + 1, :4] = (3, -4, 40, 30)  # the same palm again, less sure: suppressed (IoU 0.95)
    logits[k + 1] = 2.0
    raw[5, :4] = (0, 0, 10, 10)  # another palm, far away, barely sure
    logits[5] = 0.1
    logits[7] = -0.1  # under 0.5
    found = decode_ssd(raw, logits, anchors, 192, 0.5, 0.3)
    assert [round(d.score, 4) for d in found] == [round(1 / (1 + math.exp(-3)), 4), round(1 / (1 + math.exp(-0.1)), 4)]
    np.testing.assert_allclose(found[0].box, [90, 52, 40, 30])
    np.testing.assert_allclose(found[0].keypoints[[0, 2]], [[88, 66], [88, 46]])
    assert found[0].keypoints.shape == (7, 2)
    np.testing.assert_allclose(found[1].box, [2.5 * 192 / 24, 0.5 * 192 / 24, 10, 10])


def test_palm_crop_is_mediapipes_hand_crop():
    from pafpose.wholebody.hands import palm_crop
    from pafpose.wholebody.nets import Detection

    kps = np.zeros((7, 2))
    kps[0], kps[2] = (100, 220), (100, 180)  # wrist below the middle finger's base: fingers up
    crop = palm_crop(Detection(np.array([100.0, 200, 40, 50]), kps, 0.9))
    assert (crop.cx, crop.cy, crop.side, crop.angle) == pytest.approx((100, 175, 130, 0))  # 0.5 box up, 2.6 x 50
    kps[0], kps[2] = (80, 200), (120, 200)  # fingers pointing to the image's right: up is +x
    crop = palm_crop(Detection(np.array([100.0, 200, 40, 50]), kps, 0.9))
    assert (crop.cx, crop.cy, crop.side, crop.angle) == pytest.approx((125, 200, 130, math.pi / 2))
    assert palm_crop(Detection(np.array([5.0, 5, 3, 3]), kps, 0.9)) is None  # 8 pixels: too small


def test_hand_detector_option_is_checked():
    import argparse

    from pafpose.cli.options import add_model_arguments, config_from_args
    from pafpose.wholebody import WholeBody

    with pytest.raises(PafposeError, match="unknown hand detector 'opencv': use body or detector"):
        EstimatorConfig(hand_detector="opencv")
    assert EstimatorConfig(hand_detector="detector").parts == ("hands",)  # a hand detector is asked for hands
    assert EstimatorConfig(parts=("face",), hand_detector="detector").parts == ("hands", "face")
    config = EstimatorConfig(hand_detector="detector")
    assert EstimatorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(PafposeError, match="ask for the hands"):
        WholeBody(parts=("face",), hand_detector="detector")
    with pytest.raises(PafposeError, match="unknown hand detector"):
        WholeBody(hand_detector="2")
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    for value, named in (("1", "detector"), ("detector", "detector"), ("0", "body")):
        assert config_from_args(parser.parse_args(["--hand_detector", value])).hand_detector == named
    assert config_from_args(parser.parse_args(["--hand-detector", "1"])).parts == ("hands",)


@pytest.mark.parametrize("value, says", [("2", "rectangles given by the user"), ("3", "hand tracking")])
def test_openposes_other_hand_detectors_are_one_line_errors(capsys, value, says):
    from pafpose.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["predict", "photo.jpg", "--hand", "--hand_detector", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert says in err and "1/detector" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def palms(estimator_cls):  # the weights of ../shared
    from pafpose.wholebody.hands import PalmDetector

    return PalmDetector()


def test_palms_are_found_where_the_hands_are(palms, estimator_cls, images):
    # hand1.jpg: one raised right hand, its palm about (290, 265) in the 1200 x 886 photo
    (palm,) = palms(cv2.imread(str(images / "hand1.jpg")))
    assert palm.score > 0.8 and 250 < palm.box[0] < 330 and 220 < palm.box[1] < 310 and 120 < palm.box[2] < 200
    wrist, middle = palm.keypoints[0], palm.keypoints[2]
    assert middle[1] < wrist[1] - 0.5 * palm.box[3]  # fingers up: the middle finger's base above the wrist
    # hand2.jpg: both hands raised beside the head; the body network finds the left wrist only
    image = cv2.imread(str(images / "hand2.jpg"))
    found = palms(image)
    assert len(found) == 2
    (body,) = estimator_cls(device="cpu").predict(image)
    left_wrist = body.keypoints[body.skeleton.index("left_wrist"), :2]
    nose = body.keypoints[body.skeleton.index("nose"), :2]
    near = [np.hypot(*(p.keypoints[0] - left_wrist)) < p.box[3] for p in found]
    assert sorted(near) == [False, True]
    other = found[near.index(False)]
    assert other.box[0] < nose[0] - 100 and other.box[1] < nose[1]  # the right hand: image left, raised


def test_the_hand_detector_finds_hands_the_arms_do_not_give(estimator_cls, images, palms):
    est = estimator_cls(device="cpu", parts=("hands",), hand_detector="detector")
    image = cv2.imread(str(images / "hand1.jpg"))
    (palm,) = palms(image)
    # the right elbow scores under the body threshold: no hand box from the arm, no hand
    (plain,) = estimator_cls(device="cpu", parts=("hands",)).predict(image)
    assert _missing(plain.parts["hand_right"]) and _missing(plain.parts["hand_left"])
    (person,) = est.predict(image)
    hand = person.parts["hand_right"]  # the person's wrist is beside the palm: their right hand
    assert np.isfinite(hand).all() and hand.shape == (21, 3) and hand[0, 2] >= 0.5
    assert np.hypot(*(hand[0, :2] - palm.keypoints[0])) < 0.25 * palm.box[3]  # the hand's wrist is the palm's
    assert (hand[[8, 12, 16], 1] < hand[0, 1]).all()  # raised: fingertips above the wrist
    assert _missing(person.parts["hand_left"])
    # hand2.jpg: the right arm has an elbow but no wrist; its hand goes to it, the left one stays the body's
    image = cv2.imread(str(images / "hand2.jpg"))
    (before,) = estimator_cls(device="cpu", parts=("hands",)).predict(image)
    (after,) = est.predict(image)
    assert _missing(before.parts["hand_right"]) and not _missing(after.parts["hand_right"])
    np.testing.assert_allclose(after.parts["hand_left"], before.parts["hand_left"])


def test_a_hand_no_body_takes_is_a_person_of_its_own(estimator_cls, images):  # estimator_cls: ../shared's weights
    from pafpose.wholebody import WholeBody

    wb = WholeBody(parts=("hands", "face"), hand_detector="detector")
    nobody = Poses()
    nobody.skeleton = "coco18"
    out = wb(cv2.imread(str(images / "hand1.jpg")), nobody)
    (person,) = out
    assert np.isnan(person.keypoints[:, :2]).all() and set(person.parts) == {"face", "hand_left", "hand_right"}
    # the raised hand is a right hand: the network's handedness (MediaPipe's, read unmirrored) says so
    assert not _missing(person.parts["hand_right"]) and _missing(person.parts["hand_left"])
    assert _missing(person.parts["face"]) and person.score == pytest.approx(person.parts["hand_right"][0, 2])


def test_detectors_find_nothing_in_an_empty_image(estimator_cls):  # estimator_cls: ../shared's weights
    from pafpose.wholebody import WholeBody
    from pafpose.wholebody.face import FaceDetector
    from pafpose.wholebody.hands import PalmDetector

    black = np.zeros((120, 160, 3), np.uint8)
    assert PalmDetector()(black) == [] and FaceDetector()(black) == []
    nobody = Poses()
    nobody.skeleton = "coco18"
    assert len(WholeBody(face_detector="detector", hand_detector="detector")(black, nobody)) == 0
