"""The tracker on synthetic sequences whose identities are known: crossings, occlusions,
ids never reused, jitter filtered, bad input survived."""

import numpy as np
import pytest

from pafpose import COCO18, PafposeError, Pose, Poses
from pafpose.formats import openpose_json
from pafpose.synthetic import random_scene
from pafpose.tracking import OneEuro, Tracker, TrackerConfig


def template(seed=0):
    """One articulated person (COCO-18 keypoints), centred on the origin."""
    person = random_scene(np.random.default_rng(seed), n_people=1, size=(368, 656)).people[0][:, :2].astype(float)
    return person - np.nanmean(person, axis=0)


def frame(positions, people, rng=None, noise=0.0, drop=()):
    """Poses of ``people`` (templates) at ``positions``; ``drop``: indices not detected."""
    out = Poses()
    for i, (pos, shape) in enumerate(zip(positions, people, strict=True)):
        if i in drop:
            continue
        k = np.ones((18, 3))
        k[:, :2] = shape + pos
        if noise:
            k[:, :2] += rng.normal(0, noise, k[:, :2].shape)
        out.append(Pose(k, 0.9, COCO18))
    rng = rng or np.random.default_rng(0)
    order = rng.permutation(len(out))  # the detector's order says nothing about identity
    shuffled = Poses(out[i] for i in order)
    return shuffled


def identity(person, positions, shapes):
    """Which ground-truth person a detection is (nearest centre)."""
    centre = np.nanmean(person.keypoints[:, :2], axis=0)
    return int(np.argmin([np.linalg.norm(centre - np.nanmean(s + p, axis=0)) for p, s in zip(positions, shapes,
                                                                                           strict=True)]))


def test_ids_stay_with_people_through_a_crossing():
    rng = np.random.default_rng(1)
    shapes = [template(0), template(1)]
    tracker = Tracker(TrackerConfig(smooth=False))
    ids: dict[int, set] = {0: set(), 1: set()}
    for t in range(60):  # walking towards each other at 6 px/frame, crossing at t = 30 with 20 px between them
        positions = [np.array([100 + 6 * t, 200.0]), np.array([460 - 6 * t, 220.0])]
        for person in tracker.update(frame(positions, shapes, rng, noise=1.0)):
            ids[identity(person, positions, shapes)].add(person.track_id)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1], ids


def test_an_occluded_person_takes_the_id_back_and_ids_are_never_reused():
    shapes = [template(0), template(2)]
    tracker = Tracker(TrackerConfig(smooth=False, max_lost=0.5))  # 15 frames at 30 fps
    seen = []
    for t in range(80):
        positions = [np.array([100 + 3 * t, 200.0]), np.array([500.0, 150.0])]
        hidden = (0,) if 20 <= t < 30 or 40 <= t < 60 else ()  # 10 frames: within max_lost; 20: beyond
        people = tracker.update(frame(positions, shapes, drop=hidden))
        ids = [p.track_id for p in people]
        assert len(set(ids)) == len(ids)  # no collision within a frame
        seen.append({identity(p, positions, shapes): p.track_id for p in people})
    walker = [s[0] for s in seen if 0 in s]
    assert set(walker[:20 + 10]) == {walker[0]}  # the same id before and after the short occlusion
    assert walker[-1] != walker[0]  # after 20 frames hidden: a new id ...
    assert walker[-1] not in {s.get(1) for s in seen}  # ... which is nobody else's, ever
    assert {s[1] for s in seen} == {seen[0][1]}  # the one standing still never lost his


def test_smoothing_halves_the_jitter_of_a_still_person_without_moving_him():
    rng = np.random.default_rng(3)
    shape, pos = template(0), np.array([300.0, 200.0])
    raw, smooth = [], []
    tracker = Tracker()
    for _ in range(120):
        people = frame([pos], [shape], rng, noise=2.0)
        raw.append(people[0].keypoints[:, :2].copy())
        smooth.append(tracker.update(people)[0].keypoints[:, :2])
    raw, smooth = np.array(raw), np.array(smooth)

    def jitter(track):  # mean frame-to-frame acceleration
        return np.abs(np.diff(track, n=2, axis=0)).mean()

    assert jitter(smooth) < 0.5 * jitter(raw)
    truth = shape + pos
    assert np.abs(smooth[20:] - truth).mean() <= np.abs(raw[20:] - truth).mean()


def test_smoothing_follows_a_moving_person_with_little_lag():
    shape = template(0)
    tracker = Tracker()
    for t in range(60):
        pos = np.array([50 + 8.0 * t, 200.0])
        out = tracker.update(frame([pos], [shape]))
    assert np.abs(out[0].keypoints[:, :2] - (shape + pos)).mean() < 8.0  # less than a frame's motion behind


def test_bad_input_never_crashes_or_collides():
    tracker = Tracker()
    assert tracker.update(Poses()) == []  # an empty frame
    k = np.full((18, 3), np.nan)
    k[:, 2] = 0
    nothing = Pose(k.copy(), 0.5, COCO18)
    one = k.copy()
    one[1] = (100, 100, 0.9)
    lonely = Pose(one, 0.5, COCO18)
    nans = np.ones((18, 3)) * 50
    nans[::2, :2] = np.nan
    out = tracker.update([nothing, lonely, Pose(nans, 0.5, COCO18)])
    assert len(out) == 2 and len({p.track_id for p in out}) == 2  # a person with no keypoint is no one
    for _ in range(3):
        out = tracker.update([lonely, lonely])  # two identical detections: one person (the repeat merged)
        assert len(out) == 1 and out[0].track_id is not None
    assert tracker.update(Poses(), time_s=float("nan")) == []


@pytest.mark.parametrize("offline", [False, True])
def test_a_point_given_as_inf_or_in_one_coordinate_comes_back_as_given(offline):
    """Such a point is missing to the tracker, and smoothing has nothing of it: it comes back as
    given, score too (the online smoothing gave NaN with the score kept; offline kept it)."""
    from pafpose.tracking import OfflineTracker

    k = np.ones((18, 3)) * 100
    k[:, :2] += np.arange(18)[:, None] * 5
    k[3], k[4], k[5] = (np.inf, 5, 0.7), (np.nan, np.nan, 0.0), (7, np.nan, 0.6)
    tracker = OfflineTracker() if offline else Tracker()
    out = []
    for t in range(4):
        out += [p for _, p in tracker.push([Pose(k.copy(), 0.9, COCO18)], None, t / 30)]
    out += [p for _, p in tracker.flush()]
    assert len(out) == 4
    for poses in out:
        np.testing.assert_array_equal(poses[0].keypoints[3:6], k[3:6])
        assert np.isfinite(poses[0].keypoints[6:, :2]).all()


def test_ids_reach_openpose_json_and_tracking_off_is_todays_output():
    shape = template(0)
    people = frame([np.array([200.0, 200.0])], [shape])
    assert openpose_json(people)["people"][0]["person_id"] == [-1]  # untracked: OpenPose's own -1
    tracked = Tracker().update(people)
    assert openpose_json(tracked)["people"][0]["person_id"] == [0]


def test_one_euro_filter_and_config_checks():
    f = OneEuro(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert f(np.array([0.0]), 1 / 30)[0] == 0.0
    assert 0 < f(np.array([10.0]), 1 / 30)[0] < 10  # low-pass
    assert f(np.array([np.nan]), 1 / 30)[0] != f(np.array([np.nan]), 1 / 30)[0]  # NaN passes through
    assert f(np.array([5.0]), 1 / 30)[0] == 5.0  # seen again: starts from the new value
    for bad in ({"min_similarity": 2}, {"max_lost": -1}, {"coast": float("inf")}, {"confirm_hits": 0},
                {"fps": 0}, {"beta": float("nan")}, {"smooth": 1}, {"appearance_doubt": 0.5},
                {"appearance_doubt": float("inf")}, {"appearance_reach": 0.5}, {"appearance_scale": 0},
                {"appearance_min_height": -1}):
        with pytest.raises(PafposeError):
            TrackerConfig(**bad)


def test_drawings_colour_and_label_each_tracked_person_by_id_and_labels_never_overlap():
    import cv2

    from pafpose.draw import id_color, poses

    shape = template(0)
    people = Tracker().update(frame([np.array([200.0, 220.0]), np.array([450.0, 220.0])], [shape, template(1)]))
    canvas = np.zeros((400, 656, 3), np.uint8)
    plain = poses(canvas, [Pose(p.keypoints, p.score, p.skeleton) for p in people])
    drawn = poses(canvas, people)
    for person in people:
        colour = np.array(id_color(person.track_id))
        mine = np.abs(drawn.astype(int) - colour).sum(axis=2) == 0
        top = int(np.nanmin(person.keypoints[:, 1]))
        assert mine[max(0, top - 60):top].sum() > 20  # the label's box
        x0, _, x1, _ = person.bbox()
        body = mine[top:, int(x0):int(x1) + 1].sum()
        assert body > 100  # limbs and joints in the id's colour
    assert id_color(0) != id_color(1) and not np.array_equal(plain, drawn)

    # a crowd in one place: every label box stays whole (none painted over by another)
    crowd = [Pose(people[0].keypoints + np.array([3.0 * i, 150, 0]), 0.9, people[0].skeleton, 10 + i) for i in range(4)]
    drawn = poses(np.zeros((600, 656, 3), np.uint8), crowd)
    for person in crowd:
        mask = (np.abs(drawn.astype(int) - np.array(id_color(person.track_id))).sum(axis=2) == 0).astype(np.uint8)
        mask[int(np.nanmin(person.keypoints[:, 1])) - 2:] = 0  # the labels only, not the limbs
        boxes = [cv2.boundingRect(c) for c in cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]]
        assert any(w >= 12 and h >= 12 for _, _, w, h in boxes), person.track_id  # its label box, uncovered


def test_offline_mode_smooths_without_lag_holds_a_bounded_window_and_fills_gaps_on_request():
    from pafpose.tracking import OfflineTracker, track_offline

    rng = np.random.default_rng(5)
    shape = template(0)
    truth, frames = [], []
    for t in range(90):  # walking, then standing still
        pos = np.array([50 + 6.0 * min(t, 45), 200.0])
        truth.append(shape + pos)
        frames.append(frame([pos], [shape], rng, noise=2.0))
    raw = np.array([f[0].keypoints[:, :2] for f in frames])
    online = np.array([p[0].keypoints[:, :2] for p in map(Tracker().update, frames)])
    offline = np.array([p[0].keypoints[:, :2] for p in track_offline(frames)])
    truth = np.array(truth)

    def jitter(track):
        return np.abs(np.diff(track[50:], n=2, axis=0)).mean()  # standing still

    def error(track):
        return np.abs(track[5:45] - truth[5:45]).mean()  # walking

    assert jitter(offline) < 0.5 * jitter(raw) and jitter(offline) <= jitter(online)
    assert error(offline) < error(raw) and error(offline) < error(online)  # no lag, less noise

    held = OfflineTracker(TrackerConfig(window=4))
    given = []
    for t, people in enumerate(frames[:20]):
        given += [payload for payload, _ in held.push(people, payload=t)]
        assert len(held._frames) <= 2 * 4 + 1  # bounded, whatever the length
        assert given == list(range(max(t - 4 + 1, 0)))  # in order, each ``window`` frames later
    assert [payload for payload, _ in held.flush()] == list(range(16, 20))

    # a person missed for 3 frames: put back, with his id, only when asked to
    two = [frame([np.array([100 + 4.0 * t, 200.0]), np.array([500.0, 150.0])], [shape, template(2)],
                 drop=(0,) if 10 <= t < 13 else ()) for t in range(30)]
    plain = list(track_offline(two))
    filled = list(track_offline(two, TrackerConfig(max_gap=5)))
    assert [len(p) for p in plain[10:13]] == [1, 1, 1] and all(len(p) == 2 for p in filled)
    walker = {p.track_id for f in filled for p in f if p.keypoints[1, 0] < 400}
    assert len(walker) == 1 and [p.interpolated for p in filled[11]].count(True) == 1
    back = next(p for p in filled[11] if p.interpolated)
    assert np.abs(back.keypoints[:, :2] - (shape + np.array([144.0, 200.0]))).max() < 2.0  # where he was
