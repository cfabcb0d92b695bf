"""Smoke test of benchmarks/tracking.py: one short generated sequence, the ground truth with
noise as detections (no detector), every tracker scored."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "coco" / "val2017-dev"

pytest.importorskip("motmetrics")
pytest.importorskip("pycocotools")
if not (DEV / "person_keypoints.json").is_file():
    pytest.skip("no ../shared/coco/val2017-dev", allow_module_level=True)

sys.path.insert(0, str(REPO / "benchmarks"))
import tracking  # noqa: E402
from pafpose.pose import Pose  # noqa: E402
from pafpose.skeleton import COCO17  # noqa: E402


def test_generated_sequence_scores_every_tracker() -> None:
    coco, people, backgrounds = tracking.load_set(DEV / "person_keypoints.json", DEV / "images")
    rng = np.random.default_rng(3)
    truths, detections = [], []
    for image, truth in tracking.generate(coco, people, backgrounds, DEV / "images", rng, frames=30,
                                          n_people=(3, 4), size=(320, 240)):
        assert image.shape == (240, 320, 3)
        assert truth.keypoints.shape[1:] == (17, 3) and len(truth.ids) == len(truth.areas)
        poses = []
        for k in truth.keypoints:
            kp = np.concatenate([k[:, :2] + rng.normal(0, 1.0, (17, 2)), np.ones((17, 1))], axis=1)
            kp[k[:, 2] <= 0] = [np.nan, np.nan, 0.0]
            poses.append(Pose(kp, 0.9, COCO17))
        truths.append(truth)
        detections.append(poses)
    bound = tracking.score([truths], tracking.oracle([truths], [detections]))
    assert bound["idf1"] > 0.99
    scores = {name: tracking.score([truths], hyp) for name, hyp in tracking.run_trackers([detections]).items()}
    assert set(scores) == set(tracking.NAMES)
    assert scores["pafpose"]["idf1"] > 0.9 and scores["pafpose-raw"]["idf1"] > 0.9
    assert scores["none"]["idf1"] < 0.2
    stats = tracking.video_stats(tracking.run_trackers([detections])["pafpose"][0], fps=30.0)
    assert stats["ids"] >= len({int(i) for t in truths for i in t.ids})
