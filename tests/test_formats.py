"""The result formats: OpenPose JSON, COCO results, coco_image_id, write_json_atomic."""

import json

import cv2
import numpy as np

from pafpose.draw import poses as draw_poses
from pafpose.formats import coco_image_id, coco_results, openpose_json, write_json_atomic


def test_formats_and_drawing(est, images, tmp_path):
    img = cv2.imread(str(images / "p3_dance.png"))
    found = est.predict(img)
    doc = openpose_json(found)
    assert doc["version"] == 1.3 and len(doc["people"]) == 3
    for person in doc["people"]:
        assert person["person_id"] == [-1] and len(person["pose_keypoints_2d"]) == 18 * 3
        assert all(np.isfinite(person["pose_keypoints_2d"]))
    res = coco_results(found, 42)
    assert all(r["category_id"] == 1 and r["image_id"] == 42 and len(r["keypoints"]) == 51 for r in res)
    assert coco_image_id("000000000139.jpg") == 139 and coco_image_id("COCO_val2014_000000000357") == 357
    assert coco_image_id("p3_dance.png") is None
    out = write_json_atomic(doc, tmp_path / "a" / "x.json")
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert [p.name for p in out.parent.iterdir()] == ["x.json"]
    drawn = draw_poses(img, found)
    assert drawn.shape == img.shape and (drawn != img).any()
    assert (img == cv2.imread(str(images / "p3_dance.png"))).all()  # input untouched


def test_reading_openpose_json_with_values_that_are_not_numbers_names_the_field():
    import pytest

    from pafpose.formats import poses_from_openpose

    good = [10.0, 20.0, 0.9] * 18
    for person, field in (({"pose_keypoints_2d": ["a"] * 54}, "pose_keypoints_2d"),
                          ({"pose_keypoints_2d": [None] * 54}, "pose_keypoints_2d"),
                          ({"pose_keypoints_2d": [[1, 2]] * 54}, "pose_keypoints_2d"),
                          ({"pose_keypoints_2d": good, "score": "high"}, "score"),
                          ({"pose_keypoints_2d": good, "score": None}, "score"),
                          ({"pose_keypoints_2d": good, "score": [0.5]}, "score"),
                          ({"pose_keypoints_2d": good, "person_id": ["x"]}, "person_id"),
                          ({"pose_keypoints_2d": good, "person_id": [None]}, "person_id"),
                          ({"pose_keypoints_2d": good, "person_id": [1.5]}, "person_id"),
                          ({"pose_keypoints_2d": good, "hand_left_keypoints_2d": ["x"] * 63}, "hand_left_keypoints_2d"),
                          ("not a person", "person 0")):
        with pytest.raises(ValueError, match=field):
            poses_from_openpose({"people": [person]})
    one = poses_from_openpose({"people": [{"pose_keypoints_2d": good, "score": 0.7, "person_id": [3]}]})
    assert one[0].score == 0.7 and one[0].track_id == 3
