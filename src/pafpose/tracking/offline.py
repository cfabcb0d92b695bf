"""Tracking a sequence whose later frames are known too (a video file, a folder of frames):
smoothing without lag, short gaps filled and returning people re-linked.

The online :class:`~pafpose.tracking.Tracker` gives the ids (unsmoothed), and a new id that
continues a track ended within ``max_lost`` is re-linked to it from hindsight (its best pose
of the ``window`` frames after its birth, see :meth:`OfflineTracker._relink`); each frame is then
held back ``window`` frames, until the frames after it have been seen. Its keypoints are
replaced by a local quadratic fit over the same person's keypoints in the frames on both
sides (Gaussian weights in time, a Savitzky-Golay-like smoother that handles uneven frame
times): symmetric, so it has no lag, and quadratic, so it follows turns. A person the
detector missed in a frame but found on both sides within ``max_gap`` frames is put back in
that frame from the same fit (``Pose.interpolated``), keypoints only where both sides have
them. A person's whole-body parts (hands, face, feet) are fitted the same way, as more
keypoints (:class:`~pafpose.tracking.online.PartSlots`): a point is smoothed where the
person has it in that frame, never invented where the detector missed it, and a person put
back gets the parts' points that both sides have. Memory holds ``2 window + 1`` frames of
people and ``window + 1`` payloads (the frames still to be given out), whatever the length
of the sequence.
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
from pafpose.tracking.online import PartSlots, Tracker, _areas, _median, similarity


@dataclass
class _Frame:
    time: float  # in frames
    poses: Poses  # tracked, unsmoothed
    payload: Any
    ids: np.ndarray  # (P,) track id of each person (-1: none)
    keypoints: np.ndarray  # (P, K, 3)
    scores: np.ndarray  # (P,)
    parts: np.ndarray  # (P, columns, 3) the people's parts in PartSlots' columns of this frame's time


@dataclass
class _Fit:
    """The fitted people at one time, by row of the ids asked for."""

    points: np.ndarray  # (N, K, 2)
    conf: np.ndarray  # (N, K)
    scores: np.ndarray  # (N,)
    part_points: np.ndarray  # (N, columns, 2)
    part_conf: np.ndarray  # (N, columns)


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
        self._parts = PartSlots()
        self._k = 0  # keypoints per person of the frames held (0: none seen yet)
        # id -> (first seen, last seen, last keypoints, px/frame); ids gone longer than max_lost are forgotten
        self._last: dict[int, tuple[float, float, np.ndarray, np.ndarray]] = {}
        self._alias: dict[int, int] = {}  # online id -> the earlier id it was re-linked to

    def push(self, poses: Any, payload: Any = None, time_s: float | None = None) -> list[tuple[Any, Poses]]:
        """Add the next frame; the frames now final, in order."""
        c = self.config
        tracked = self.online.update(poses, time_s)
        k = len(tracked[0].keypoints) if tracked else 0
        out = []
        if k and self._k and k != self._k:  # another skeleton: the held frames end their sequence, as online
            out = [self._give() for _ in range(len(self._frames) - self._next)]
            self._frames.clear()
            self._next = 0
            self._parts.clear()
            self._last.clear()  # nobody of the old layout can be re-linked to
            self._alias.clear()
        self._k = k or self._k
        if self._alias:
            tracked = tracked.derive([p.replace(track_id=self._alias.get(p.track_id, p.track_id)) for p in tracked])
        self._frames.append(_Frame(self.online.frame_time, tracked, payload,
                                   np.array([-1 if p.track_id is None else p.track_id for p in tracked], np.int64),
                                   np.stack([p.keypoints for p in tracked]) if tracked else np.zeros((0, k, 3)),
                                   np.array([p.score for p in tracked], dtype=np.float64),
                                   self._parts.gather(list(tracked)) if c.smooth or c.max_gap
                                   else np.zeros((len(tracked), 0, 3))))
        self._remember(self._frames[-1])
        while len(self._frames) - 1 - self._next >= self.config.window:
            self._relink()
            out.append(self._give())
        return out

    def _remember(self, frame: _Frame) -> None:
        """Each id's first time, last pose, time and body velocity (pixels per frame), for
        re-linking; memory stays bounded (ids gone longer than ``max_lost`` are dropped, and
        so are the aliases of online ids no longer alive)."""
        horizon = frame.time - self.config.max_lost * self.config.fps - 1.0
        for gone in [i for i, v in self._last.items() if v[1] < horizon]:
            del self._last[gone]
        alive = set(self.online.ids.tolist())
        for gone in [i for i in self._alias if i not in alive]:
            del self._alias[gone]
        ids = frame.ids
        points = frame.keypoints[ids >= 0, :, :2]
        points = np.where(np.isfinite(points).all(axis=2)[..., None], points, np.nan)
        ids = ids[ids >= 0].tolist()
        if not ids:
            return
        known = [self._last.get(i) for i in ids]
        first = np.array([frame.time if k is None else k[0] for k in known])
        before = [j for j, k in enumerate(known) if k is not None]
        velocity = np.zeros((len(ids), 2))
        if before:  # the body's velocity since the last time: the median of its keypoints' moves
            t0 = np.array([known[j][1] for j in before])
            p0 = np.stack([known[j][2] for j in before])
            v0 = np.stack([known[j][3] for j in before])
            now = points[before]
            both = np.isfinite(now[..., 0]) & np.isfinite(p0[..., 0])
            count = both.sum(axis=1)
            dt = np.maximum(frame.time - t0, 1e-9)
            moved = _median(np.where(both[..., None], now - p0, np.nan), count) / dt[:, None]
            v = np.where(((count > 0) & (frame.time > t0))[:, None], moved, v0)
            velocity[before] = v
            points[before] = np.where(np.isfinite(now), now, p0 + v[:, None, :] * (frame.time - t0)[:, None, None])
        for j, track_id in enumerate(ids):
            self._last[track_id] = (float(first[j]), frame.time, points[j], velocity[j])

    def _relink(self) -> None:
        """Hindsight: an id born in the frame about to be given out that continues an id which
        ended before it (within ``max_lost``) takes that id back. The online tracker had to
        decide on the returning person's first, often partial pose; here their best pose of
        the next ``window`` frames is compared with the ended track's last one, moved on by
        its decaying velocity. The ended track is then dropped from the online tracker, so the
        two never meet again."""
        c = self.config
        frames = list(self._frames)
        centre = frames[self._next]
        born = [i for i in centre.ids.tolist() if i >= 0 and i in self._last and self._last[i][0] == centre.time]
        if not born:
            return
        later = {i for f in frames[self._next:] for i in f.ids.tolist()}
        ended = [i for i, (_, t, _, _) in self._last.items()
                 if i not in later and 0 < centre.time - t <= c.max_lost * c.fps]
        if not born or not ended:
            return
        skeleton = next(p.skeleton for p in centre.poses if p.track_id in born)
        sigmas = np.asarray(skeleton.sigmas, dtype=np.float64)
        taken: set[int] = set()
        for new in born:
            best = max(((int((f.ids == new).sum() and np.isfinite(f.keypoints[f.ids == new][0, :, 0]).sum()), f)
                        for f in frames[self._next:]), key=lambda x: x[0])[1]
            points = best.keypoints[best.ids == new][0, :, :2]
            scores = []
            for old in ended:
                if old in taken:
                    scores.append(-1.0)
                    continue
                _, t0, p0, v0 = self._last[old]
                gone = (best.time - t0) / c.fps  # seconds
                tau = max(c.coast, 1e-9)
                guess = p0 + v0 * c.fps * tau * (1.0 - np.exp(-gone / tau))
                size = np.sqrt(_box_area(p0, c.min_area)) * (1.0 + c.lost_growth * gone)
                area = (size + c.speed_growth * float(np.hypot(*v0)) * c.fps * gone) ** 2
                scores.append(float(similarity(points[None], guess[None], sigmas, np.array([area]),
                                               c.shared_prior)[0, 0]))
            j = int(np.argmax(scores))
            if scores[j] < c.relink_similarity or c.relink_similarity >= 1.0:
                continue
            old = ended[j]
            taken.add(old)
            self._alias[new] = old
            self.online.forget(old)
            for f in frames[self._next:]:
                hit = f.ids == new
                if hit.any():
                    f.ids[hit] = old
                    f.poses = f.poses.derive([p.replace(track_id=old) if p.track_id == new else p for p in f.poses])

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
        self._parts.clear()
        self._k = 0
        self._last.clear()
        self._alias.clear()

    def _give(self) -> tuple[Any, Poses]:
        c = self.config
        frames = list(self._frames)
        centre = frames[self._next]
        out = centre.poses.derive([])  # the frame's image, geometry and fields
        gapped = self._gapped(frames) if c.max_gap > 0 else np.zeros(0, np.int64)
        wanted = np.union1d(centre.ids[centre.ids >= 0] if c.smooth else np.zeros(0, np.int64), gapped)
        fitted = _fit(frames, wanted, centre.time, c.window, both_sides=np.isin(wanted, gapped))
        merged = self._smoothed_parts(centre, wanted, fitted) if c.smooth and centre.parts.shape[1] else None
        keypoints = centre.keypoints.copy()
        tracked = centre.ids >= 0
        if c.smooth and tracked.any():  # the fitted points where the person has the keypoint
            k, points = keypoints[tracked], fitted.points[np.searchsorted(wanted, centre.ids[tracked])]
            k[..., :2] = np.where(np.isfinite(k[..., :2]) & np.isfinite(points), points, k[..., :2])
            keypoints[tracked] = k
        for i, person in enumerate(centre.poses):
            out.append(person.replace(keypoints[i]) if merged is None
                       else person.replace(keypoints[i], parts=merged[i]))
        skeleton = next((f.poses[0].skeleton for f in frames if len(f.poses)), None)
        for track_id in gapped.tolist():
            j = np.searchsorted(wanted, track_id)
            points, conf, score = fitted.points[j], fitted.conf[j], fitted.scores[j]
            k = np.concatenate([points, conf[:, None]], axis=1)
            k[~np.isfinite(points[:, 0])] = (np.nan, np.nan, 0.0)
            if np.isfinite(k[:, 0]).any():
                parts = self._parts.build(fitted.part_points[j], fitted.part_conf[j])
                out.append(Pose(k, float(score), skeleton, track_id, interpolated=True, parts=parts))
        payload = centre.payload
        centre.payload = None
        self._next += 1
        while self._next > self.config.window:  # keep ``window`` frames of history
            self._frames.popleft()
            self._next -= 1
        return payload, out

    def _smoothed_parts(self, frame: _Frame, wanted: np.ndarray, fitted: _Fit) -> list[dict[str, np.ndarray]]:
        """The parts of ``frame``'s people with the fitted points where both are known (an
        untracked person's as they were)."""
        width = frame.parts.shape[1]  # the columns when the frame came: its people's parts all lie in them
        xy = np.full((len(frame.ids), width, 2), np.nan)
        tracked = frame.ids >= 0
        xy[tracked] = fitted.part_points[np.searchsorted(wanted, frame.ids[tracked]), :width]
        return self._parts.scatter(list(frame.poses), frame.parts, xy)

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


def _box_area(points: np.ndarray, floor: float) -> float:
    return float(_areas(points[None], floor)[0])


def _fit(frames: list[_Frame], ids: np.ndarray, at: float, window: int, both_sides: np.ndarray) -> _Fit:
    """The keypoints and parts of the people ``ids`` (sorted) at time ``at`` from a weighted
    local quadratic fit over the frames within ``window``, and their scores. A keypoint seen
    once is itself; NaN where it has no observation (where ``both_sides``: none before or none
    after ``at``)."""
    near = [f for f in frames if abs(f.time - at) <= window]
    k = next((f.keypoints.shape[1] for f in near if len(f.ids)), 0)
    width = max((f.parts.shape[1] for f in near), default=0)  # the latest frame's parts' columns
    n = len(ids)
    kp = np.full((len(near), n, k, 3), np.nan)
    pk = np.full((len(near), n, width, 3), np.nan)
    present = np.zeros((len(near), n), bool)
    scores = np.zeros((len(near), n))
    full = [(i, f) for i, f in enumerate(near) if len(f.ids)]
    if n and full:  # every frame's people at once: one lookup of their rows
        frame_of = np.repeat([i for i, _ in full], [len(f.ids) for _, f in full])
        all_ids = np.concatenate([f.ids for _, f in full])
        pos = np.minimum(np.searchsorted(ids, all_ids), n - 1)
        hit = ids[pos] == all_ids
        rows, cols = frame_of[hit], pos[hit]
        kp[rows, cols] = np.concatenate([f.keypoints for _, f in full])[hit]
        present[rows, cols] = True
        scores[rows, cols] = np.concatenate([f.scores for _, f in full])[hit]
        if width:  # each frame's parts fill its first columns (the columns only grow)
            bounds = np.cumsum([0] + [len(f.ids) for _, f in full])
            for (i, f), a, b in zip(full, bounds[:-1], bounds[1:], strict=True):
                pk[i, pos[a:b][hit[a:b]], :f.parts.shape[1]] = f.parts[hit[a:b]]
    t = np.array([f.time - at for f in near])
    g = np.exp(-0.5 * (t / max(window / 2.0, 1.0)) ** 2)  # (F,)
    points, conf = _local_fit(kp, t, g, both_sides)
    if width:
        part_points, part_conf = _local_fit(pk, t, g, both_sides)
    else:
        part_points, part_conf = np.zeros((n, 0, 2)), np.zeros((n, 0))
    seen = g[:, None] * present
    score = (seen * scores).sum(axis=0) / np.maximum(seen.sum(axis=0), 1e-12)
    return _Fit(points, conf, score, part_points, part_conf)


def _local_fit(kp: np.ndarray, t: np.ndarray, g: np.ndarray, both_sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, K, 2), confidences (N, K))`` at time 0 of the ``(F, N, K, 3)`` observations
    ``kp`` (NaN: not seen) at times ``t``, weighted by ``g`` in time: a local quadratic fit
    per point. The sums over the frames are matrix products and each 3 x 3 system (symmetric,
    its entries the weighted moments of time) is solved for its first unknown alone, the value
    at time 0, from the cofactors of its first row: a few array operations for every point."""
    have = np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1])  # (F, N, K)
    w = g[:, None, None] * have
    powers = t[:, None] ** np.arange(5)[None, :]  # (F, 5): 1, t, t², t³, t⁴
    m = np.tensordot(w, powers, (0, 0))  # (N, K, 5) moments
    wy = np.where(have[..., None], kp[..., :2], 0.0) * w[..., None]  # (F, N, K, 2)
    b = np.tensordot(wy, powers[:, :3], (0, 0))  # (N, K, 2, 3)
    m0 = m[..., 0]
    ridge = 1e-3 * np.maximum(m0, 1e-9)  # short runs stay near linear
    a00, a01, a02 = m0 + 1e-9 * np.maximum(m0, 1e-9), m[..., 1], m[..., 2]
    a11, a12, a22 = m[..., 2] + ridge, m[..., 3], m[..., 4] + ridge
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a11 * a02
    count = have.sum(axis=0)  # (N, K)
    ok = count >= 2
    sides = (have & (t < 0)[:, None, None]).any(axis=0) & (have & (t > 0)[:, None, None]).any(axis=0)
    ok &= sides | ~both_sides[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # the systems not ok are dropped
        det = a00 * c00 + a01 * c01 + a02 * c02
        value = (b[..., 0] * c00[..., None] + b[..., 1] * c01[..., None] + b[..., 2] * c02[..., None]) / det[..., None]
        points = np.where(ok[..., None], value, np.nan)
        one = (count == 1) & ~both_sides[:, None]
        points = np.where(one[..., None], b[..., 0] / m0[..., None], points)  # seen once: itself
    conf = (w * np.where(have, kp[..., 2], 0.0)).sum(axis=0) / np.maximum(m0, 1e-12)
    return points, conf


def track_offline(frames: Iterable[Any], config: TrackerConfig | None = None) -> Iterator[Poses]:
    """Each frame's tracked people, for a whole sequence of per-frame people (offline mode)."""
    tracker = OfflineTracker(config)
    for poses in frames:
        for _, out in tracker.push(poses):
            yield out
    for _, out in tracker.flush():
        yield out
