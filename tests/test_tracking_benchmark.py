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
    truths, detections, looks = [], [], []
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
        looks.append(tracking.looks_of(image, poses))
    assert any(look is not None and np.isfinite(look).any() for look in looks)  # limbs read from the frames
    bound = tracking.score([truths], tracking.oracle([truths], [detections]))
    assert bound["idf1"] > 0.99
    tracked = tracking.run_trackers([detections], looks=[looks])
    scores = {name: tracking.score([truths], hyp) for name, hyp in tracked.items()}
    assert set(scores) == set(tracking.NAMES)
    assert scores["pafpose"]["idf1"] > 0.9 and scores["pafpose-raw"]["idf1"] > 0.9
    assert scores["pafpose-offline"]["idf1"] > 0.9 and scores["pafpose-raw-keypoints"]["idf1"] > 0.9
    assert scores["none"]["idf1"] < 0.2
    stats = tracking.video_stats(tracking.run_trackers([detections])["pafpose"][0], fps=30.0)
    assert stats["ids"] >= len({int(i) for t in truths for i in t.ids})


def test_generated_light_drifts_on_the_people_and_leaves_the_sequence_as_it_was() -> None:
    """``light``: each person's pixels brighten and darken over the sequence; the people, their
    paths, the frames dropped and the background are those of the same seed without it."""
    coco, people, backgrounds = tracking.load_set(DEV / "person_keypoints.json", DEV / "images")

    def frames(light):
        return list(tracking.generate(coco, people, backgrounds, DEV / "images", np.random.default_rng(5),
                                      frames=40, n_people=(2, 2), size=(320, 240), light=light))

    plain, lit = frames(0.0), frames(0.4)
    for (_, truth), (_, lit_truth) in zip(plain, lit, strict=True):
        assert np.array_equal(truth.ids, lit_truth.ids) and np.array_equal(truth.keypoints, lit_truth.keypoints)
    moved = np.stack([np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0
                      for (a, _), (b, _) in zip(plain, lit, strict=True)])
    assert moved.any(axis=(1, 2)).mean() > 0.8  # most frames: the people's pixels changed
    assert 0 < moved.mean() < 0.5  # ... and only theirs (the background is as it was)
    for (image, _), (again, _) in zip(plain, frames(0.0), strict=True):
        assert np.array_equal(image, again)


def test_switch_causes_name_a_swap_and_the_swap_back() -> None:
    """Two people swap ids (two takeovers) and swap back (two switches to each one's own
    earlier id: recovered, though each id covered the other person in between); a third gets a
    new id after a gap (a re-entry) and a fourth in the next frame (a fragment)."""
    box = np.stack([np.stack([np.linspace(0, 60, 17), np.linspace(0, 160, 17), np.full(17, 2.0)], axis=1)])

    def truth(*xs):
        k = np.concatenate([box + np.array([x, 0.0, 0.0]) for x in xs])
        return tracking.Truth(np.arange(len(xs)), k, np.full(len(xs), 60 * 160.0), np.zeros(len(xs), bool))

    def poses(ids, xs):
        return [Pose(np.concatenate([box[0, :, :2] + [x, 0], np.ones((17, 1))], axis=1), 0.9, COCO17, i)
                for i, x in zip(ids, xs, strict=True)]

    xs = (0, 200, 400, 600)
    truths = [truth(*xs)] * 10
    ids = [[0, 1, 2, 3]] * 3 + [[1, 0, 2, 3]] * 3 + [[0, 1, 2, 3]] * 2 + [[0, 1, 5, 6]] * 2
    hyps = [poses(i, xs) for i in ids]
    hyps[7] = [p for p in hyps[7] if p.track_id != 2]  # the third unmatched for a frame before their new id
    assert tracking.switch_causes([truths], [hyps]) == {"takeover": 2, "fragment": 1, "re-entry": 1,
                                                       "recovered": 2, "brief takeover": 2, "shared takeover": 0}


def test_switch_causes_name_a_takeover_on_a_pose_two_people_share() -> None:
    """Two people 20 px apart swap ids. A pose found 5 px off the first, towards the second,
    fits both (OKS 0.87 and 0.46, over half): its takeover is a shared one; the second's own
    pose (OKS 1 and 0.32) and a pose at the first's own place (1 and 0.32) are not. Whatever
    the people's ids and the order the poses are listed in."""
    box = np.stack([np.linspace(0, 60, 17), np.linspace(0, 160, 17), np.full(17, 2.0)], axis=1)

    def run(found_at, reverse):
        people = np.stack([box, box + np.array([20.0, 0.0, 0.0])])
        truths = [tracking.Truth(np.array([4, 2]), people, np.full(2, 60 * 160.0), np.zeros(2, bool))] * 4
        hyps = []
        for ids in ([0, 1], [0, 1], [1, 0], [1, 0]):
            poses = [Pose(np.concatenate([box[:, :2] + [x, 0], np.ones((17, 1))], axis=1), 0.9, COCO17, i)
                     for i, x in zip(ids, (found_at, 20.0), strict=True)]
            hyps.append(poses[::-1] if reverse else poses)
        return tracking.switch_causes([truths], [hyps])

    for reverse in (False, True):
        between, own = run(5.0, reverse), run(0.0, reverse)
        assert between["takeover"] == own["takeover"] == 2
        assert between["shared takeover"] == 1 and own["shared takeover"] == 0


def test_perturbed_detections_move_each_keypoint_by_the_noise_asked_and_keep_the_rest() -> None:
    """``--perturb``: every found keypoint moved by Gaussian noise of the pixels asked (its
    RMS per coordinate within a few percent over 17,000 points), a missing one still missing,
    the scores and the detections given untouched, the same noise for the same seed."""
    rng = np.random.default_rng(0)
    k = np.concatenate([rng.uniform(0, 500, (17, 2)), np.full((17, 1), 0.8)], axis=1)
    k[3] = (np.nan, np.nan, 0.0)
    given = [[[Pose(k.copy(), 0.9, COCO17, 7) for _ in range(10)] for _ in range(100)]]
    moved = tracking.perturbed(given, 2.0, np.random.default_rng(5))
    again = tracking.perturbed(given, 2.0, np.random.default_rng(5))
    assert np.array_equal(again[0][3][4].keypoints, moved[0][3][4].keypoints, equal_nan=True)
    shift = np.stack([p.keypoints for f in moved[0] for p in f]) - k
    assert np.isnan(shift[:, 3, :2]).all() and np.isfinite(np.delete(shift, 3, axis=1)).all()
    assert np.sqrt(np.nanmean(shift[..., :2] ** 2)) == pytest.approx(2.0, rel=0.03)
    assert (shift[..., 2] == 0).all() and all(p.track_id == 7 and p.score == 0.9 for f in moved[0] for p in f)
    assert all(np.array_equal(p.keypoints, k, equal_nan=True) for f in given[0] for p in f)


def test_posetrack_output_of_pafpose_predict_scores_against_posetrack_ground_truth(env, tmp_path) -> None:
    """A generated sequence written as frames + a PoseTrack ground-truth file; `pafpose predict
    --json posetrack` on the frames; its file read back and scored by motmetrics."""
    import subprocess

    import cv2

    coco, people, backgrounds = tracking.load_set(DEV / "person_keypoints.json", DEV / "images")
    rng = np.random.default_rng(7)
    frames_dir = tmp_path / "seq"
    frames_dir.mkdir()
    truths, names = [], []
    for f, (image, truth) in enumerate(tracking.generate(coco, people, backgrounds, DEV / "images", rng, frames=16,
                                                         n_people=(2, 2), size=(480, 360), drop=0.0)):
        cv2.imwrite(str(frames_dir / f"{f:06d}.jpg"), image)
        truths.append(truth)
        names.append(f"seq/{f:06d}.jpg")
    tracking.write_posetrack(truths, names, tmp_path / "seq.json")
    files, loaded = tracking.load_posetrack(tmp_path / "seq.json")
    assert [str(p) for p in files] == [str(tmp_path / n) for n in names]
    for a, b in zip(truths, loaded, strict=True):  # the ground truth round-trips
        assert np.array_equal(a.ids, b.ids) and np.allclose(a.keypoints, b.keypoints) and np.allclose(a.areas, b.areas)

    exe = Path(sys.executable).with_name("pafpose")
    r = subprocess.run([str(exe), "predict", str(frames_dir), "--json", "posetrack", "--out", str(tmp_path / "out")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    hyp = tracking.posetrack_poses(tmp_path / "out" / "seq_posetrack.json")
    assert len(hyp) == len(truths) and all(p.track_id is not None and p.track_id >= 0 for f in hyp for p in f)
    scores = tracking.score([loaded], [hyp])
    untracked = [[tracking.Pose(p.keypoints, p.score, p.skeleton, 1000 * f + i) for i, p in enumerate(frame)]
                 for f, frame in enumerate(hyp)]
    bound = tracking.score([loaded], tracking.oracle([loaded], [untracked]))
    assert bound["idf1"] > 0.5  # the detector finds these people ...
    assert scores["idf1"] >= 0.9 * bound["idf1"] and scores["id_switches"] <= 1  # ... and pafpose keeps their ids
    assert tracking.score([loaded], [untracked])["idf1"] < 0.5 * scores["idf1"]  # new ids each frame score far lower
