"""Tracking a sequence whose later frames are known too (a video file, a folder of frames):
smoothing without lag and short gaps filled.

The online :class:`~pafpose.tracker.Tracker` gives the ids (unsmoothed); each frame is then
held back ``window`` frames, until the frames after it have been seen. Its keypoints are
replaced by a local quadratic fit over the same person's keypoints in the frames on both
sides (Gaussian weights in time, a Savitzky-Golay-like smoother that handles uneven frame
times): symmetric, so it has no lag, and quadratic, so it follows turns. A person the
detector missed in a frame but found on both sides within ``max_gap`` frames is put back in
that frame from the same fit (``Pose.interpolated``), keypoints only where both sides have
them. Memory holds ``2 window + 1`` frames of people and ``window + 1`` payloads (the frames
still to be given out), whatever the length of the sequence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pafpose.pose import Pose, Poses
from pafpose.tracker import Tracker, TrackerConfig


@dataclass
class _Frame:
    time: float  # in frames
    poses: Poses  # tracked, unsmoothed
    payload: Any
    ids: dict[int, Pose]


class OfflineTracker:
    """Ids and lag-free smoothing for a sequence read ahead by ``config.window`` frames.

    :meth:`push` each frame's people in order; it returns the frames that are final (each
    ``window`` frames later), as ``(payload, poses)``; :meth:`flush` gives the rest at the
    end. ``payload`` (e.g. the image) travels with its frame.

    Example:
        >>> tracker = OfflineTracker()
        >>> for frame in frames:
        ...     for image, people in tracker.push(estimator.predict(frame), frame):
        ...         draw(image, people)
        >>> for image, people in tracker.flush(): ...
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.online = Tracker(replace(self.config, smooth=False))
        self._frames: deque[_Frame] = deque()
        self._next = 0  # index in _frames of the next frame to give out

    def push(self, poses: Any, payload: Any = None, time_s: float | None = None) -> list[tuple[Any, Poses]]:
        """Add the next frame; the frames now final, in order."""
        tracked = self.online.update(poses, time_s)
        self._frames.append(_Frame(self.online._frame, tracked, payload,
                                   {p.track_id: p for p in tracked if p.track_id is not None}))
        out = []
        while len(self._frames) - 1 - self._next >= self.config.window:
            out.append(self._give())
        return out

    def flush(self) -> list[tuple[Any, Poses]]:
        """The frames still held, in order. The ids go on if more frames follow (a new
        sequence needs :meth:`reset`)."""
        out = [self._give() for _ in range(len(self._frames) - self._next)]
        self._frames.clear()
        self._next = 0
        return out

    def reset(self) -> None:
        """Forget everything, held frames included; ids start again at 0."""
        self.online.reset()
        self._frames.clear()
        self._next = 0

    def _give(self) -> tuple[Any, Poses]:
        c = self.config
        frames = list(self._frames)
        centre = frames[self._next]
        out = Poses()
        out.truncated = getattr(centre.poses, "truncated", False)
        out.fields = getattr(centre.poses, "fields", None)
        for person in centre.poses:
            k = person.keypoints.copy()
            if c.smooth and person.track_id is not None:
                fitted = _fit(frames, person.track_id, centre.time, c.window, both_sides=False)
                if fitted is not None:
                    k[:, :2] = np.where(np.isfinite(k[:, :2]), fitted[0], np.nan)
            out.append(Pose(k, person.score, person.skeleton, person.track_id))
        if c.max_gap > 0:
            for track_id in self._gapped(frames):
                fitted = _fit(frames, track_id, centre.time, c.window, both_sides=True)
                if fitted is not None:
                    points, conf, score, skeleton = fitted
                    k = np.concatenate([points, conf[:, None]], axis=1)
                    k[~np.isfinite(points[:, 0])] = (np.nan, np.nan, 0.0)
                    if np.isfinite(k[:, 0]).any():
                        out.append(Pose(k, score, skeleton, track_id, interpolated=True))
        payload = centre.payload
        centre.payload = None
        self._next += 1
        while self._next > self.config.window:  # keep ``window`` frames of history
            self._frames.popleft()
            self._next -= 1
        return payload, out

    def _gapped(self, frames: list[_Frame]) -> Iterator[int]:
        """Ids missing from the frame being given out but seen within ``max_gap`` frames on
        both sides of it."""
        centre = frames[self._next]
        gap = self.config.max_gap
        before = {i: f.time for f in frames[:self._next] for i in f.ids}
        after: dict[int, float] = {}
        for f in reversed(frames[self._next + 1:]):
            for i in f.ids:
                after[i] = f.time  # the earliest after
        for i, t0 in before.items():
            if i not in centre.ids and i in after and after[i] - t0 - 1 <= gap:
                yield i


def _fit(frames: list[_Frame], track_id: int, at: float, window: int,
         both_sides: bool) -> tuple[np.ndarray, np.ndarray, float, Any] | None:
    """The person's keypoints at time ``at`` from a weighted local quadratic fit over the
    window: ``(points (K, 2), confidences (K,), score, skeleton)``; NaN where a keypoint has
    too few observations (with ``both_sides``: none before or none after ``at``)."""
    seen = [(f.time - at, f.ids[track_id]) for f in frames if track_id in f.ids and abs(f.time - at) <= window]
    if not seen:
        return None
    t = np.array([s[0] for s in seen])
    kp = np.stack([s[1].keypoints for s in seen])  # (n, K, 3)
    have = np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1])  # (n, K)
    sigma = max(window / 2.0, 1.0)
    w = np.exp(-0.5 * (t / sigma) ** 2)[:, None] * have  # (n, K)
    y = np.where(have[..., None], kp[..., :2], 0.0)  # (n, K, 2)
    powers = t[:, None] ** np.arange(5)[None, :]  # (n, 5): 1, t, t², t³, t⁴
    m = np.einsum("nk,np->kp", w, powers)  # (K, 5) moments
    a = np.stack([m[:, 0:3], m[:, 1:4], m[:, 2:5]], axis=1)  # (K, 3, 3) normal equations
    a = a + np.diag([1e-9, 1e-3, 1e-3])[None] * np.maximum(m[:, :1, None], 1e-9)  # ridge: short runs stay near linear
    b = np.einsum("nk,np,nkc->kpc", w, powers[:, :3], y)  # (K, 3, 2)
    n = have.sum(axis=0)
    ok = n >= 2
    if both_sides:
        ok &= (have & (t < 0)[:, None]).any(axis=0) & (have & (t > 0)[:, None]).any(axis=0)
    points = np.full((kp.shape[1], 2), np.nan)
    if ok.any():
        coef = np.linalg.solve(a[ok], b[ok])  # (k, 3, 2)
        points[ok] = coef[:, 0, :]
    one = n == 1  # a keypoint seen once in the window: itself
    if not both_sides and one.any():
        points[one] = (w[:, one, None] * y[:, one]).sum(axis=0) / np.maximum(w[:, one].sum(axis=0), 1e-12)[:, None]
    total = np.maximum(w.sum(axis=0), 1e-12)
    conf = (w * np.where(have, kp[..., 2], 0.0)).sum(axis=0) / total
    weights = np.exp(-0.5 * (t / sigma) ** 2)
    score = float((weights * np.array([s[1].score for s in seen])).sum() / weights.sum())
    return points, conf, score, seen[0][1].skeleton


def track_offline(frames: Iterable[Any], config: TrackerConfig | None = None) -> Iterator[Poses]:
    """Each frame's tracked people, for a whole sequence of per-frame people (offline mode)."""
    tracker = OfflineTracker(config)
    for poses in frames:
        for _, out in tracker.push(poses):
            yield out
    for _, out in tracker.flush():
        yield out
