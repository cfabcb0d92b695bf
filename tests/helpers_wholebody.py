"""COCO-WholeBody cases for tests/test_wholebody_coco.py and their figures from xtcocotools, the
official evaluation, recorded in tests/xtcocotools_figures.json (it does not run here: its wheels
are built for numpy 1). Re-record them with a venv where it does, built from source:

    python -m venv /tmp/xtvenv && /tmp/xtvenv/bin/pip install numpy cython setuptools
    /tmp/xtvenv/bin/pip install --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
    PYTHONPATH=src .venv/bin/python tests/helpers_wholebody.py /tmp/cases.json   # needs ../shared
    /tmp/xtvenv/bin/python tests/xtcocotools_oracle.py /tmp/cases.json > tests/xtcocotools_figures.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO17

PARTS = {"feet": "foot_kpts", "face": "face_kpts", "hand_left": "lefthand_kpts", "hand_right": "righthand_kpts"}
SIZES = {"keypoints": 17, "foot_kpts": 6, "face_kpts": 68, "lefthand_kpts": 21, "righthand_kpts": 21}


def gt_path(shared: Path) -> Path:
    return shared / "wholebody" / "coco_wholebody" / "coco_wholebody_val.json"


def _points(flat: list[float]) -> np.ndarray:
    """COCO ``[x, y, v]`` as pafpose's ``(n, 3)``: unlabelled points missing."""
    k = np.array(flat, dtype=np.float64).reshape(-1, 3)
    out = np.c_[k[:, :2], np.ones(len(k))]
    out[k[:, 2] <= 0] = (np.nan, np.nan, 0.0)
    return out


def people_from_gt(gt: dict[str, Any], drop: tuple[str, ...] = (), shift: float = 0.0) -> dict[int, Poses]:
    """Each image's annotated people as predictions: exact, or every point moved ``shift`` pixels
    (in a direction turning by the golden angle from point to point, so no two parts move alike);
    the parts named in ``drop`` left out."""
    def moved(k: np.ndarray, first: int) -> np.ndarray:
        turn = 2.399963 * (np.arange(len(k)) + first)
        return k + shift * np.c_[np.cos(turn), np.sin(turn), np.zeros(len(k))]

    out: dict[int, Poses] = {img["id"]: Poses() for img in gt["images"]}
    for n, ann in enumerate(gt["annotations"]):
        parts = {name: moved(_points(ann[key]), 17 + 100 * i) for i, (name, key) in enumerate(PARTS.items())
                 if name not in drop}
        if "face" in parts:  # pafpose's face has OpenPose's two pupils after the 68 points
            parts["face"] = np.r_[parts["face"], [[np.nan, np.nan, 0.0]] * 2]
        out[ann["image_id"]].append(Pose(moved(_points(ann["keypoints"]), 0), 1.0 - 0.01 * n, COCO17, parts=parts))
    return out


def results_of(people: dict[int, Poses]) -> list[dict[str, Any]]:
    """COCO-WholeBody results as a file holds them (JSON round trip)."""
    return json.loads(json.dumps([r for image_id, p in people.items() for r in p.to_coco_wholebody(image_id)]))


def synthetic_gt() -> dict[str, Any]:
    """Three images, six people with faces, hands and feet (some parts and points unlabelled, one
    crowd, an id 0), sizes from small to large: what the one real image lacks (it has no face)."""
    images, anns = [], []
    for i in range(3):
        images.append({"id": 7 + i, "file_name": f"{7 + i}.jpg", "width": 640, "height": 480})
    for n in range(6):
        size = (40, 90, 160, 250, 120, 60)[n]
        x0, y0 = 30.0 + 97 * n % 400, 20.0 + 53 * n % 200
        ann: dict[str, Any] = {"id": n, "image_id": 7 + n % 3, "category_id": 1, "iscrowd": int(n == 4),
                               "bbox": [x0, y0, 0.6 * size, float(size)], "area": 0.35 * size * size}
        for j, (key, count) in enumerate(SIZES.items()):
            i = np.arange(count)
            k = np.c_[x0 + 0.6 * size * (0.5 + 0.45 * np.sin(1.3 * i + j + n)),
                      y0 + size * (0.5 + 0.45 * np.cos(0.7 * i + 2 * j + n)), 1 + (i + n) % 2]
            k[(i * 7 + n + j) % 9 == 0] = 0  # unlabelled points
            if (n + j) % 5 == 4:
                k[:] = 0  # a part not labelled
            ann[key] = [round(float(v), 2) for v in k.ravel()]
        ann["num_keypoints"] = int(sum(v > 0 for v in ann["keypoints"][2::3]))
        anns.append(ann)
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def cases(shared: Path | None) -> dict[str, dict[str, Any]]:
    """``{name: {"gt": COCO-WholeBody dict, "results": [...]}}``; the real image's when ``shared``."""
    out = {}
    synthetic = synthetic_gt()
    for shift in (0.0, 2.0, 5.0):
        out[f"synthetic_shift{shift:g}"] = {"gt": synthetic, "results": results_of(people_from_gt(synthetic,
                                                                                                  shift=shift))}
    mixed = results_of(people_from_gt(synthetic, drop=("face",), shift=3.0))
    for n, r in enumerate(mixed):  # part scores rank the parts' results, where given
        r["lefthand_score"] = round(0.5 + 0.4 * math.sin(n), 4)
    mixed.append({**mixed[0], "image_id": 8, "score": 0.95})  # a confident false positive
    out["synthetic_no_face_scores_ghost"] = {"gt": synthetic, "results": mixed}
    if shared is not None:
        real = json.loads(gt_path(shared).read_text())
        for shift in (0.0, 1.0, 3.0):
            out[f"real_shift{shift:g}"] = {"gt": real, "results": results_of(people_from_gt(real, shift=shift))}
        out["real_no_left_hand"] = {"gt": real, "results": results_of(people_from_gt(real, drop=("hand_left",)))}
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import shared_dir

    Path(sys.argv[1]).write_text(json.dumps(cases(shared_dir())))
