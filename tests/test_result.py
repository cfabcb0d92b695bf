"""The result object (`Poses`): arrays over the people, what the image was, the standard
shapes, and the one place that maps people back to the image as given (a reduced decode, a
preprocessing hook), on generated people and on the real model's."""

import json

import cv2
import numpy as np
import pytest

from pafpose.coords import Geometry
from pafpose.errors import PafposeError
from pafpose.fields import Fields
from pafpose.formats import poses_from_openpose
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18


def person(x0, y0, score=0.9, track_id=None, parts=None):
    k = np.c_[x0 + np.arange(18) * 3.0, y0 + np.arange(18) * 5.0, np.linspace(0.2, 1.0, 18)]
    k[4] = (np.nan, np.nan, 0.0)  # a wrist not found
    return Pose(k, score, COCO18, track_id, parts=parts or {})


def result(*people, size=(640, 480)):
    out = Poses(people)
    out.image_size, out.source, out.geometry = size, "photo.jpg", Geometry(0.5, 0.5, 8)
    out.skeleton = COCO18
    return out


def test_arrays_over_the_people():
    r = result(person(10, 20, 0.9, 3), person(200, 100, 0.5))
    assert r.keypoints.shape == (2, 18, 3) and r.xy.shape == (2, 18, 2)
    assert np.array_equal(r.keypoints[0], r[0].keypoints, equal_nan=True)
    assert r.scores.tolist() == [0.9, 0.5] and r.track_ids.tolist() == [3, -1]
    assert np.allclose(r.boxes[1], [200, 100, 251, 185])
    empty = result()
    assert empty.keypoints.shape == (0, 18, 3) and empty.scores.shape == (0,) and empty.skeleton is COCO18
    assert Poses().keypoints.shape == (0, 0, 3)  # nothing known: no layout


def test_what_the_image_was_follows_every_conversion():
    r = result(person(10, 20, 0.9, 3), person(200, 100, 0.5))
    for other in (r.convert("body25"), r.top(1), r.thresholded(0.5), r.derive(r[:1])):
        assert (other.image_size, other.source, other.geometry) == (r.image_size, r.source, r.geometry)
    assert r.convert("body25").keypoints.shape == (2, 25, 3) and r.convert("body25").skeleton.name == "body25"
    low = r.thresholded(0.5)
    assert np.isnan(low.keypoints[:, r[0].keypoints[:, 2] < 0.5, 0]).all()
    assert np.isfinite(low.keypoints[0, -1]).all()
    assert r.top(1).scores.tolist() == [0.9]
    first = r[:1]  # a slice is a result of the same image
    assert isinstance(first, Poses) and first.image_size == r.image_size and first.scores.tolist() == [0.9]
    assert isinstance(r[0], Pose) and r[-1] is r[1]
    with pytest.raises(PafposeError, match="number of people"):
        r.top(0)


def test_resizing_moves_people_fields_and_geometry_together():
    r = result(person(10, 20))
    r.fields = Fields(np.zeros((19, 30, 40), np.float32), np.zeros((38, 30, 40), np.float32), r.geometry)
    half = r.scaled(0.5, 0.5)
    assert half.image_size == (320, 240) and half.geometry == Geometry(1.0, 1.0, 8)
    assert half.fields.geometry == half.geometry
    assert np.allclose(half.keypoints[0, 0, :2], [(10 + 0.5) * 0.5 - 0.5, (20 + 0.5) * 0.5 - 0.5])
    # the input point of a keypoint is the same whichever image it is given in
    assert np.allclose(r.geometry.image_to_input(r.xy[0]), half.geometry.image_to_input(half.xy[0]), equal_nan=True)
    thumb = np.zeros((240, 320, 3), np.uint8)
    assert np.array_equal(r.on(thumb).keypoints, half.keypoints, equal_nan=True)
    assert r.on(np.zeros((480, 640, 3), np.uint8)) is r
    # a drawing at another size is the drawing's concern: the people drawn where they are in it
    from pafpose.draw import poses as draw_poses

    assert np.array_equal(r.plot(thumb), draw_poses(thumb, half))
    assert r.moved(lambda k: k).fields is None  # points moved any way: the fields no longer fit


def test_the_standard_shapes():
    face = np.c_[np.arange(70.0), np.arange(70.0), np.ones(70)]
    face[5] = (np.nan, np.nan, 0.0)
    r = result(person(10, 20, 0.9, 3, parts={"face": face}), person(200, 100, 0.5))
    doc = r.to_openpose()
    assert doc["version"] == 1.3 and [p["person_id"] for p in doc["people"]] == [[3], [-1]]
    assert len(doc["people"][0]["face_keypoints_2d"]) == 210 and doc["people"][1]["face_keypoints_2d"] == []
    assert doc["people"][0]["face_keypoints_2d"][15:18] == [0, 0, 0]  # missing: OpenPose's 0, 0, 0
    assert doc["people"][0]["hand_left_keypoints_2d"] == [] and doc["people"][0]["pose_keypoints_3d"] == []
    back = poses_from_openpose(json.loads(json.dumps(doc)))
    assert np.allclose(back[0].parts["face"], face, equal_nan=True) and back[1].parts == {}
    assert back[0].track_id == 3
    d = r.to_dict()
    assert (d["width"], d["height"], d["source"], d["skeleton"]) == (640, 480, "photo.jpg", "coco18")
    one = d["people"][0]
    assert set(one) == {"track_id", "score", "keypoints", "parts"} and one["track_id"] == 3
    assert one["keypoints"][4] is None and one["keypoints"][0] == [10.0, 20.0, 0.2]
    assert len(one["parts"]["face"]) == 70 and one["parts"]["face"][5] is None
    assert "parts" not in d["people"][1] and json.loads(r.to_json()) == d
    coco = r.to_coco(7)
    assert len(coco) == 2 and coco[0]["image_id"] == 7 and len(coco[0]["keypoints"]) == 51
    pt = r.to_posetrack(4, first_id=10)
    assert [a["id"] for a in pt] == [10, 11] and pt[0]["track_id"] == 3 and pt[1]["track_id"] == -1
    # the parts move with the person
    moved = r.scaled(2.0, 2.0)
    assert np.allclose(moved[0].parts["face"][:, :2], (face[:, :2] + 0.5) * 2 - 0.5, equal_nan=True)


# ---------------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def photo(images):
    return images / "p3_dance.png"


def test_the_estimator_says_what_the_image_was(est, photo):
    from pafpose.images import open_image

    by_path = est.predict(photo)
    image = cv2.imread(str(photo))
    assert by_path.image_size == (image.shape[1], image.shape[0]) and by_path.source == str(photo)
    assert by_path.geometry == est.geometry(image.shape) and by_path.skeleton is est.skeleton
    assert by_path.keypoints.shape == (3, 18, 3)
    by_file = est.predict(open_image(photo))
    by_array = est.predict(image)
    assert by_array.source is None and by_file.source == str(photo)
    for other in (by_file, by_array):  # the same people (OpenVINO's first inference on an AVX2-only CPU differs from
        # the later ones in the last bits: 4e-5 px, so not bit for bit)
        assert np.array_equal(np.isnan(other.keypoints), np.isnan(by_path.keypoints))
        assert np.allclose(other.keypoints, by_path.keypoints, rtol=0.0, atol=1e-3, equal_nan=True)
    blank = est.predict(np.zeros((64, 64, 3), np.uint8))
    assert len(blank) == 0 and blank.keypoints.shape == (0, 18, 3)


def test_a_reduced_decode_comes_back_in_the_files_pixels(est, photo, tmp_path):
    from pafpose.images import open_image

    big = cv2.resize(cv2.imread(str(photo)), (2560, 1440), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    reduced = open_image(path, max_pixels=1_000_000)  # decoded at 1/2 or less
    assert reduced.image.shape[1] < 2560 and (reduced.width, reduced.height) == (2560, 1440)
    small, whole = est.predict(reduced), est.predict(open_image(path))
    assert small.image_size == whole.image_size == (2560, 1440)
    assert len(small) == len(whole) == 3
    sx = reduced.image.shape[1] / 2560
    expected = (small.geometry.fx, small.geometry.fy)
    assert np.allclose(expected, (est.geometry(reduced.image.shape).fx * sx,) * 2)
    order = [int(np.nanargmin(np.abs(whole.xy[:, 1, 0] - x))) for x in small.xy[:, 1, 0]]  # by neck
    found = np.isfinite(small.xy) & np.isfinite(whole.xy[order])
    assert np.nanmedian(np.abs(small.xy - whole.xy[order])[found]) < 6  # pixels of the 2560-wide file


def test_a_preprocessing_hook_reports_people_in_the_images_pixels(est, photo):
    image = cv2.imread(str(photo))
    h, w = image.shape[:2]

    def half(im):
        return cv2.resize(im, (im.shape[1] // 2, im.shape[0] // 2), interpolation=cv2.INTER_AREA)

    hooked = est.with_options(prepare=half)
    assert est.prepare is None and hooked.with_options().prepare is half
    people = hooked.predict_batch([image], keep_fields=True)[0]
    direct = est.predict(half(image))
    back = direct.moved(Geometry((w // 2) / w, (h // 2) / h).input_to_image)
    assert np.array_equal(people.keypoints, back.keypoints, equal_nan=True)
    assert people.image_size == (w, h)
    g = est.geometry(half(image).shape)
    assert np.allclose((people.geometry.fx, people.geometry.fy), (g.fx * (w // 2) / w, g.fy * (h // 2) / h))
    assert people.fields.geometry == people.geometry
    frames = list(hooked.pipeline([image, image], track=False))
    assert np.array_equal(frames[1][1].keypoints, people.keypoints, equal_nan=True)
    assert frames[0][0].shape == image.shape  # the frame as given comes back, not the prepared one
    with pytest.raises(PafposeError, match="prepare"):
        est.with_options(prepare=3)
    with pytest.raises(PafposeError, match="output_shape"):  # a hook that can't say its size
        hooked.geometry(image.shape)
    from pafpose.controlnet import detector

    det = detector(est, 256)  # ControlNet's hook says its size: geometry and batching keys answer for it
    found = det.predict(image)
    assert det.geometry(image.shape) == found.geometry and found.image_size == (w, h)
    assert det.input_sizes(image.shape) == est.input_sizes(det.prepare(image).shape)


def test_results_never_share_arrays():
    face = np.ones((70, 3))
    p = person(0, 0, parts={"face": face})
    q = p.replace()
    q.parts["face"][0, 0] = 5.0
    assert p.parts["face"][0, 0] == 1.0
    low = result(person(0, 0, parts={"face": np.c_[np.ones((4, 2)), [0.1, 0.9, 0.1, 0.9]]})).thresholded(0.5)
    assert np.isnan(low[0].parts["face"][[0, 2], 0]).all() and np.isfinite(low[0].parts["face"][[1, 3], 0]).all()
