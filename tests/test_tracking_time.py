"""Frame times that repeat, go back or come a millisecond apart, variable-rate videos, and
the trackers' bad input: ids stay stable, a valid video is no error, mistakes are named."""

import numpy as np
import pytest

from pafpose import COCO18, Pose, Poses
from pafpose.synthetic import random_scene
from pafpose.tracking import OfflineTracker, Tracker


def walkers(n=9, frames=60, seed=0):
    """``frames`` frames of ``n`` people walking right at 4 px a frame, in rows."""
    rng = np.random.default_rng(seed)
    shapes = []
    for i in range(n):
        p = random_scene(np.random.default_rng(i), n_people=1, size=(368, 656)).people[0][:, :2].astype(float)
        shapes.append(p - np.nanmean(p, axis=0))
    out = []
    for t in range(frames):
        poses = Poses()
        for i, s in enumerate(shapes):
            k = np.ones((18, 3))
            k[:, :2] = s + np.array([60 + 4 * t + 150 * (i % 3), 100 + 200 * (i // 3)]) + rng.normal(0, 1.0, s.shape)
            poses.append(Pose(k, 0.9, COCO18))
        out.append(poses)
    return out


def glitched_times(frames, fps=30.0, kind="near"):
    """Every 5th frame 1 ms after the one before ("near"), at the same time ("repeat", as None:
    the reader's "no time that moves forward", the next real time then one frame on), or 10
    ms before it ("back")."""
    times = []
    for t in range(frames):
        real = t / fps
        if t % 5 == 4:
            real = {"near": times[-1] + 0.001, "repeat": None, "back": times[-1] - 0.01}[kind]
        times.append(real)
    return times


def ids_of(tracked):
    return {p.track_id for poses in tracked for p in poses}


@pytest.mark.parametrize("kind", ["near", "repeat", "back"])
@pytest.mark.parametrize("offline", [False, True])
def test_glitched_frame_times_keep_every_id(kind, offline):
    frames = walkers()
    times = glitched_times(len(frames), kind=kind)
    tracker = OfflineTracker() if offline else Tracker()
    out = []
    for poses, t in zip(frames, times, strict=True):
        out += [people for _, people in tracker.push(poses, None, t)]
    out += [people for _, people in tracker.flush()]
    assert len(out) == len(frames)
    assert ids_of(out) == set(range(9)), sorted(ids_of(out))
    for poses in out:  # nothing flies off: every smoothed keypoint stays near the detections
        assert np.nanmax(np.abs(np.stack([p.keypoints[:, :2] for p in poses]))) < 2000


def test_frame_time_always_moves_forward():
    tracker = Tracker()
    for t in [0.0, 1 / 30, 1 / 30, 0.0, 1 / 30 + 1e-6, float("nan"), 2 / 30]:
        before = tracker.frame_time
        tracker.update(walkers(1, 1)[0], t)
        assert tracker.frame_time >= before + 0.25
