"""Whole-body parts through both trackers: hands, face and feet smoothed with their body,
missing points kept missing, parts put back with interpolated people, ids and bodies
unchanged by parts."""

import numpy as np
import pytest

from pafpose import COCO18, Pose, Poses
from pafpose.synthetic import random_scene
from pafpose.tracking import OfflineTracker, Tracker, TrackerConfig
from pafpose.tracking.offline import _local_fit, _observations

FRAMES = 60
WAVE = 25.0  # radius (px) of the right hand's circle around its resting place
GAP = (40, 42)  # frames in which person 2 is missed (offline gap filling)


def part_shape(rng, n, spread):
    return rng.uniform(-spread, spread, (n, 2))


def sequence(seed=0):
    """Three people walking, each waving the right hand in a circle, with noisy hands, faces
    and feet: ``(frames [(people, time_s)], truth [[{part: (n, 2)} per person] per frame])``
    (the truth has the right wrist too, as ``"right_wrist"``).

    Holes: 5 % of the part points in every frame; person 0's face in frames 20-29; everyone's
    feet before frame 15 (a part new to the trackers); person 2 in the frames of ``GAP``, its
    face after them and its left hand's first point from them on; a frame dropped in 11."""
    rng = np.random.default_rng(seed)
    bodies, shapes = [], []
    for i in range(3):
        b = random_scene(np.random.default_rng(i), n_people=1, size=(368, 656)).people[0][:, :2].astype(float)
        bodies.append(b - b.mean(axis=0))
        shapes.append({"hand_left": part_shape(rng, 21, 12), "hand_right": part_shape(rng, 21, 12),
                       "face": part_shape(rng, 70, 10), "feet": part_shape(rng, 6, 8)})
    noise = {"hand_left": 1.5, "hand_right": 1.5, "face": 1.0, "feet": 2.0}
    frames, truth, u = [], [], 0
    for t in range(FRAMES):
        people, true = Poses(), []
        for i in range(3):
            pos = np.array([80 + 220 * i + 2.0 * u, 180 + 20 * i])
            body = bodies[i] + pos
            angle = 2 * np.pi * u / 45  # a circle every 1.5 s
            body[4] += WAVE * np.array([np.cos(angle), np.sin(angle)])  # the right wrist carries the hand
            parts = {"hand_left": body[7] + shapes[i]["hand_left"], "hand_right": body[4] + shapes[i]["hand_right"],
                     "face": body[0] + shapes[i]["face"],
                     "feet": np.concatenate([body[13] + shapes[i]["feet"][:3], body[10] + shapes[i]["feet"][3:]])}
            true.append({**parts, "right_wrist": body[4][None]})
            if i == 2 and GAP[0] <= t < GAP[1]:
                continue
            k = np.ones((18, 3))
            k[:, :2] = body + rng.normal(0, 2.0, (18, 2))
            detected = {}
            for name, xy in parts.items():
                if (name == "face" and ((i == 0 and 20 <= t < 30) or (i == 2 and t >= GAP[1]))) \
                        or (name == "feet" and t < 15):
                    continue
                kp = np.ones((len(xy), 3))
                kp[:, 2] = rng.uniform(0.3, 1.0, len(xy))
                kp[:, :2] = xy + rng.normal(0, noise[name], xy.shape)
                kp[rng.random(len(xy)) < 0.05] = (np.nan, np.nan, 0.0)
                if name == "hand_left" and i == 2 and t >= GAP[0]:
                    kp[0] = (np.nan, np.nan, 0.0)
                detected[name] = kp
            people.append(Pose(k, 0.9, COCO18, parts=detected))
        frames.append((Poses(people[j] for j in rng.permutation(len(people))), u / 30))
        truth.append(true)
        u += 2 if t % 11 == 10 else 1
    return frames, truth


def body_only(frames):
    return [(Poses(p.replace(parts={}) for p in people), s) for people, s in frames]


def run(tracker, frames):
    """Every frame's tracked people, in order."""
    out = []
    for people, s in frames:
        out += [people for _, people in tracker.push(people, time_s=s)]
    return out + [people for _, people in tracker.flush()]


def who(person, truth):
    """Which true person a pose is: its body's mean x nearest their face's (people walk 220 px apart)."""
    return int(np.argmin([abs(np.nanmean(person.keypoints[:, 0]) - np.mean(t["face"][:, 0])) for t in truth]))


def tracks(seq, truth, name, person):
    """``(frames, n, 2)`` the part ``name`` (or ``"right_wrist"``) of one true person through
    ``seq`` (NaN where missing)."""
    n = len(truth[0][person][name])
    out = np.full((len(seq), n, 2), np.nan)
    for t, people in enumerate(seq):
        for p in people:
            if who(p, truth[t]) == person and name == "right_wrist":
                out[t] = p.keypoints[4:5, :2]
            elif who(p, truth[t]) == person and name in p.parts:
                out[t] = p.parts[name][:, :2]
    return out


def per_frame(values):
    """The mean over axis 1 of the known values (NaN in a frame without any)."""
    known = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return np.where(known, values, 0.0).sum(axis=1) / known.sum(axis=1)


def jitter(track):
    """Mean magnitude of each point's frame-to-frame acceleration (px/frame²)."""
    acc = np.hypot(*np.moveaxis(np.diff(track, n=2, axis=0), -1, 0))
    return float(np.nanmean(acc))


def trackers():
    return {"online": Tracker(), "offline": OfflineTracker(TrackerConfig(max_gap=3))}


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_smoothed_parts_jitter_less_than_raw_and_follow_the_waving_hand(mode):
    frames, truth = sequence()
    raw = [people for people, _ in frames]
    tracked = run(trackers()[mode], frames)
    gain = {"online": 0.5, "offline": 0.25}[mode]
    for person in range(3):
        for name in ("hand_right", "hand_left", "face", "feet"):
            before, after = tracks(raw, truth, name, person), tracks(tracked, truth, name, person)
            assert jitter(after) < gain * jitter(before), (person, name, jitter(after), jitter(before))
        # the right hand circles 25 px around the walking wrist at 105 px/s: the smoothed hand
        # follows it (online with the lag of the body's filter, under 5 px; offline without),
        # and stays on its smoothed wrist better than the detections do
        true = np.array([t[person]["hand_right"] for t in truth])
        true_wrist = np.array([t[person]["right_wrist"] for t in truth])[:, 0]

        def error(seq, true=true, true_wrist=true_wrist, person=person):
            """Per frame: the hand's mean error, and its centre's drift from its wrist (px)."""
            hand, wrist = tracks(seq, truth, "hand_right", person), tracks(seq, truth, "right_wrist", person)[:, 0]
            off = (per_frame(hand) - wrist) - (true.mean(axis=1) - true_wrist)
            return per_frame(np.hypot(*np.moveaxis(hand - true, -1, 0))), np.hypot(*off.T)

        (err, drift), (raw_err, raw_drift) = error(tracked), error(raw)
        assert np.nanmax(err[10:]) < {"online": 5.0, "offline": 2.0}[mode], err
        if mode == "offline":  # no lag: closer to the truth than the detections
            assert np.nanmean(err) < 0.6 * np.nanmean(raw_err)
        assert np.nanmean(drift[10:]) < 0.8 * np.nanmean(raw_drift[10:])


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_missing_points_and_parts_stay_missing_and_scores_stay(mode):
    frames, _ = sequence(1)
    tracked = run(trackers()[mode], frames)
    for (people, _), out in zip(frames, tracked, strict=True):
        detected = [p for p in out if not p.interpolated]
        assert len(detected) == len(people)
        for p, q in zip(people, detected, strict=True):  # the trackers keep the detections' order
            assert p.parts.keys() == q.parts.keys()  # no part added, none dropped
            for name, k in p.parts.items():
                assert np.array_equal(np.isnan(k), np.isnan(q.parts[name]))  # no point invented or lost
                assert np.array_equal(k[:, 2], q.parts[name][:, 2])
                assert q.parts[name] is not k
    assert any(not np.array_equal(p.parts["face"], q.parts["face"], equal_nan=True)
               for (people, _), out in zip(frames, tracked, strict=True)
               for p, q in zip(people, out, strict=False) if "face" in p.parts)  # and they were smoothed


def test_online_a_part_seen_again_or_new_starts_from_its_detection():
    frames, truth = sequence(2)
    tracked = run(Tracker(), frames)

    def part(seq, t, name, person=0):
        return next(p.parts[name] for p in seq[t] if who(p, truth[t]) == person)

    raw = [people for people, _ in frames]
    # the face back after 10 frames away: no stale state, the first frame is the detection itself
    assert np.array_equal(part(tracked, 30, "face"), part(raw, 30, "face"), equal_nan=True)
    assert not np.array_equal(part(tracked, 31, "face"), part(raw, 31, "face"), equal_nan=True)
    # the feet, new at frame 15 to tracks already running: the same
    assert np.array_equal(part(tracked, 15, "feet", 1), part(raw, 15, "feet", 1), equal_nan=True)
    assert not np.array_equal(part(tracked, 16, "feet", 1), part(raw, 16, "feet", 1), equal_nan=True)


def test_interpolated_people_get_the_parts_both_sides_have():
    frames, truth = sequence(3)
    tracked = run(OfflineTracker(TrackerConfig(max_gap=3)), frames)
    for t in range(*GAP):
        back = [p for p in tracked[t] if p.interpolated]
        assert len(back) == 1 and who(back[0], truth[t]) == 2
        parts = back[0].parts
        assert set(parts) == {"hand_left", "hand_right", "feet"}  # no face after the gap: none put back
        for name, k in parts.items():
            error = np.hypot(*(k[:, :2] - truth[t][2][name]).T)
            assert np.nanmean(error) < 3.0, (name, error)
            assert (k[np.isfinite(k[:, 0]), 2] > 0).all()
        assert np.isnan(parts["hand_left"][0, :2]).all() and parts["hand_left"][0, 2] == 0  # not after the gap
        assert np.isfinite(parts["hand_left"][1:, :2]).all()


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_ids_and_bodies_are_bit_identical_with_or_without_parts(mode):
    frames, _ = sequence(4)
    with_parts, without = run(trackers()[mode], frames), run(trackers()[mode], body_only(frames))
    assert sum(p.interpolated for people in with_parts for p in people) == (2 if mode == "offline" else 0)
    for x, y in zip(with_parts, without, strict=True):
        assert [p.track_id for p in x] == [p.track_id for p in y]
        assert [(p.score, p.interpolated) for p in x] == [(p.score, p.interpolated) for p in y]
        for p, q in zip(x, y, strict=True):
            assert np.array_equal(p.keypoints, q.keypoints, equal_nan=True)
            assert not q.parts


def test_two_empty_frames_between_people_with_parts():
    frames, _ = sequence(6)
    last = frames[9][1]
    frames = frames[:10] + [(Poses(), last + 1 / 30), (Poses(), last + 2 / 30)] + \
        [(people, s + 2 / 30) for people, s in frames[10:]]
    for mode, tracker in trackers().items():
        out = run(tracker, frames)
        if mode == "online":
            assert [len(people) for people in out[10:12]] == [0, 0]
        else:  # put back, with their parts
            assert [len(people) for people in out[10:12]] == [3, 3]
            assert all(p.interpolated and "hand_right" in p.parts for people in out[10:12] for p in people)
        assert all("hand_right" in p.parts for people in out[12:] for p in people)


def _reference_fit(kp, t, g, both_sides):
    """The local quadratic fit point by point: the ridge-regularised normal equations solved by
    LAPACK (np.linalg.solve), the plain way the offline tracker's closed form must equal."""
    _, n, k, _ = kp.shape
    points, conf = np.full((n, k, 2), np.nan), np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            obs = kp[:, i, j]
            have = np.isfinite(obs[:, 0]) & np.isfinite(obs[:, 1])
            w = g * have
            conf[i, j] = (w * np.where(have, obs[:, 2], 0.0)).sum() / max(w.sum(), 1e-12)
            sides = have[t < 0].any() and have[t > 0].any()
            if have.sum() == 1 and not both_sides[i]:
                points[i, j] = obs[have, :2][0]
            elif have.sum() >= 2 and (sides or not both_sides[i]):
                x = np.stack([np.ones_like(t), t, t * t], axis=1)[have]
                a = (x * w[have, None]).T @ x + np.diag([1e-9, 1e-3, 1e-3]) * max(w.sum(), 1e-9)
                points[i, j] = np.linalg.solve(a, (x * w[have, None]).T @ obs[have, :2])[0]
    return points, conf


def test_the_offline_fit_equals_a_plain_weighted_least_squares_to_rounding():
    rng = np.random.default_rng(0)
    t = np.arange(-6.0, 7.0)
    kp = rng.normal(100, 30, (13, 5, 40, 3)) + 5 * t[:, None, None, None]
    kp[rng.random((13, 5, 40)) < 0.3] = np.nan
    kp[:, 0, :5] = np.nan  # never seen
    kp[1:, 0, 5:10] = np.nan  # seen once, before
    kp[t > 0, 1, :10] = np.nan  # seen on one side only
    g = np.exp(-0.5 * (t / 3) ** 2)
    for both_sides in (np.zeros(5, bool), np.array([True, True, False, True, False])):
        obs = _observations(kp)
        (p, c), (q, d) = _reference_fit(kp, t, g, both_sides), _local_fit(obs, t, g, both_sides)
        assert np.array_equal(np.isnan(p), np.isnan(q)) and np.isnan(p).any() and not np.isnan(p).all()
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(d, c, rtol=1e-12)


def test_without_smoothing_parts_pass_unchanged():
    frames, _ = sequence(5)
    for tracker in (Tracker(TrackerConfig(smooth=False)), OfflineTracker(TrackerConfig(smooth=False))):
        for (people, _), out in zip(frames, run(tracker, frames), strict=True):
            for p, q in zip(people, out, strict=True):
                assert p.parts.keys() == q.parts.keys()
                for name, k in p.parts.items():
                    assert np.array_equal(k, q.parts[name], equal_nan=True)


def test_a_face_without_a_body_is_kept_untracked():
    """A face the face detector found alone (a close-up, no body keypoint) has nothing to track by: both
    trackers keep it in its frame, untracked and as found, and track the others as before."""
    from pafpose.pose import Pose, Poses
    from pafpose.skeleton import COCO18
    from pafpose.tracking import OfflineTracker, Tracker

    no_body = np.tile([np.nan, np.nan, 0.0], (18, 1))
    face = np.tile([50.0, 60.0, 0.9], (70, 1))
    body = np.tile([10.0, 10.0, 0.9], (18, 1))
    for tracker in (Tracker(), OfflineTracker()):
        frames = []
        for i in range(6):
            people = Poses([Pose(no_body, 0.9, COCO18, parts={"face": face + i}), Pose(body + i, 0.8, COCO18)])
            frames += [out for _, out in tracker.push(people, i)]
        frames += [out for _, out in tracker.flush()]
        assert len(frames) == 6
        for i, out in enumerate(frames):
            assert sorted(p.track_id is None for p in out) == [False, True]
            alone = next(p for p in out if p.track_id is None)
            np.testing.assert_array_equal(alone.parts["face"], face + i)
        assert len({next(p for p in out if p.track_id is not None).track_id for out in frames}) == 1
