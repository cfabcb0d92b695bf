"""Following people through a video: a stable id per person and less jitter.

Each frame's people are matched to the tracks by an optimal assignment (scipy's
``linear_sum_assignment``) on a keypoint similarity: COCO's OKS falloff per keypoint,
scaled by the track's size, between a detection and the track's *predicted* pose (each
keypoint moved on by its velocity, a constant-velocity model), averaged over the keypoints
either side has. Pairs less similar than ``min_similarity`` are never matched (gating). A
track that finds no one survives ``max_missed`` frames (an occlusion, a missed detection)
and takes its id back when the person reappears; a person no track explains starts a new
id. Ids are never reused within a sequence.

The kept keypoints are smoothed by a One Euro filter per coordinate (Casiez et al., CHI
2012: a low-pass filter whose cut-off rises with speed, so a still person stops shaking and
a moving one is followed without lag). The filter state belongs to the track, so it
follows the person, not a position in a list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pafpose.checks import check_number
from pafpose.pose import Pose, Poses

_BIG = 1e6  # cost of a pair that the gate forbids


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker's settings.

    Attributes:
        min_similarity: a detection continues a track only if their keypoint similarity
            (0..1, OKS-like) is at least this (gating).
        max_missed: frames a track survives without a match before its id is retired.
        velocity_smoothing: weight of the newest frame in each keypoint's velocity estimate.
        max_extrapolation: frames a track's pose is moved on by its velocity at most (a long
            occlusion stops drifting).
        min_area: smallest person area (pixels²) the similarity scale assumes (tiny or
            one-keypoint people would otherwise match nothing).
        smooth: apply the One Euro filter to the tracked keypoints.
        min_cutoff: the filter's cut-off frequency at rest (Hz): lower, smoother.
        beta: how fast the cut-off rises with speed (per pixel/second): higher, less lag.
        d_cutoff: cut-off frequency of the speed estimate (Hz).
        fps: frame rate assumed when :meth:`Tracker.update` is given no timestamp.
    """

    min_similarity: float = 0.1
    max_missed: int = 30
    velocity_smoothing: float = 0.5
    max_extrapolation: int = 10
    min_area: float = 32.0 * 32.0
    smooth: bool = True
    min_cutoff: float = 1.0
    beta: float = 0.01
    d_cutoff: float = 1.0
    fps: float = 30.0

    def __post_init__(self) -> None:
        check_number("min_similarity", self.min_similarity, 0.0, 1.0)
        check_number("max_missed", self.max_missed, 0, 100_000, integer=True)
        check_number("velocity_smoothing", self.velocity_smoothing, 0.0, 1.0)
        check_number("max_extrapolation", self.max_extrapolation, 0, 100_000, integer=True)
        check_number("min_area", self.min_area, 0.0, 1e12, lo_open=True)
        check_number("min_cutoff", self.min_cutoff, 0.0, 1e6, lo_open=True)
        check_number("beta", self.beta, 0.0, 1e6)
        check_number("d_cutoff", self.d_cutoff, 0.0, 1e6, lo_open=True)
        check_number("fps", self.fps, 0.0, 1e6, lo_open=True)
        if not isinstance(self.smooth, bool):
            from pafpose.errors import PafposeError

            raise PafposeError(f"smooth must be True or False, got {self.smooth!r}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuro:
    """A One Euro filter over an array of values (each filtered on its own); NaN is "not
    seen": it passes through and resets that value's state."""

    min_cutoff: float
    beta: float
    d_cutoff: float
    x: np.ndarray | None = None
    dx: np.ndarray | None = None

    def __call__(self, value: np.ndarray, dt: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = value.copy(), np.zeros_like(value)
            return value.copy()
        fresh = np.isnan(self.x) & ~np.isnan(value)  # seen again: start from the new value
        dx = (value - self.x) / dt
        dx_hat = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self.x + _alpha(cutoff, dt) * (value - self.x)
        x_hat = np.where(fresh, value, x_hat)
        dx_hat = np.where(fresh | np.isnan(dx_hat), 0.0, dx_hat)
        self.x, self.dx = np.where(np.isnan(value), np.nan, x_hat), np.where(np.isnan(value), 0.0, dx_hat)
        return self.x.copy()


@dataclass
class Track:
    """One person followed through the frames."""

    track_id: int
    points: np.ndarray  # (K, 2) last known position of each keypoint (NaN: never seen)
    velocity: np.ndarray  # (K, 2) pixels per frame
    last_seen: float  # frame position (in frames) of the last match
    missed: int = 0
    filter: OneEuro | None = None

    def predicted(self, now: float, max_frames: int) -> np.ndarray:
        """Where the keypoints are expected ``now`` (constant velocity, at most ``max_frames`` on)."""
        return self.points + self.velocity * min(now - self.last_seen, max_frames)


def similarity(points: np.ndarray, tracks: np.ndarray, sigmas: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """``(D, T)`` OKS-like similarity of D detections to T predicted poses.

    Per keypoint ``exp(-d² / (2 area (2 sigma)²))`` (COCO's falloff, ``area`` the track's),
    summed over the keypoints both have and divided by the number either has: a person who
    shares few keypoints with a track is a weak match, whatever their distance.
    """
    d = points[:, None, :, :] - tracks[None, :, :, :]  # (D, T, K, 2)
    d2 = np.einsum("dtkc,dtkc->dtk", d, d)
    both = np.isfinite(d2)
    either = np.isfinite(points[:, None, :, 0]) | np.isfinite(tracks[None, :, :, 0])
    e = np.exp(-np.where(both, d2, 0.0) / (2.0 * areas[None, :, None] * (2.0 * sigmas[None, None, :]) ** 2))
    return np.where(both, e, 0.0).sum(axis=2) / np.maximum(either.sum(axis=2), 1)


class Tracker:
    """Gives every person a stable id through the frames of one sequence.

    Call :meth:`update` with each frame's people, in order; a new sequence needs a new
    Tracker (or :meth:`reset`).

    Example:
        >>> tracker = Tracker()
        >>> for frame in frames:
        ...     for person in tracker.update(estimator.predict(frame)):
        ...         print(person.track_id, person.keypoints[1])
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self.tracks: list[Track] = []
        self._next_id = 0
        self._frame = -1.0

    def update(self, poses: Any, time_s: float | None = None) -> Poses:
        """The people of the next frame, each with its ``track_id`` (and, with ``smooth``, its
        keypoints filtered). ``time_s``: the frame's timestamp in seconds (default: one frame
        of ``config.fps`` after the last)."""
        c = self.config
        now = self._frame + 1.0 if time_s is None else float(time_s) * c.fps
        if not math.isfinite(now):
            now = self._frame + 1.0
        step = max(now - self._frame, 1e-6) if self._frame >= 0 else 1.0
        self._frame = now
        people = [p for p in poses if np.isfinite(p.keypoints[:, :2]).any()]
        matched = self._assign(people, now)
        out = Poses()
        out.truncated = getattr(poses, "truncated", False)
        for i, person in enumerate(people):
            track = matched.get(i)
            if track is None:
                track, gap = self._start(person, now), step
            else:
                gap = max(now - track.last_seen, 1e-6)  # the person's own time since last seen
                self._continue(track, person, now)
            out.append(self._output(track, person, gap))
        for track in self.tracks:
            if track.last_seen != now:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= c.max_missed]
        return out

    # ------------------------------------------------------------------ internals
    def _assign(self, people: list[Pose], now: float) -> dict[int, Track]:
        if not people or not self.tracks:
            return {}
        c = self.config
        sigmas = people[0].skeleton.sigmas
        points = np.stack([p.keypoints[:, :2] for p in people])
        predicted = np.stack([t.predicted(now, c.max_extrapolation) for t in self.tracks])
        areas = np.array([_area(t.points, c.min_area) for t in self.tracks])
        sim = similarity(points, predicted, sigmas, areas)
        cost = np.where(sim >= c.min_similarity, 1.0 - sim, _BIG)
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)
        return {int(r): self.tracks[int(k)] for r, k in zip(rows, cols, strict=True) if cost[r, k] < _BIG}

    def _start(self, person: Pose, now: float) -> Track:
        track = Track(self._next_id, person.keypoints[:, :2].copy(), np.zeros((len(person.keypoints), 2)), now)
        self._next_id += 1
        self.tracks.append(track)
        return track

    def _continue(self, track: Track, person: Pose, now: float) -> None:
        c = self.config
        gap = max(now - track.last_seen, 1e-6)
        new = person.keypoints[:, :2]
        seen = np.isfinite(new[:, 0])
        known = seen & np.isfinite(track.points[:, 0])
        v = np.where(known[:, None], (new - track.points) / gap, track.velocity)
        track.velocity = np.where(known[:, None], c.velocity_smoothing * v + (1 - c.velocity_smoothing)
                                  * track.velocity, track.velocity)
        if known.any():  # keypoints not seen now move with the body
            body = track.velocity[known].mean(axis=0)
            track.velocity[~known] = body
        points = track.predicted(now, c.max_extrapolation)
        points[seen] = new[seen]
        track.points = points
        track.last_seen = now
        track.missed = 0

    def _output(self, track: Track, person: Pose, frames: float) -> Pose:
        c = self.config
        k = person.keypoints.copy()
        if c.smooth:
            if track.filter is None:
                track.filter = OneEuro(c.min_cutoff, c.beta, c.d_cutoff)
            k[:, :2] = track.filter(k[:, :2], frames / c.fps)
        return Pose(k, person.score, person.skeleton, track.track_id)


def _area(points: np.ndarray, floor: float) -> float:
    ok = np.isfinite(points[:, 0])
    if ok.sum() < 2:
        return floor
    span = points[ok].max(axis=0) - points[ok].min(axis=0)
    return max(float(span[0] * span[1]), floor)
