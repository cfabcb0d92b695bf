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
