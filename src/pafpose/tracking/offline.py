"""Tracking a sequence whose later frames are known too (a video file, a folder of frames):
smoothing without lag and short gaps filled.

The online :class:`~pafpose.tracking.Tracker` gives the ids (unsmoothed); each frame is then
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
from pafpose.tracking.base import SequenceTracker
from pafpose.tracking.config import TrackerConfig
from pafpose.tracking.online import Tracker


@dataclass
class _Frame:
    time: float  # in frames
    poses: Poses  # tracked, unsmoothed
    payload: Any
    ids: np.ndarray  # (P,) track id of each person (-1: none)
    keypoints: np.ndarray  # (P, K, 3)
    scores: np.ndarray  # (P,)


class OfflineTracker(SequenceTracker):
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
        k = len(tracked[0].keypoints) if tracked else 0
        self._frames.append(_Frame(self.online.frame_time, tracked, payload,
                                   np.array([-1 if p.track_id is None else p.track_id for p in tracked], np.int64),
                                   np.stack([p.keypoints for p in tracked]) if tracked else np.zeros((0, k, 3)),
                                   np.array([p.score for p in tracked], dtype=np.float64)))
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
        out = centre.poses.derive([])  # the frame's image, geometry and fields
        gapped = self._gapped(frames) if c.max_gap > 0 else np.zeros(0, np.int64)
        wanted = np.union1d(centre.ids[centre.ids >= 0] if c.smooth else np.zeros(0, np.int64), gapped)
        fitted = _fit(frames, wanted, centre.time, c.window, both_sides=np.isin(wanted, gapped))
        for person, track_id in zip(centre.poses, centre.ids.tolist(), strict=True):
            k = person.keypoints.copy()
            if c.smooth and track_id >= 0:
                points = fitted[0][np.searchsorted(wanted, track_id)]
                k[:, :2] = np.where(np.isfinite(k[:, :2]) & np.isfinite(points), points, k[:, :2])
            out.append(person.replace(k))
        skeleton = next((f.poses[0].skeleton for f in frames if len(f.poses)), None)
        for track_id in gapped.tolist():
            j = np.searchsorted(wanted, track_id)
            points, conf, score = fitted[0][j], fitted[1][j], fitted[2][j]
            k = np.concatenate([points, conf[:, None]], axis=1)
            k[~np.isfinite(points[:, 0])] = (np.nan, np.nan, 0.0)
            if np.isfinite(k[:, 0]).any():
                out.append(Pose(k, float(score), skeleton, track_id, interpolated=True))
        payload = centre.payload
        centre.payload = None
        self._next += 1
        while self._next > self.config.window:  # keep ``window`` frames of history
            self._frames.popleft()
            self._next -= 1
        return payload, out

    def _gapped(self, frames: list[_Frame]) -> np.ndarray:
        """Ids missing from the frame being given out but seen within ``max_gap`` frames on
        both sides of it."""
        centre = frames[self._next]
        before: dict[int, float] = {}
        for f in frames[:self._next]:
            before.update(dict.fromkeys(f.ids.tolist(), f.time))  # the latest before
        after: dict[int, float] = {}
        for f in reversed(frames[self._next + 1:]):
            after.update(dict.fromkeys(f.ids.tolist(), f.time))  # the earliest after
        here = set(centre.ids.tolist())
        return np.array(sorted(i for i, t0 in before.items() if i >= 0 and i not in here and i in after
                               and after[i] - t0 - 1 <= self.config.max_gap), dtype=np.int64)


def _fit(frames: list[_Frame], ids: np.ndarray, at: float, window: int,
         both_sides: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keypoints of the people ``ids`` (sorted) at time ``at`` from a weighted local
    quadratic fit over the frames within ``window``: ``(points (N, K, 2), confidences (N, K),
    scores (N,))``. A keypoint seen once is itself; NaN where it has no observation (where
    ``both_sides``: none before or none after ``at``)."""
    near = [f for f in frames if abs(f.time - at) <= window]
    k = next((f.keypoints.shape[1] for f in near if len(f.ids)), 0)
    n = len(ids)
    kp = np.full((len(near), n, k, 3), np.nan)
    present = np.zeros((len(near), n), bool)
    scores = np.zeros((len(near), n))
    for i, f in enumerate(near):
        if not n or not len(f.ids):
            continue
        pos = np.clip(np.searchsorted(ids, f.ids), 0, n - 1)
        hit = ids[pos] == f.ids
        kp[i, pos[hit]] = f.keypoints[hit]
        present[i, pos[hit]] = True
        scores[i, pos[hit]] = f.scores[hit]
    t = np.array([f.time - at for f in near])
    have = np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1])  # (F, N, K)
    g = np.exp(-0.5 * (t / max(window / 2.0, 1.0)) ** 2)  # (F,)
    w = g[:, None, None] * have
    y = np.where(have[..., None], kp[..., :2], 0.0)
    powers = t[:, None] ** np.arange(5)[None, :]  # (F, 5): 1, t, t², t³, t⁴
    m = np.einsum("fnk,fp->nkp", w, powers)  # moments
    a = np.stack([m[..., 0:3], m[..., 1:4], m[..., 2:5]], axis=-2)  # (N, K, 3, 3) normal equations
    a = a + np.diag([1e-9, 1e-3, 1e-3]) * np.maximum(m[..., :1, None], 1e-9)  # ridge: short runs stay near linear
    wy = w[..., None] * y  # (F, N, K, 2)
    b = np.einsum("fnkc,fp->nkpc", wy, powers[:, :3])  # (N, K, 3, 2)
    count = have.sum(axis=0)  # (N, K)
    ok = count >= 2
    sides = (have & (t < 0)[:, None, None]).any(axis=0) & (have & (t > 0)[:, None, None]).any(axis=0)
    ok &= sides | ~both_sides[:, None]
    points = np.full((n, k, 2), np.nan)
    if ok.any():
        points[ok] = np.linalg.solve(a[ok], b[ok])[:, 0, :]
    one = (count == 1) & ~both_sides[:, None]
    if one.any():
        points[one] = wy.sum(axis=0)[one] / w.sum(axis=0)[one][:, None]
    conf = (w * np.where(have, kp[..., 2], 0.0)).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-12)
    seen = g[:, None] * present
    score = (seen * scores).sum(axis=0) / np.maximum(seen.sum(axis=0), 1e-12)
    return points, conf, score


def track_offline(frames: Iterable[Any], config: TrackerConfig | None = None) -> Iterator[Poses]:
    """Each frame's tracked people, for a whole sequence of per-frame people (offline mode)."""
    tracker = OfflineTracker(config)
    for poses in frames:
        for _, out in tracker.push(poses):
            yield out
    for _, out in tracker.flush():
        yield out
