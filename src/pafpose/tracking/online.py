"""The online tracker (live frames: cameras, streams): a stable id per person and less
jitter, each frame given back at once.

Each frame's people are matched to the tracks by an optimal assignment (scipy's
``linear_sum_assignment``) on a keypoint similarity: COCO's OKS falloff per keypoint,
scaled by the track's size, between a detection and the track's *predicted* pose (each
keypoint moved on by its velocity, a constant-velocity model), averaged over the keypoints
either side has. Tracks seen in the previous frame are matched first; the people left over
are then matched to the tracks that lost their person (an occlusion, a missed detection),
whose tolerance grows with the frames they have been missing, as their predicted pose grows
uncertain (the matching cascade of SORT-style trackers: a lost track never takes a person
from a track that still sees one). Pairs less similar than ``min_similarity`` are never
matched (gating). A track survives ``max_missed`` frames without a match and takes its id
back when the person reappears; a person no track explains starts a new id. Ids are never
reused within a sequence.

The kept keypoints are smoothed by a One Euro filter per coordinate (Casiez et al., CHI
2012: a low-pass filter whose cut-off rises with speed, so a still person stops shaking and
a moving one is followed with little lag), run in the frame that moves with the person's
body (the filtered pose is carried by the track's mean velocity before the new one is
blended in, so walking adds no lag), its speed measured in person sizes per second so the
same settings fit near and far people. The filter state belongs to the track,
so it follows the person, not a position in a list.

A person's whole-body parts (:attr:`~pafpose.pose.Pose.parts`: hands, face, feet) are
filtered with the body, as more keypoints of the same arrays (:class:`PartSlots` gives each
part's points their columns): carried by the body's mean velocity, their speed divided by
the person's size, the same settings. The person's size, not the hand's: a hand moves with
its wrist, and the same cut-off for the same motion keeps the two together (on a hand
circling its wrist at 105 px/s, a hand's own scale, 24 px, took about 1.2 px off its lag
but let through about 30 % more jitter and drifted about 35 % more from the wrist). A point missing in a frame
stays missing and restarts its filter, as a body keypoint does. Parts never take part in
the matching: the ids are the body's.

State is kept as arrays over the tracks, so a frame costs a few vectorised steps whatever
the number of people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pafpose.pose import Pose, Poses, as_poses
from pafpose.tracking.base import SequenceTracker
from pafpose.tracking.config import TrackerConfig

_BIG = 1e6  # cost of a pair that the gate forbids
# A frame's time step below this many frames is no real camera's: a repeated, backwards or near-equal timestamp
# (a variable-rate video's fastest frames come about half a nominal frame apart)
MIN_STEP = 0.25


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro_step(x: np.ndarray, dx: np.ndarray, value: np.ndarray, dt: np.ndarray | float, min_cutoff: float,
                  beta: float, d_cutoff: float, scale: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One step of the One Euro filter, elementwise: ``(filtered, speed)`` from the previous
    ``(x, dx)`` and the new ``value`` after ``dt`` seconds. The speed is divided by ``scale``
    before it raises the cut-off. NaN is "not seen": it passes through and resets that value."""
    fresh = np.isnan(x) & ~np.isnan(value)  # seen again: start from the new value
    d = (value - x) / dt
    dx_hat = dx + _alpha(d_cutoff, dt) * (d - dx)
    cutoff = min_cutoff + beta * np.abs(dx_hat) / scale
    x_hat = x + _alpha(cutoff, dt) * (value - x)
    x_hat = np.where(fresh, value, x_hat)
    dx_hat = np.where(fresh | np.isnan(dx_hat), 0.0, dx_hat)
    gone = np.isnan(value)
    return np.where(gone, np.nan, x_hat), np.where(gone, 0.0, dx_hat)


@dataclass
class OneEuro:
    """A One Euro filter over an array of values (each filtered on its own); NaN is "not
    seen": it passes through and resets that value's state."""

    min_cutoff: float
    beta: float
    d_cutoff: float
    x: np.ndarray | None = None
    dx: np.ndarray | None = None

    def __call__(self, value: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = value.copy(), np.zeros_like(value)
            return value.copy()
        self.x, self.dx = one_euro_step(self.x, self.dx, value, dt, self.min_cutoff, self.beta, self.d_cutoff, scale)
        return self.x.copy()


class PartSlots:
    """Where each whole-body part's points lie in one array of all the parts' points, so a
    frame's hands, faces and feet are filtered as more keypoints of the body's arrays.

    A part is known by its name and length (``("face", 70)``); a part first seen takes the
    next columns and keeps them until :meth:`clear`, so the columns only grow and an older
    frame's array is a prefix of a newer one's.
    """

    def __init__(self) -> None:
        self.slots: dict[tuple[str, int], int] = {}  # (name, points) -> first column
        self.width = 0  # columns in all

    def clear(self) -> None:
        """Forget every part (a new sequence or skeleton)."""
        self.slots.clear()
        self.width = 0

    def gather(self, people: list[Pose]) -> np.ndarray:
        """``(D, width, 3)`` the people's parts in their columns, missing points (and parts a
        person lacks) ``NaN, NaN, 0``; ``(D, 0, 3)`` while no part was ever seen."""
        if not self.width and not any(p.parts for p in people):
            return np.zeros((len(people), 0, 3))
        for p in people:
            for name, k in p.parts.items():
                if (name, len(k)) not in self.slots:
                    self.slots[(name, len(k))] = self.width
                    self.width += len(k)
        out = np.full((len(people), self.width, 3), np.nan)
        out[..., 2] = 0.0
        for i, p in enumerate(people):
            for name, k in p.parts.items():
                start = self.slots[(name, len(k))]
                out[i, start:start + len(k)] = k
        return out

    def scatter(self, people: list[Pose], gathered: np.ndarray, xy: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Each person's parts (new arrays) from :meth:`gather`'s ``gathered`` with their x, y
        taken from ``xy`` (``(D, width, 2)``, the same columns) where both are known: a point
        missing from a part stays missing, and one that ``xy`` lacks stays as it was."""
        merged = gathered.copy()
        merged[..., :2] = np.where(np.isfinite(gathered[..., :2]) & np.isfinite(xy), xy, gathered[..., :2])
        out = []
        for row, p in zip(merged, people, strict=True):
            parts = {}
            for name, k in p.parts.items():
                start = self.slots[(name, len(k))]
                parts[name] = row[start:start + len(k)].copy()
            out.append(parts)
        return out

    def build(self, points: np.ndarray, conf: np.ndarray) -> dict[str, np.ndarray]:
        """The parts of a person made from ``points`` (``(width, 2)``) and ``conf``
        (``(width,)``): those with a known point, unknown points ``NaN, NaN, 0``."""
        out: dict[str, np.ndarray] = {}
        for (name, n), start in self.slots.items():
            xy = points[start:start + n]
            known = np.isfinite(xy[:, 0]) & np.isfinite(xy[:, 1])
            if name in out or not known.any():
                continue
            k = np.concatenate([xy, conf[start:start + n, None]], axis=1)
            k[~known] = (np.nan, np.nan, 0.0)
            out[name] = k
        return out


def check_frame(poses: Any, time_s: Any) -> list[Pose]:
    """``poses`` as a list of Pose, one keypoint layout, and ``time_s`` checked: a mistake is
    named before it changes a tracker's state (or fails deep in numpy)."""
    if poses is None or isinstance(poses, (str, bytes, np.ndarray)) or not hasattr(poses, "__iter__"):
        raise TypeError(f"poses must be a Poses or a list of Pose, got {type(poses).__name__}")
    people = list(poses)
    bad = next((p for p in people if not isinstance(p, Pose)), None)
    if bad is not None:
        raise TypeError(f"poses must hold Pose objects, got a {type(bad).__name__}")
    if time_s is not None and (isinstance(time_s, bool) or not isinstance(time_s, (int, float, np.integer,
                                                                                     np.floating))):
        raise TypeError(f"time_s must be a number of seconds or None, got {type(time_s).__name__}")
    sizes = sorted({len(p.keypoints) for p in people})
    if len(sizes) > 1:
        raise ValueError(f"poses mixes keypoint layouts in one frame: {' and '.join(map(str, sizes))} keypoints")
    return people


def similarity(points: np.ndarray, tracks: np.ndarray, sigmas: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """``(D, T)`` OKS-like similarity of D detections to T predicted poses.

    Per keypoint ``exp(-d² / (2 area (2 sigma)²))`` (COCO's falloff, ``area`` the track's),
    summed over the keypoints both have and divided by the number either has: a person who
    shares few keypoints with a track is a weak match, whatever their distance.
    """
    # a missing keypoint is put far away, on opposite sides for the two, so it adds nothing
    p = np.where(np.isfinite(points), points, 1e7)
    q = np.where(np.isfinite(tracks), tracks, -1e7)
    d = p[:, None] - q[None]  # (D, T, K, 2)
    d2 = d[..., 0] ** 2 + d[..., 1] ** 2
    inv = 1.0 / (2.0 * areas[:, None] * (2.0 * np.asarray(sigmas, dtype=np.float64)[None, :]) ** 2)  # (T, K)
    total = np.exp(-d2 * inv[None]).sum(axis=2)
    miss_p = (~np.isfinite(points[..., 0])).astype(np.float64)
    miss_q = (~np.isfinite(tracks[..., 0])).astype(np.float64)
    either = points.shape[1] - miss_p @ miss_q.T  # keypoints one of the two has
    return total / np.maximum(either, 1.0)


def _areas(points: np.ndarray, floor: float) -> np.ndarray:
    """``(N,)`` box area of each pose's known keypoints (at least ``floor``)."""
    known = np.isfinite(points[..., 0])
    lo = np.where(known[..., None], points, np.inf).min(axis=1)
    hi = np.where(known[..., None], points, -np.inf).max(axis=1)
    span = np.where(known.sum(axis=1)[:, None] >= 2, hi - lo, 0.0)
    return np.maximum(span[:, 0] * span[:, 1], floor)


class Tracker(SequenceTracker):
    """Gives every person a stable id through the frames of one sequence.

    Call :meth:`update` with each frame's people, in order (or :meth:`push`, the
    :class:`~pafpose.tracking.SequenceTracker` protocol: the frame comes back at once and
    :meth:`flush` has nothing left); a new sequence needs a new Tracker (or :meth:`reset`).

    Example:
        >>> tracker = Tracker()
        >>> for frame in frames:
        ...     for person in tracker.update(estimator.predict(frame)):
        ...         print(person.track_id, person.keypoints[1])
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.reset()

    @property
    def frame_time(self) -> float:
        """The time of the last frame updated, in frames (seconds times ``config.fps``);
        -1 before the first."""
        return self._frame

    def push(self, poses: Any, payload: Any = None, time_s: float | None = None) -> list[tuple[Any, Poses]]:
        """:meth:`update`, as the protocol has it: ``[(payload, tracked people)]``, this frame at once."""
        return [(payload, self.update(poses, time_s))]

    def flush(self) -> list[tuple[Any, Poses]]:
        """Nothing: an online tracker holds no frame back. The ids go on if more frames follow."""
        return []

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self._next_id = 0
        self._frame = -1.0
        self._offset = 0.0  # frames added to the timestamps given, where they failed to move on
        self._k = 0  # keypoints per person (set by the first person seen)
        self.ids = np.zeros(0, np.int64)  # (T,) the live tracks' ids
        self._points = np.zeros((0, 0, 2))  # (T, K, 2) last known position (NaN: never seen)
        self._velocity = np.zeros((0, 0, 2))  # (T, K, 2) pixels per frame
        self._last_seen = np.zeros(0)  # (T,) frame position of the last match
        self._missed = np.zeros(0, np.int64)  # (T,)
        self._fx = np.zeros((0, 0, 2))  # (T, K + parts, 2) One Euro state: filtered values ...
        self._fdx = np.zeros((0, 0, 2))  # ... and their speeds (the body's K, then the parts' columns)
        self._parts = PartSlots()

    def update(self, poses: Any, time_s: float | None = None) -> Poses:
        """The people of the next frame, each with its ``track_id`` (and, with ``smooth``, its
        keypoints and parts filtered). ``time_s``: the frame's timestamp in seconds (default: one frame
        of ``config.fps`` after the last; one that repeats, goes back or comes implausibly soon is
        taken as a glitch, see :meth:`_advance`). ``poses`` that are no Pose list, or mix keypoint
        layouts, are a TypeError or ValueError, and change nothing."""
        c = self.config
        given = check_frame(poses, time_s)
        now, step = self._advance(time_s)
        people = [p for p in given if np.isfinite(p.keypoints[:, :2]).any()]
        # the frame's image, geometry and fields: tracking moves no pixel grid
        out = (poses if isinstance(poses, Poses) else as_poses(given)).derive([])
        if people and self._k != len(people[0].keypoints):
            self._restart(len(people[0].keypoints))  # another skeleton: nothing carries over
        rows = self._assign(people, now) if people else np.zeros(0, np.int64)
        if people:
            points = np.stack([p.keypoints[:, :2] for p in people]).astype(np.float64)
            new = rows < 0
            if new.any():
                rows[new] = self._start(int(new.sum()))
            gaps = np.where(new, step, np.maximum(now - self._last_seen[rows], 1e-6))
            self._continue(rows, points, gaps, new, now)
            parts = self._gather_parts(people) if c.smooth else None
            if parts is None:
                smoothed = self._smooth(rows, points, gaps, new) if c.smooth else points
                for person, row, k in zip(people, rows, smoothed, strict=True):
                    kp = person.keypoints.copy()
                    kp[:, :2] = k
                    out.append(person.replace(kp, track_id=int(self.ids[row])))
            else:  # the parts filtered with the body, as more keypoints
                smoothed = self._smooth(rows, np.concatenate([points, parts[..., :2]], axis=1), gaps, new)
                merged = self._parts.scatter(people, parts, smoothed[:, self._k:])
                for person, row, k, person_parts in zip(people, rows, smoothed, merged, strict=True):
                    kp = person.keypoints.copy()
                    kp[:, :2] = k[:self._k]
                    out.append(person.replace(kp, track_id=int(self.ids[row]), parts=person_parts))
        # a person without a body keypoint but with a part (a face the face detector found alone) has nothing to
        # track by: kept, untracked, as found
        out.extend(p for p in given if not np.isfinite(p.keypoints[:, :2]).any()
                   and any(np.isfinite(k[:, :2]).any() for k in p.parts.values()))
        seen = np.zeros(len(self.ids), bool)
        seen[rows] = True
        self._missed = np.where(seen, 0, self._missed + 1)
        self._keep(self._missed <= c.max_missed)
        return out

    # ------------------------------------------------------------------ internals
    def _advance(self, time_s: float | None) -> tuple[float, float]:
        """``(frame time, step)`` of the next frame, in frames; the time always moves on.

        A timestamp that repeats or goes back counts as one frame after the last, one that
        comes implausibly soon (under :data:`MIN_STEP` frames) as ``MIN_STEP`` after: a
        glitch of the source's clock, whose tiny step would otherwise make velocities huge
        and every person a new id. The correction is kept as an offset to later timestamps,
        so their steps stay the source's own and the next one cannot collide again.
        """
        now = self._frame + 1.0 if time_s is None else float(time_s) * self.config.fps + self._offset
        if not math.isfinite(now):
            now = self._frame + 1.0
        if self._frame < 0:
            self._frame = now
            return now, 1.0
        step = now - self._frame
        if step < MIN_STEP:
            fixed = 1.0 if step < 1e-3 else MIN_STEP
            if time_s is not None and math.isfinite(float(time_s)):
                self._offset += fixed - step
            now, step = self._frame + fixed, fixed
        self._frame = now
        return now, step

    def _restart(self, k: int) -> None:
        next_id, frame, offset = self._next_id, self._frame, self._offset
        self.reset()
        self._next_id, self._frame, self._offset, self._k = next_id, frame, offset, k
        self._points = np.zeros((0, k, 2))
        self._velocity = np.zeros((0, k, 2))
        self._fx = np.zeros((0, k, 2))
        self._fdx = np.zeros((0, k, 2))

    def _gather_parts(self, people: list[Pose]) -> np.ndarray | None:
        """``(D, columns, 3)`` the people's parts (:class:`PartSlots`), the filter state widened
        to new parts' columns (not seen yet: NaN); None while no part was ever seen."""
        parts = self._parts.gather(people)
        if not parts.shape[1]:
            return None
        grow = self._k + parts.shape[1] - self._fx.shape[1]
        if grow:
            t = len(self.ids)
            self._fx = np.concatenate([self._fx, np.full((t, grow, 2), np.nan)], axis=1)
            self._fdx = np.concatenate([self._fdx, np.zeros((t, grow, 2))], axis=1)
        return parts

    def _assign(self, people: list[Pose], now: float) -> np.ndarray:
        """``(D,)`` the track row of each person, -1 for none."""
        rows = np.full(len(people), -1, np.int64)
        if not len(self.ids):
            return rows
        c = self.config
        from scipy.optimize import linear_sum_assignment

        sigmas = np.asarray(people[0].skeleton.sigmas, dtype=np.float64)
        points = np.stack([p.keypoints[:, :2] for p in people]).astype(np.float64)
        ahead = np.minimum(now - self._last_seen, c.max_extrapolation)
        predicted = self._points + self._velocity * ahead[:, None, None]
        widen = (1.0 + c.lost_growth * self._missed) ** 2
        sim = similarity(points, predicted, sigmas, _areas(self._points, c.min_area) * widen)
        ok = sim >= c.min_similarity
        for level in (self._missed == 0, self._missed > 0):  # the tracks that see their person first
            free = rows < 0
            if not level.any() or not free.any():
                continue
            d_idx, t_idx = np.flatnonzero(free), np.flatnonzero(level)
            cost = np.where(ok[np.ix_(d_idx, t_idx)], 1.0 - sim[np.ix_(d_idx, t_idx)], _BIG)
            r, k = linear_sum_assignment(cost)
            good = cost[r, k] < _BIG
            rows[d_idx[r[good]]] = t_idx[k[good]]
        return rows

    def _start(self, n: int) -> np.ndarray:
        k = self._k
        first = len(self.ids)
        self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        nan = np.full((n, k, 2), np.nan)
        self._points = np.concatenate([self._points, nan])
        self._velocity = np.concatenate([self._velocity, np.zeros((n, k, 2))])
        self._last_seen = np.concatenate([self._last_seen, np.full(n, self._frame)])
        self._missed = np.concatenate([self._missed, np.zeros(n, np.int64)])
        width = self._fx.shape[1]  # the body's keypoints and the parts' columns
        self._fx = np.concatenate([self._fx, np.full((n, width, 2), np.nan)])
        self._fdx = np.concatenate([self._fdx, np.zeros((n, width, 2))])
        return np.arange(first, first + n)

    def _continue(self, rows: np.ndarray, new: np.ndarray, gaps: np.ndarray, fresh: np.ndarray, now: float) -> None:
        c = self.config
        old, vel = self._points[rows], self._velocity[rows]
        seen = np.isfinite(new[..., 0])
        known = seen & np.isfinite(old[..., 0]) & ~fresh[:, None]
        with np.errstate(invalid="ignore"):
            v = (new - old) / gaps[:, None, None]
        a = c.velocity_smoothing
        vel = np.where(known[..., None], a * v + (1 - a) * vel, vel)
        # keypoints not seen now move with the body (the mean velocity of those that are)
        n_known = known.sum(axis=1)
        body = np.where(known[..., None], vel, 0.0).sum(axis=1) / np.maximum(n_known, 1)[:, None]
        vel = np.where(~known[..., None] & (n_known > 0)[:, None, None], body[:, None, :], vel)
        ahead = np.minimum(gaps, c.max_extrapolation)
        predicted = old + vel * ahead[:, None, None]
        self._points[rows] = np.where(seen[..., None], new, predicted)
        self._velocity[rows] = vel
        self._last_seen[rows] = now

    def _smooth(self, rows: np.ndarray, points: np.ndarray, gaps: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """One Euro in the frame that moves with the body: each keypoint's filtered position is
        first carried by the person's mean velocity, so walking adds no lag and the filter only
        sees articulation and noise. ``points``: the body's keypoints, then the parts' columns
        (moved by the body's velocity and scaled by its size)."""
        c = self.config
        k = self._k
        x, dx = self._fx[rows], self._fdx[rows]
        x = np.where(fresh[:, None, None], np.nan, x)  # a new track starts from its first pose
        vel = self._velocity[rows]
        ok = np.isfinite(vel[..., 0]) & np.isfinite(points[:, :k, 0])
        body = np.where(ok[..., None], vel, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)[:, None]
        carried = x + (body * gaps[:, None])[:, None, :]
        size = np.sqrt(_areas(points[:, :k], c.min_area))[:, None, None]  # the person's scale, pixels
        dt = (gaps / c.fps)[:, None, None]
        x, dx = one_euro_step(carried, dx, points, dt, c.min_cutoff, c.beta, c.d_cutoff, size)
        self._fx[rows], self._fdx[rows] = x, dx
        return x

    def _keep(self, alive: np.ndarray) -> None:
        if alive.all():
            return
        self.ids, self._points, self._velocity = self.ids[alive], self._points[alive], self._velocity[alive]
        self._last_seen, self._missed = self._last_seen[alive], self._missed[alive]
        self._fx, self._fdx = self._fx[alive], self._fdx[alive]
