"""Frame times that repeat, go back or come a millisecond apart, variable-rate videos, and
the trackers' bad input: ids stay stable, a valid video is no error, mistakes are named."""

import numpy as np
import pytest

from pafpose import COCO18, Pose, Poses
from pafpose.synthetic import random_scene
from pafpose.tracking import OfflineTracker, Tracker, TrackerConfig


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
    """Every 5th frame 1 ms after the one before ("near"), at the same time ("repeat", as the
    reader gives it: None, "no time that moves forward", which the tracker takes as one frame
    on, and the next frame's real time then equals), or 10 ms before it ("back")."""
    times = []
    for t in range(frames):
        real = (t - t // 5 if kind == "repeat" else t) / fps
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


@pytest.mark.parametrize("offline", [False, True])
def test_one_frame_stamped_a_second_early_moves_no_later_frame(offline):
    """Frame 20 of 40 stamped a second early (an out-of-order timestamp): it counts as one
    frame after the last, and the frames after keep the source's own clock (kept as a shift,
    the next frame would be a second-long step, and the walkers' predictions fly off)."""
    frames = walkers(3, 40)
    times = [t / 30 for t in range(40)]
    times[20] -= 1.0
    tracker = OfflineTracker() if offline else Tracker()
    out = []
    for poses, t in zip(frames, times, strict=True):
        out += [people for _, people in tracker.push(poses, None, t)]
    out += [people for _, people in tracker.flush()]
    assert ids_of(out) == {0, 1, 2}
    online = tracker.online if offline else tracker
    assert online.time_s == pytest.approx(39 / 30)


def clock(times, frames=None, config=None):
    """The tracker's step after each frame given ``times`` (None: no stamp), its answers and the
    tracker."""
    frames = frames or walkers(3, len(times))
    tracker, steps, out = Tracker(config), [], []
    for poses, t in zip(frames, times, strict=True):
        before = tracker.time_s
        out.append(tracker.update(poses, t))
        steps.append(None if before is None else tracker.time_s - before)
    return steps, out, tracker


def test_a_clock_that_goes_back_for_good_is_followed_at_its_own_pace():
    """The timestamps go back 10 s at frame 20 and go on from there (a stream restarted): the
    shift is kept from the second frame behind, and every later step is the source's own."""
    steps, out, _ = clock([t / 30 - (10.0 if t >= 20 else 0.0) for t in range(40)])
    assert ids_of(out) == {0, 1, 2}
    assert steps[20] == pytest.approx(1 / 30) and steps[21] == pytest.approx(1 / 30)
    assert steps[22:] == pytest.approx([1 / 30] * 18)


@pytest.mark.parametrize(("fps", "nominal"), [(120.0, 30.0), (240.0, 30.0), (240.0, 10.0), (30.0, 1.0)])
def test_a_fast_camera_is_followed_at_its_own_rate_whatever_config_fps_says(fps, nominal):
    """A 120 or 240 fps camera's timestamps with the default ``config.fps`` of 30 (or a camera
    30 times faster than the ``fps`` set): its frames come a quarter, an eighth or a thirtieth
    of a nominal frame apart, which alone looks like a glitch of the clock. The source's own
    steps tell its rate: after a few frames every step is the camera's (stretched to a quarter
    frame, the clock ran up to twice too fast; more than 16 times faster, the rate was never
    learned and it ran several times too fast), and a timestamp repeated once counts as one of
    the camera's frames, not one of the nominal rate."""
    times = [t / fps for t in range(60)]
    times[40] = times[39]  # repeated once
    steps, out, _ = clock(times, config=TrackerConfig(fps=nominal))
    assert ids_of(out) == {0, 1, 2}
    assert steps[4:40] == pytest.approx([1 / fps] * 36)
    assert steps[40] == pytest.approx(1 / fps)  # the repeat: one frame on
    assert steps[42:] == pytest.approx([1 / fps] * 18)
    assert sum(steps[4:]) == pytest.approx(56 / fps)  # (the first few, before the rate is known, run long)


def test_frames_without_a_stamp_between_stamped_ones_count_one_frame_each():
    """Every other frame stamped (a reader that gives no time for some frames): a step between
    two stamps spans two frames, not one of the source's; learned as one, it had the clock run
    twice too fast."""
    steps, _, tracker = clock([t / 30 if t % 2 == 0 else None for t in range(90)])
    assert steps[1:] == pytest.approx([1 / 30] * 89)
    assert tracker.time_s == pytest.approx(89 / 30)


@pytest.mark.parametrize("pattern", ["burst", "pairs"])
def test_glitches_are_never_learned_as_the_sources_rate(pattern):
    """Four stamps a millisecond apart, then none ("burst"); or frames stamped in pairs, a
    millisecond and then 65.7 ms apart ("pairs"): learned as the source's rate, a millisecond
    step was taken as real (velocities 30 times too high) and frames without a stamp moved
    the clock a millisecond each (``max_lost`` 30 times too long)."""
    if pattern == "burst":
        times = [0.001 * t if t < 4 else None for t in range(90)]
    else:
        times = [t // 2 * (2 / 30) + (0.001 if t % 2 else 0.0) for t in range(90)]
    steps, _, tracker = clock(times)
    assert min(steps[1:]) >= 0.25 / 30 - 1e-9  # no step under MIN_STEP frames
    assert tracker.time_s == pytest.approx(89 / 30, abs=0.1)


def test_a_source_that_speeds_up_is_followed_at_its_new_rate():
    """A source at 1 fps that goes on at 30 fps: its past rate (a second) makes no real frame a
    glitch, and the clock ends on the last stamp."""
    times = [float(t) for t in range(5)] + [4 + t / 30 for t in range(1, 31)]
    steps, _, tracker = clock(times)
    assert steps[5:] == pytest.approx([1 / 30] * 30)
    assert tracker.time_s == pytest.approx(times[-1])


def test_the_rate_is_learned_again_after_the_clock_goes_back():
    """A 240 fps camera whose clock goes back 10 s (restarted), then runs at 60 fps, then gives
    no stamps: the frames without one are a 60th of a second each (measured from the stamp
    before the restart, no step moved on again and the rate was never learned anew)."""
    times = [10 + t / 240 for t in range(20)] + [t / 60 for t in range(30)] + [None] * 10
    steps, _, _ = clock(times)
    assert steps[-10:] == pytest.approx([1 / 60] * 10)


def test_frame_time_always_moves_forward():
    tracker = Tracker()
    for t in [0.0, 1 / 30, 1 / 30, 0.0, 1 / 30 + 1e-6, float("nan"), 2 / 30]:
        before = tracker.frame_time
        tracker.update(walkers(1, 1)[0], t)
        assert tracker.frame_time >= before + 0.25


def write_vfr(path, times_ms):
    """A Matroska video whose frames come at ``times_ms`` (PyAV, explicit timestamps)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (7 * i) % 255, np.uint8), format="bgr24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class _Est:
    """An estimator that finds nobody: run_video's reading and checks, without a network."""

    def stream(self, cap, frames=None, **_):
        from pafpose.predict import stream_frames

        return stream_frames(lambda images: ((image, Poses()) for image in images), cap, track=False, frames=frames)


class _Writer:
    def check(self, width, height, label):  # every frame size can be written
        pass

    def sequence(self, name):
        return name

    def open_video(self, name, fps):
        return None

    def image(self, people, frame, name, **_):
        from types import SimpleNamespace

        return SimpleNamespace(people=people)

    def unique(self, name):
        return name

    def close_video(self, video, label):
        pass

    def end_sequence(self, sequence):
        pass


def test_a_variable_rate_video_is_no_truncated_one(tmp_path):
    import cv2

    from pafpose.loops import run_video
    from pafpose.video import FrameRange

    times = [round(i * 1000 / 30) for i in range(30)] + [1000 + 100 * i for i in range(30)]  # 30 fps, then 10
    write_vfr(tmp_path / "vfr.mkv", times)
    cap = cv2.VideoCapture(str(tmp_path / "vfr.mkv"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) > 100  # the container's estimate: duration x 30 fps
    cap.release()
    run = run_video(_Est(), str(tmp_path / "vfr.mkv"), _Writer(), "vfr")
    assert run.error is None and run.frames == 60, run.error
    run = run_video(_Est(), str(tmp_path / "vfr.mkv"), _Writer(), "vfr", frames=FrameRange(step=5))
    assert run.error is None and run.frames == 12, run.error
    # a truncated one still is: its frames stop well before the duration it states
    writer = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        writer.write(np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = (tmp_path / "full.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    run = run_video(_Est(), str(tmp_path / "cut.avi"), _Writer(), "cut")
    assert run.error and "truncated or damaged" in run.error and 10 < run.frames < 40
    assert run_video(_Est(), str(tmp_path / "full.avi"), _Writer(), "full").error is None


@pytest.mark.parametrize("make", [Tracker, OfflineTracker])
def test_bad_frames_are_named_and_change_nothing(make):
    tracker = make()
    people = walkers(2, 1)[0]
    for bad in ["people", np.zeros((2, 18, 3)), None, 3, [people[0], "x"]]:
        with pytest.raises(TypeError, match="poses"):
            tracker.push(bad, None, 0.0)
    for bad in ["0.5", [0.1], True]:
        with pytest.raises(TypeError, match="time_s"):
            tracker.push(people, None, bad)
    k = np.ones((25, 3))
    k[:, :2] = np.arange(50).reshape(25, 2)
    from pafpose import BODY25

    with pytest.raises(ValueError, match=r"poses.*18 and 25 keypoints"):
        tracker.push(Poses([people[0], Pose(k, 0.9, BODY25)]), None, 0.0)
    for frame, match in [(np.zeros((4, 4, 5), np.uint8), "image must be"),
                         (np.full((4, 4, 3), -5, np.int16), "image values")]:  # (read only to tell people apart)
        with pytest.raises(ValueError, match=match):
            tracker.push(people, None, 0.0, frame)
    out = tracker.push(people, "first", 0.0) + tracker.flush()  # none of that changed a thing
    assert [payload for payload, _ in out] == ["first"] and {p.track_id for p in out[0][1]} == {0, 1}
    assert getattr(tracker, "online", tracker).time_s == 0.0  # the clock neither


def test_the_offline_tracker_restarts_when_the_keypoint_layout_changes():
    from pafpose import BODY25

    tracker = OfflineTracker()
    coco = walkers(2, 15)
    body25 = []
    for poses in walkers(2, 15, seed=1):
        frame = Poses()
        for p in poses:
            k = np.ones((25, 3))
            k[:18] = p.keypoints
            k[18:, :2] = p.keypoints[:7, :2] + 3
            frame.append(Pose(k, 0.9, BODY25))
        body25.append(frame)
    out = []
    for i, poses in enumerate(coco + body25 + coco):
        out += tracker.push(poses, i, i / 30)
    out += tracker.flush()
    assert [payload for payload, _ in out] == list(range(45))
    ids = [{p.track_id for p in people} for _, people in out]
    assert ids[:15] == [{0, 1}] * 15 and ids[15:30] == [{2, 3}] * 15 and ids[30:] == [{4, 5}] * 15
    assert all(len(p.keypoints) == 25 for _, people in out[15:30] for p in people)


@pytest.mark.parametrize("offline", [False, True])
def test_a_video_whose_every_fifth_frame_comes_a_millisecond_late_keeps_every_id(tmp_path, offline):
    from pafpose.predict import stream_frames

    times = []
    for t in range(60):
        times.append(times[-1] + 1 if t % 5 == 4 else round(t * 1000 / 30))
    write_vfr(tmp_path / "glitch.mkv", times)
    people = walkers(9, 60)

    def detect(images):
        return ((image, people[i]) for i, image in enumerate(images))

    out = list(stream_frames(detect, str(tmp_path / "glitch.mkv"), offline=offline))
    assert [i for i, _, _ in out] == list(range(60))
    assert ids_of(poses for _, _, poses in out) == set(range(9))


def test_predict_on_a_variable_rate_video_succeeds(env, tmp_path):
    from test_predict_cli import pafpose

    write_vfr(tmp_path / "vfr.mkv", [round(i * 1000 / 30) for i in range(10)] + [400 + 100 * i for i in range(10)])
    r = pafpose(env, "predict", tmp_path / "vfr.mkv", "--out", tmp_path / "out", "--height", "128")
    assert r.returncode == 0 and "truncated" not in r.stderr, r.stderr
    assert len(list((tmp_path / "out").glob("vfr_*_keypoints.json"))) == 20
