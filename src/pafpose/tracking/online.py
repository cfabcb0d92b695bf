"""The online tracker (live frames: cameras, streams): a stable id per person and less
jitter, each frame given back at once.

Each frame's people are matched to the tracks by one optimal assignment (scipy's
``linear_sum_assignment``) on a keypoint similarity: COCO's OKS falloff per keypoint, scaled
by the track's size, between a detection and the track's *predicted* pose, averaged over the
keypoints both have and weighted by how many they share (a partial pose is judged on what it
shows). Tracks seen in the last frame and tracks that lost their person (an occlusion, a
missed detection) compete in the same assignment: a lost track is predicted by its body's
velocity (the median of its keypoints'), which decays while it is lost, and its tolerance
widens with the seconds it has been gone, the more the faster it moved (a walker hidden for a
second may be a few steps from where the model puts them, someone standing still is where
they were), so a returning person takes their own track back even when a neighbour's track,
seen a frame ago, is near enough to pass the gate. A new track is tentative until it has been
matched ``confirm_hits`` times: it counts less in the assignment and dies when unmatched for
``tentative_lost`` seconds (a false or split detection never takes an established person; a
far person the detector finds in some frames only keeps one). A person left over who closely
fits a track matched this frame is a fragment of that person (a person found as two halves);
so is a person found twice (a duplicate piece on top of them, from a box found twice or a
merge of detectors' people), and the smaller of two pieces with hardly a keypoint in common
that fit the same track best (a head or an arm found apart from the body, or, given the
frame, a face found alone beside a pose that has its keypoints and wears the track's colours,
both close to the track), both before the matching, so that the piece cannot keep the track.
A fragment starts no track: where it closely fits the track of the person it is a piece of,
and has no more keypoints than them, it is merged into them (the keypoints and parts they
lack taken from it), one person, one pose; else it comes back untracked. Pairs less similar
than ``min_similarity`` are never matched (gating). Given the frame (``image``), what people
wear (:mod:`~pafpose.tracking.appearance`: the colour along each limb found) weighs the pairs
the gate lets through, and a person left over who looks like a lost track's person (one once
seen tall enough to read) takes it back within ``appearance_reach`` times its tolerance; two
people who each look like the other's track rather than their own swap (out of a crossing the
detector merged them in). A track survives ``max_lost`` seconds without a match, from the
frames' own timestamps, and takes its id back when the person reappears; a person no track
explains starts a new id. Ids are never reused within a sequence. In a crowd, only pairs
whose boxes, widened by the tolerance, overlap are compared (and beyond a few hundred people
each group that could match is solved on its own).

The kept keypoints are smoothed by a One Euro filter per coordinate (Casiez et al., CHI
2012: a low-pass filter whose cut-off rises with speed, so a still person stops shaking and
a moving one is followed with little lag), run in the frame that moves with the person's
body (the filtered pose is carried by the track's body velocity before the new one is
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

import functools
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pafpose.images import as_bgr, to_bgr8
from pafpose.pose import Pose, Poses, as_poses
from pafpose.skeleton import Skeleton
from pafpose.tracking import appearance
from pafpose.tracking.base import SequenceTracker
from pafpose.tracking.config import TrackerConfig

_BIG = 1.3  # cost of a pair that the gate forbids: every match is worth its similarity and 0.3 (see _solve)
_FRAGMENT = -2  # the row of a person found as a fragment of a tracked one
_DUPLICATE = 0.9  # OKS from which a person repeats another of the same frame (top-down pipelines' pose NMS: 0.9)
_PIECE_SHARED = 3  # at most this many keypoints in common: two people found where one track is are its pieces
# ... or more, where the smaller's every keypoint is also the larger's, who has this many times as many and wears the
# track's colours within this many ``appearance_scale``, both fitting the track closely: a face found alone and a pose
# of the same person (its head another's: train2017-mini 10 of --seeds 10-19, the two traded the track every frame)
_PIECE_TWICE = 2
_PIECE_WORN = 0.5
# a person matched to their track but in doubt (``appearance_doubt``) moves to a lost track only where it looks more
# like them than their own by this many ``appearance_scale``: one person's colours a frame apart vary by a median 3
# units and within 6 three times in four (train2017-mini, --seeds 0-9), so a 21 against an 18 says nothing
_DOUBT_MARGIN = 0.25
# A frame's time step below this many frames is no real camera's: a repeated, backwards or near-equal timestamp
# (a variable-rate video's fastest frames come about half a nominal frame apart)
MIN_STEP = 0.25


def one_euro_step(x: np.ndarray, dx: np.ndarray, value: np.ndarray, dt: np.ndarray | float, min_cutoff: float,
                  beta: float, d_cutoff: float, scale: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One step of the One Euro filter, elementwise: ``(filtered, speed)`` from the previous
    ``(x, dx)`` and the new ``value`` after ``dt`` seconds. The speed is divided by ``scale``
    before it raises the cut-off. NaN is "not seen": it passes through and resets that value."""
    # alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi cutoff): 1 / (1 + 1 / r) with r = 2 pi dt cutoff (an infinite
    # cut-off, a scale of 0, gives 1). The factors that do not vary per value (dt, scale: per person) are folded first:
    # the tracker's hot path, where each operation over the people's points is a pass
    w = 2.0 * math.pi * np.asarray(dt, dtype=np.float64)
    step = value - x  # NaN where either is (not seen now, or seen again)
    dx_hat = dx + (step / dt - dx) / (1.0 + 1.0 / (w * d_cutoff))
    r = np.abs(dx_hat) * (w * beta / scale) + w * min_cutoff
    x_hat = x + step / (1.0 + 1.0 / r)  # NaN where the value is: not seen passes through
    x_hat = np.where(np.isnan(x), value, x_hat)  # seen again: start from the new value
    return x_hat, np.where(np.isnan(dx_hat), 0.0, dx_hat)  # (a speed unknown, or not seen, starts again at 0)


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


def similarity(points: np.ndarray, tracks: np.ndarray, sigmas: np.ndarray, areas: np.ndarray,
               prior: float = 3.0) -> np.ndarray:
    """``(D, T)`` OKS-like similarity of D detections to T predicted poses.

    Per keypoint ``exp(-d² / (2 area (2 sigma)²))`` (COCO's falloff, ``area`` the track's),
    averaged over the keypoints both have, times ``n / (n + prior)`` for ``n`` shared
    keypoints: a partial pose scores as well against its own full track as the points it
    shows allow (dividing by the keypoints either has scored it low), and a match on many
    keypoints is still worth more than one on a few.
    """
    return _pair_similarity(points, tracks, sigmas, areas, None, None, prior).reshape(len(points), len(tracks))


def _pair_similarity(points: np.ndarray, tracks: np.ndarray, sigmas: np.ndarray, areas: np.ndarray,
                     d_idx: np.ndarray | None, t_idx: np.ndarray | None, prior: float) -> np.ndarray:
    """:func:`similarity` of the pairs ``(d_idx[i], t_idx[i])`` only: ``(P,)`` (``None``: every
    pair, detection-major)."""
    # float32 and a missing keypoint put far away (on opposite sides for the two, so it adds nothing): the
    # pairs of a crowd are many, and this is most of the tracker's time
    have_p, have_q = np.isfinite(points[..., 0]), np.isfinite(tracks[..., 0])
    p = np.where(have_p[..., None], points, 1e7).astype(np.float32)
    q = np.where(have_q[..., None], tracks, -1e7).astype(np.float32)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    # 1 / (2 area (2 sigma)²), as 1 / (area 8 sigma²): the same float64 (scaling by powers of two is exact)
    inv = (1.0 / (areas[:, None] * (8.0 * sigmas * sigmas)[None, :])).astype(np.float32)
    if d_idx is None:  # every pair, by broadcasting: (D, T, K), then (D * T,) in row order
        dx = p[:, None, :, 0] - q[None, :, :, 0]
        dy = p[:, None, :, 1] - q[None, :, :, 1]
        total = np.exp(-(dx * dx + dy * dy) * inv[None]).sum(axis=2, dtype=np.float64).ravel()
        n = (have_p.astype(np.float64) @ have_q.T.astype(np.float64)).ravel()  # the keypoints both have (exact)
    else:
        dx = p[d_idx, :, 0] - q[t_idx, :, 0]
        dy = p[d_idx, :, 1] - q[t_idx, :, 1]
        total = np.exp(-(dx * dx + dy * dy) * inv[t_idx]).sum(axis=1, dtype=np.float64)
        n = (have_p[d_idx] & have_q[t_idx]).sum(axis=1)
    return total / np.maximum(n, 1) * (n / np.maximum(n + prior, 1e-9))


@functools.lru_cache(maxsize=64)
def _every_pair(n_det: int, n_trk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d_idx, t_idx)`` of every pair, detection-major (read-only: kept for the next frames of
    as many people, most frames of a video)."""
    d_idx, t_idx = np.divmod(np.arange(n_det * n_trk), n_trk)
    d_idx.flags.writeable = t_idx.flags.writeable = False
    return d_idx, t_idx


def _boxes(points: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x0, y0, x1, y1 of each pose's known keypoints (NaN: none known)."""
    # (N, 2, K) in that memory order: fmin/fmax reduce a contiguous last axis about three times faster
    xy = np.ascontiguousarray(points.transpose(0, 2, 1))
    return np.concatenate([np.fmin.reduce(xy, axis=2), np.fmax.reduce(xy, axis=2)], axis=1)


def _areas(points: np.ndarray, floor: float) -> np.ndarray:
    """``(N,)`` box area of each pose's known keypoints (at least ``floor``); ``points``:
    missing keypoints NaN in both coordinates (``fmin``/``fmax`` skip them)."""
    return _box_areas(_boxes(points), floor)


def _box_areas(box: np.ndarray, floor: float) -> np.ndarray:
    """``(N,)`` the area of each box (``(N, 4)``, :func:`_boxes`), at least ``floor``."""
    return np.fmax((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), floor)


_OUTWARD = np.array([-1.0, -1.0, 1.0, 1.0])  # a box's x0, y0, x1, y1 widened: each moved out


def _overlap(first: np.ndarray, second: np.ndarray, widen: np.ndarray | None = None) -> np.ndarray:
    """``(N, M)`` whether each box of ``first`` (``(N, 4)``, :func:`_boxes`) overlaps each of
    ``second`` (``(M, 4)``) widened by ``widen`` (``(M,)`` pixels each side; NaN boxes overlap
    nothing)."""
    if widen is not None:
        second = second + widen[:, None] * _OUTWARD
    with np.errstate(invalid="ignore"):
        return ((first[:, None, 0] <= second[None, :, 2]) & (first[:, None, 2] >= second[None, :, 0])
                & (first[:, None, 1] <= second[None, :, 3]) & (first[:, None, 3] >= second[None, :, 1]))


def _coast(body: np.ndarray, seconds: np.ndarray, coast: float) -> np.ndarray:
    """``(R, 2)`` how far each body moves in ``seconds`` at its velocity ``body`` (pixels per
    second) decaying with the time constant ``coast``: a lost track's drift."""
    tau = max(coast, 1e-9)
    return body * (tau * (1.0 - np.exp(-seconds / tau)))[:, None]


def _reach(sigmas: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """``(T,)`` how far from its prediction (pixels) a keypoint still adds 1 % to the similarity
    to a track of ``areas``: pairs whose boxes, widened by it, do not overlap cannot pass the gate."""
    return 3.04 * 2.0 * float(sigmas.max()) * np.sqrt(areas)


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

    def __init__(self, config: TrackerConfig | None = None,
                 describe: Callable[[Any, np.ndarray, Skeleton], np.ndarray] | None = None) -> None:
        self.config = config or TrackerConfig()
        # how what people wear is read from the frame: (image, points (D, K, 2), skeleton) -> (D, S, F)
        # features, compared part by part (the median over the S parts both have of the L2 distance over F)
        self.describe = describe or appearance.read_looks
        self.reset()

    @property
    def frame_time(self) -> float:
        """The time of the last frame updated, in frames (seconds times ``config.fps``);
        -1 before the first."""
        return self._now * self.config.fps if self._started else -1.0

    @property
    def time_s(self) -> float | None:
        """The time of the last frame updated, in seconds (None before the first)."""
        return self._now if self._started else None

    def push(self, poses: Any, payload: Any = None, time_s: float | None = None,
             image: np.ndarray | None = None) -> list[tuple[Any, Poses]]:
        """:meth:`update`, as the protocol has it: ``[(payload, tracked people)]``, this frame at once."""
        return [(payload, self.update(poses, time_s, image))]

    def flush(self) -> list[tuple[Any, Poses]]:
        """Nothing: an online tracker holds no frame back. The ids go on if more frames follow."""
        return []

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self._next_id = 0
        self._started = False
        self._now = -1.0 / self.config.fps  # seconds of the last frame (the first comes one frame after)
        self._offset = 0.0  # seconds added to the timestamps given, where their clock went back
        self._held = 0.0  # the correction of the last timestamp, held until the next says whether it was one-off
        self._stamp: float | None = None  # the last timestamp given, as given
        self._since = 1  # frames since that one
        self._steps: deque[float] = deque(maxlen=9)  # the source's last steps per frame, as stamped
        self._k = 0  # keypoints per person (set by the first person seen)
        self.ids = np.zeros(0, np.int64)  # (T,) the live tracks' ids
        self._points = np.zeros((0, 0, 2))  # (T, K, 2) last known position (NaN: never seen)
        self._velocity = np.zeros((0, 0, 2))  # (T, K, 2) pixels per second
        self._body = np.zeros((0, 2))  # (T, 2) the body's velocity (median of its keypoints'), pixels per second
        self._last_seen = np.zeros(0)  # (T,) seconds of the last match
        self._hits = np.zeros(0, np.int64)  # (T,) frames matched
        self._born = np.zeros(0)  # (T,) seconds of the first match
        self._origin = np.zeros((0, 0, 2))  # (T, K, 2) the pose of the first match
        self.retired: list[tuple[int, int]] = []  # (id ended, id of their person) in the last frame: :meth:`_retire`
        self._fx = np.zeros((0, 0, 2))  # (T, K + parts, 2) One Euro state: filtered values ...
        self._fdx = np.zeros((0, 0, 2))  # ... and their speeds (the body's K, then the parts' columns)
        self._look = np.zeros((0, 0, 3))  # (T, S, 3) what each track's person wears (:mod:`appearance`; NaN: unknown)
        self._tall = np.zeros(0, bool)  # (T,) whether the track's person was ever tall enough to read their colours
        self._doubted = np.zeros(0)  # (T,) when its person last looked like a lost track on its own limbs only (NaN)
        self._parts = PartSlots()

    def update(self, poses: Any, time_s: float | None = None, image: np.ndarray | None = None) -> Poses:
        """The people of the next frame, each with its ``track_id`` (and, with ``smooth``, its
        keypoints and parts filtered). ``time_s``: the frame's timestamp in seconds (default: one frame
        after the last, of the source's own rate where its timestamps showed it, else of
        ``config.fps``; one that repeats, goes back or comes implausibly soon is taken as a
        glitch, see :meth:`_advance`). ``image``: the frame the people were found in
        (BGR; another size than the keypoints' pixels is scaled by ``poses.image_size``), from
        which what they wear is read to tell them apart (``config.appearance``). ``poses`` that
        are no Pose list, or mix keypoint layouts, are a TypeError or ValueError, and change nothing.

        A person found as a fragment of someone a track follows this frame (half of a person
        split in two, a head or a limb found apart, a repeat) starts no track and does not come
        back apart: the keypoints (and parts' points) that person lacks are taken from it
        (:func:`_merge`), where it closely fits their track (``config.fragment_similarity``)
        and has no more keypoints than them. Another comes back untracked (``track_id`` None),
        as does one with a part but no keypoint (a face found alone). The people come
        back in the order given, less the fragments merged and those with nothing to track by
        (:func:`answered`): :meth:`update_placed` tells where each was given."""
        return self.update_placed(poses, time_s, image)[0]

    def update_placed(self, poses: Any, time_s: float | None = None,
                      image: np.ndarray | None = None) -> tuple[Poses, np.ndarray]:
        """:meth:`update`, and for each person it gives back their index in ``poses``: the
        people it leaves out (fragments merged into their person, people with nothing to track
        by) are the indices missing, for a caller that gives every person back in their place
        (the server's sessions)."""
        c = self.config
        if isinstance(poses, Iterator):  # read once: the places are indices into this list
            poses = list(poses)
        out, people_t, rows, points, gaps, new, rest, now, _, at = self._track(poses, time_s, image)
        if people_t:
            parts = self._gather_parts(people_t) if c.smooth else None
            if parts is None:
                if c.smooth:
                    smoothed = self._smooth(rows, points, gaps, new)
                    for person, row, kp in zip(people_t, rows, _filtered(people_t, smoothed), strict=True):
                        out.append(person.replace(kp, track_id=int(self.ids[row])))
                else:  # the keypoints as found
                    out.extend(person.replace(track_id=int(self.ids[row])) for person, row in zip(people_t, rows,
                                                                                                strict=True))
            else:  # the parts filtered with the body, as more keypoints
                smoothed = self._smooth(rows, np.concatenate([points, parts[..., :2]], axis=1), gaps, new)
                merged = self._parts.scatter(people_t, parts, smoothed[:, self._k:])
                body = _filtered(people_t, smoothed[:, :self._k])
                for person, row, kp, person_parts in zip(people_t, rows, body, merged, strict=True):
                    out.append(person.replace(kp, track_id=int(self.ids[row]), parts=person_parts))
        out.extend(p if p.track_id is None else p.replace(track_id=None) for p in rest)
        if rest:  # the untracked came last (fragments, then those with a part only): each back in its place
            order = np.argsort(at, kind="stable")
            out, at = out.derive([out[j] for j in order]), at[order]
        self._expire(now)
        return out, at

    def _track(self, poses: Any, time_s: float | None, image: np.ndarray | None = None
               ) -> tuple[Poses, list[Pose], np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Pose], float,
                          np.ndarray | None, np.ndarray]:
        """The matching half of :meth:`update`, which the offline tracker shares: the frame's
        people matched and the tracks moved on, no Pose made. ``(out, people, rows, points,
        gaps, new, rest, now, looks, at)``: ``out`` the empty result of the frame; ``people`` the tracked
        people as given, ``rows`` their tracks' rows, ``points`` their keypoints (``(P, K, 2)``,
        NaN where missing), ``gaps`` the seconds since each track was seen and ``new`` which
        tracks they start; ``rest`` the people that stay untracked, as given; ``looks`` what the
        tracked people wear (None: not read); ``at`` the place in the frame given of each of
        ``people`` then ``rest``. A fragment of a person matched this frame is merged into them
        (:func:`_merge`: ``people`` holds them merged) and is in neither list. :meth:`_expire`
        with ``now`` ends the step (it drops rows)."""
        given = check_frame(poses, time_s)
        found = np.array([p.keypoints for p in given]) if given else np.zeros((0, 0, 3))
        xy = found[..., :2]
        seen = np.isfinite(xy[..., 0]) & np.isfinite(xy[..., 1])
        body = seen.any(axis=1).tolist()
        people = [p for p, b in zip(given, body, strict=True) if b]
        # a keypoint is known in both coordinates or missing in both (NaN): inf or a lone coordinate is missing
        xy = np.where(seen[..., None], xy, np.nan)[seen.any(axis=1)]
        # of two people alike in all else (as many keypoints), which is the person and which their piece or repeat
        # is told by who they are, not by the order the detector listed them in (:func:`_ranking`)
        sure = _lazy(lambda: _sure(found, seen))
        # what they wear, before anything changes: a bad frame (or a reader's bad answer) changes nothing
        looks, tall = self._looks(people, xy, self._frame_image(image, people), getattr(poses, "image_size", None))
        now, step = self._advance(time_s)
        # the frame's image, geometry and fields: tracking moves no pixel grid
        out = (poses if isinstance(poses, Poses) else as_poses(given)).derive([])
        if people and self._k != len(people[0].keypoints):
            self._restart(len(people[0].keypoints))  # another skeleton: nothing carries over
        if looks is not None and self._look.shape[1:] != looks.shape[1:]:  # the tracks' looks widened to the limbs read
            self._look = np.full((len(self.ids), *looks.shape[1:]), np.nan, np.float32)
        self.retired = []
        rows, far, owner = (self._assign(people, xy, now, step, looks, tall, sure) if people
                            else (np.zeros(0, np.int64), None, np.zeros(0, np.int64)))
        # (a person matched to a track first: a surer repeat of them that the track fits less is a newcomer)
        order = _lazy(lambda matched=rows >= 0: _ranking(xy, sure(), matched.astype(np.float64)))
        new = np.flatnonzero(rows == -1)
        if len(new) and len(people) > 1:  # a newcomer found twice (no track to fit yet) starts one track
            sigmas = np.asarray(people[0].skeleton.sigmas, dtype=np.float64)
            box = _boxes(xy)
            near = _overlap(box[new], box)
            near[np.arange(len(new)), new] = False
            a, b = np.nonzero(near)
            partner = np.full(len(people), -1, np.int64)
            repeat = _duplicates(xy, sigmas, self.config.min_area, new[a], b, partner, order) & (rows == -1)
            rows[repeat] = _FRAGMENT
            owner[repeat] = partner[repeat]
        tracked = rows != _FRAGMENT
        fragments = not tracked.all()
        if fragments:  # a piece of a person matched this frame is one with them: its keypoints (and parts) fill theirs
            owner[tracked | (rows[np.maximum(owner, 0)] == _FRAGMENT)] = -1  # (a repeat of a repeat: left untracked)
            people = list(people)
            pieces = np.flatnonzero(owner >= 0)
            n = seen.sum(axis=1)[np.array(body)]  # each person's keypoints as found: the largest piece fills first
            for piece in pieces[np.lexsort((order()[pieces], -n[pieces]))]:
                whole = owner[piece]
                people[whole] = _merge(people[whole], people[piece])
                xy[whole] = np.where(np.isfinite(xy[whole]), xy[whole], xy[piece])
        people_t = [p for p, keep in zip(people, tracked, strict=True) if keep]
        rows = rows[tracked]
        points = xy[tracked] if people_t else np.zeros((0, self._k, 2))
        new = rows < 0
        gaps = np.zeros(0)
        if people_t:
            if new.any():
                rows[new] = self._start(int(new.sum()))
            gaps = np.where(new, step, np.maximum(now - self._last_seen[rows], 1e-9))
            self._continue(rows, points, gaps, new, now, None if looks is None else looks[tracked],
                           None if far is None else far[tracked])
            if tall is not None:
                self._tall[rows] |= tall[tracked]
        # fragments whose person was not found stay as found, untracked; and a person without a body keypoint but
        # with a part (a face the face detector found alone) has nothing to track by: kept, untracked, as found
        at = np.flatnonzero(body)  # each person's place in the frame given
        rest: list[Pose] = []
        if fragments:
            alone = ~tracked & (owner < 0)
            rest = [p for p, keep in zip(people, alone, strict=True) if keep]
            at = np.concatenate([at[tracked], at[alone]])
        if not all(body):
            nobody = [i for i, (p, b) in enumerate(zip(given, body, strict=True)) if not b and answered(p)]
            rest.extend(given[i] for i in nobody)  # (a part's point, then)
            at = np.concatenate([at, np.array(nobody, np.int64)])
        return out, people_t, rows, points, gaps, new, rest, now, None if looks is None else looks[tracked], at

    def _expire(self, now: float) -> None:
        """Drop the tracks lost for too long: confirmed ones after ``max_lost``, tentative ones
        after ``tentative_lost``."""
        c = self.config
        absent = now - self._last_seen
        confirmed = self._hits >= c.confirm_hits
        self._keep(np.where(confirmed, absent <= c.max_lost, absent <= c.tentative_lost))

    # ------------------------------------------------------------------ internals
    def _advance(self, time_s: float | None) -> tuple[float, float]:
        """``(time, step)`` of the next frame, in seconds; the time always moves on.

        A frame is the source's own period where its timestamps show it (:meth:`_period`, from
        the steps before this frame, each divided by the frames it spans: a 240 fps camera's
        frames are a 240th of a second, whatever ``config.fps`` says), else ``config.fps``'s.
        A timestamp that repeats or goes back counts as one frame after the last, one that
        comes implausibly soon (under :data:`MIN_STEP` frames, of the source's rate or
        ``config.fps``'s, whichever is faster) as ``MIN_STEP`` frames after: a glitch of the
        source's clock, whose tiny step would otherwise make velocities huge and every person
        a new id. The next timestamp says which glitch it was: if it is on time, a single
        frame was stamped out of order and the source's clock goes on as it was; if it is
        behind too, the clock went back (a stream restarted, a camera's clock reset), and the
        correction is kept as an offset to later timestamps, so their steps stay the source's
        own and the next one cannot collide again. (Kept at once, one early stamp would move
        every later frame: the next step a second long, every prediction flying off.)
        """
        given = time_s is not None and math.isfinite(float(time_s))
        nominal = 1.0 / self.config.fps
        period = self._period(nominal)  # from the steps before this one: a glitch cannot judge itself
        # the source's own step, as stamped, per frame since the last stamp that moved on; one under a 16th of
        # a nominal frame or 1.5 ms (repeated, a millisecond on) is a glitch, never a rate (so sources up to 660 fps
        # are learned); a stamp that went back is where later ones are measured from (a restarted clock), no rate
        step = (float(time_s) - self._stamp) / self._since if given and self._stamp is not None else 0.0
        floor = min(nominal / 16, 0.0015)
        if step >= floor:
            self._steps.append(step)
        if given and (self._stamp is None or step >= floor or step < 0):
            self._stamp, self._since = float(time_s), 1
        else:
            self._since += 1
        now = float(time_s) + self._offset if given else self._now + period
        if not math.isfinite(now):
            now, given = self._now + period, False
        if not self._started:
            self._started, self._now = True, now
            return now, period
        step = now - self._now
        held, self._held = self._held, 0.0
        soon = MIN_STEP * min(period, nominal)  # a slower source's (1 fps) rate never makes a faster frame a glitch
        if held and given and step < soon:  # behind again: the clock went back, keep the shift
            self._offset += held
            now += held
            step = now - self._now
        if step < soon:
            fixed = period if step < 1e-3 * period else soon
            if given:
                self._held = fixed - step
            now, step = self._now + fixed, fixed
        self._now = now
        return now, step

    def _period(self, nominal: float) -> float:
        """The source's frame period, seconds: the median of its last steps where they are a few
        (3) and few of them short (the lower quartile at least half the median: a camera's rate,
        a dropped frame's long step aside, not a clock stamping frames in bursts), else
        ``nominal``."""
        if len(self._steps) < 3:
            return nominal
        ordered = sorted(self._steps)
        middle = statistics.median(ordered)
        return middle if ordered[len(ordered) // 4] >= 0.5 * middle else nominal

    def _restart(self, k: int) -> None:
        clock = (self._next_id, self._now, self._started, self._offset, self._held, self._stamp, self._since,
                 self._steps)
        self.reset()
        (self._next_id, self._now, self._started, self._offset, self._held, self._stamp, self._since,
         self._steps) = clock
        self._k = k
        self._points = np.zeros((0, k, 2))
        self._origin = np.zeros((0, k, 2))
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

    def predicted(self, now: float, step: float) -> tuple[np.ndarray, np.ndarray]:
        """``(points (T, K, 2), absent (T,))``: each track's pose predicted at ``now`` and the
        seconds it has gone unmatched before this frame (0: seen in the frame before).

        A track seen in the frame before moves on by its keypoints' velocities. A lost one
        coasts by its body's velocity, which decays (time constant ``config.coast``): the
        velocity of the last, often partial poses before an occlusion is the least reliable,
        and a person hidden for a second rarely keeps walking in a straight line at full speed.
        """
        c = self.config
        ahead = now - self._last_seen
        absent = np.maximum(ahead - step, 0.0)
        moved = self._velocity * ahead[:, None, None]
        lost = np.flatnonzero(absent > 1e-9)
        if len(lost):
            moved[lost] = _coast(self._body[lost], ahead[lost], c.coast)[:, None, :]
        return self._points + moved, absent

    def _frame_image(self, image: Any, people: list[Pose]) -> Any:
        """The frame as what people wear is read from it (None where it is not read): with the
        own reader, an array of an image's shape, 8-bit BGR as the Estimator reads it (16-bit,
        floats: :func:`pafpose.images.to_bgr8`; a PIL image: :func:`pafpose.images.as_bgr`),
        converted only when someone is there to read, or a ValueError."""
        if image is None or not self.config.appearance:
            return None
        if self.describe is not appearance.read_looks:  # another reader takes the frame as it is
            return image
        if type(image).__module__.startswith("PIL."):  # RGB, palettes, grey with alpha: as the Estimator reads them
            return as_bgr(image) if people else image
        image = np.asarray(image)
        if (image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1
                or (image.ndim == 3 and image.shape[2] not in (1, 3, 4))):
            raise ValueError(f"image must be an (H, W) or (H, W, 1, 3 or 4) array, got shape {image.shape}")
        return image if image.dtype == np.uint8 or not people else to_bgr8(image)  # (a PafposeError: ValueError)

    def _looks(self, people: list[Pose], points: np.ndarray, image: np.ndarray | None,
               size: tuple[int, int] | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(looks, tall)``: ``(D, S, 3)`` what the people wear (:func:`appearance.describe`)
        and ``(D,)`` whether each is at least ``config.appearance_min_height`` tall in the
        image's pixels; None, None without an image or with ``config.appearance`` 0. Nothing of
        the tracker's changes. ``size``: the ``(width, height)`` the keypoints are in, where the
        image given may be another size."""
        if image is None or not self.config.appearance or not people:
            return None, None
        shape = getattr(image, "shape", ())
        if size and size[0] > 0 and size[1] > 0 and len(shape) >= 2 and (shape[1], shape[0]) != tuple(size):
            points = points * np.array([shape[1] / size[0], shape[0] / size[1]])  # the keypoints in its pixels
        looks = np.asarray(self.describe(image, points, people[0].skeleton), dtype=np.float32)
        if looks.ndim != 3 or len(looks) != len(people):
            raise ValueError(f"describe must give ({len(people)}, limbs, features) looks, got shape {looks.shape}")
        box = _boxes(points)  # the people's heights in the frame's pixels
        with np.errstate(invalid="ignore", over="ignore"):
            tall = (box[:, 3] - box[:, 1]) >= self.config.appearance_min_height
        return looks, tall

    def _assign(self, people: list[Pose], points: np.ndarray, now: float, step: float,
                looks: np.ndarray | None = None, tall: np.ndarray | None = None,
                sure: Callable[[], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(rows, far, owner)``: ``(D,)`` the track row of each person, -1 for a new track,
        :data:`_FRAGMENT` for a fragment of a person matched this frame (no track); with
        ``looks``, ``(D,)`` each person's colour distance to the track they took
        (:func:`appearance.distance`; NaN: too little to tell, or no track), else None; and
        ``(D,)`` the person each fragment is a piece of (:func:`_owners`; -1: none, or no fragment).

        One optimal assignment over every track, seen or lost: a lost track's tolerance
        widens with the time it has been gone (its prediction grows uncertain) and its
        similarity counts ``config.lost_weight`` times, so a track that saw its person in the
        last frame keeps them against a lost track's equal claim, but a clearly better lost
        match wins (a returning person takes their own id back from a neighbour's track). An
        unconfirmed track (fewer than ``config.confirm_hits`` matches: a fragment, a false
        detection) counts ``config.tentative_weight`` times. Beyond a few people, pairs whose
        boxes, widened by the tolerance, do not overlap are never compared (they could not
        pass the gate); :func:`_solve` then matches the pairs left.
        """
        c = self.config
        rows = np.full(len(people), -1, np.int64)
        far = None if looks is None else np.full(len(people), np.nan, np.float32)
        owner = np.full(len(people), -1, np.int64)
        if not len(self.ids):
            return rows, far, owner
        sigmas = np.asarray(people[0].skeleton.sigmas, dtype=np.float64)
        predicted, absent = self.predicted(now, step)
        areas = self._grown(slice(None), absent)
        if len(people) * len(self.ids) <= 400:  # a few people: comparing all is cheaper than pruning
            d_idx, t_idx = _every_pair(len(people), len(self.ids))
            every = True
        else:
            every = False
            d_idx, t_idx = np.nonzero(_overlap(_boxes(points), _boxes(predicted), _reach(sigmas, areas)))
        if not len(d_idx):
            return rows, far, owner
        raw = _pair_similarity(points, predicted, sigmas, areas, None if every else d_idx, None if every else t_idx,
                               c.shared_prior)

        def best_fit() -> np.ndarray:  # each person's similarity to the track that fits them best (0: none near)
            fit = np.zeros(len(people))
            np.maximum.at(fit, d_idx, raw)
            return fit

        # of two alike in size, the one a track fits better is the person (then the surer, ...): the same in both
        # rules below, so that neither drops the one the other keeps
        order = _lazy(lambda: _ranking(points, np.zeros(len(people)) if sure is None else sure(), best_fit()))
        weight = np.where(self._hits < c.confirm_hits, c.tentative_weight,
                          np.where(absent > 1e-9, c.lost_weight, 1.0))
        sim = raw * weight[t_idx]
        ok = sim >= c.min_similarity
        # a person found twice (a piece of them on top of them) is matched once: the piece stays out (merged).
        # Only two people who closely fit the same track are compared (most frames have none)
        close = raw >= c.fragment_similarity
        shared = np.bincount(t_idx[close], minlength=len(self.ids)) >= 2
        if shared.any():
            d_s, t_s = d_idx[close & shared[t_idx]], t_idx[close & shared[t_idx]]
            who, d_s = np.unique(d_s, return_inverse=True)
            _, t_s = np.unique(t_s, return_inverse=True)
            fits = np.zeros((len(who), t_s.max() + 1), np.float32)
            fits[d_s, t_s] = 1.0
            a, b = np.nonzero(fits @ fits.T)  # the pairs of people who fit one track (each way, and themselves)
            rows[_duplicates(points, sigmas, c.min_area, who[a[a != b]], who[b[a != b]], order=order)] = _FRAGMENT
            ok &= rows[d_idx] != _FRAGMENT
        # a person split in two (the head found apart from the body, upper and lower halves): two people whom
        # the same track fits best, with hardly a keypoint in common, the larger closely, are its pieces; so are a
        # face found alone and a pose that has its keypoints too, both close to the track, the pose wearing its colours
        worn = None
        if looks is not None:  # (NaN, too little to tell, or a person under appearance_min_height: not worn)
            read = np.ones(len(people), bool) if tall is None else tall

            def worn(who: np.ndarray, track: np.ndarray) -> np.ndarray:
                near = appearance.distance(looks, self._look, who, track) <= _PIECE_WORN * c.appearance_scale
                return near & read[who]
        pieces = _pieces(points, d_idx, t_idx, raw, c.fragment_similarity, c.min_similarity,
                         (len(people), len(self.ids)) if every else None, worn, order)
        if len(pieces):
            rows[pieces] = _FRAGMENT
            ok &= rows[d_idx] != _FRAGMENT
        if looks is not None:  # what they wear weighs the pairs the keypoints allow; it opens no gate
            d_ok, t_ok = d_idx[ok], t_idx[ok]
            dist = appearance.distance(looks, self._look, d_ok, t_ok)
            cost = 1.0 - sim[ok] * appearance.alike(dist, c.appearance, c.appearance_scale, c.appearance_unknown)
        else:
            d_ok, t_ok, cost = d_idx[ok], t_idx[ok], 1.0 - sim[ok]
        _solve(rows, d_ok, t_ok, cost, len(people), len(self.ids))
        # a person left over who closely fits a track matched this frame is a fragment of that person
        taken = np.zeros(len(self.ids), bool)
        taken[rows[rows >= 0]] = True
        frag = (rows[d_idx] < 0) & taken[t_idx] & (raw >= c.fragment_similarity)
        rows[d_idx[frag]] = _FRAGMENT
        if looks is not None:
            _matched(rows, d_ok, t_ok, dist, far)
            tall = np.ones(len(people), bool) if tall is None else tall
            self._swap(rows, points, looks, tall, predicted, areas, sigmas, far)
            freed = self._reclaim(rows, points, looks, tall, predicted, areas, absent, taken, sigmas, far, now)
            if len(freed):  # a track a person left for their own: the people left over may take it after all
                # (not the fragments: a piece found overlapping the person who left is likelier theirs)
                left = (rows[d_ok] == -1) & np.isin(t_ok, freed)
                _solve(rows, d_ok[left], t_ok[left], cost[left], len(people), len(self.ids))
                _matched(rows, d_ok[left], t_ok[left], dist[left], far)
                taken[rows[rows >= 0]] = True  # and the people still left over may be fragments of who took it
                frag = (rows[d_idx] == -1) & taken[t_idx] & (raw >= c.fragment_similarity)
                rows[d_idx[frag]] = _FRAGMENT
        self._retire(rows, d_idx, t_idx, raw, absent, sigmas)
        if (rows == _FRAGMENT).any():  # (most frames have none)
            owner = _owners(rows, d_idx, t_idx, raw, c.fragment_similarity)
            n = np.isfinite(points[..., 0]).sum(axis=1)
            owner[(owner >= 0) & (n > n[np.maximum(owner, 0)])] = -1  # a whole person is no one's piece: kept apart
        return rows, far, owner

    def _swap(self, rows: np.ndarray, points: np.ndarray, looks: np.ndarray, tall: np.ndarray,
              predicted: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, far: np.ndarray) -> None:
        """Two people matched to each other's tracks take their own back: each ``tall`` and
        matched to a track whose colours are more than ``appearance_doubt`` scales from theirs,
        each looking like the other's track (within ``appearance_scale``) and near enough to it
        with its tolerance widened ``appearance_reach`` times (as :meth:`_reclaim` lets a person
        take a lost track). Through a crossing the detector often finds the two as one merged
        pose or as halves of each, and the tracks, following those, come out on the wrong
        people; the keypoints then hold them there, the colours of both say otherwise. The
        pairs that fit best (the colours' distance summed) swap first, each person once."""
        c = self.config
        matched = np.flatnonzero(rows >= 0)
        doubted = matched[(far[matched] > c.appearance_doubt * c.appearance_scale) & tall[matched]]
        if len(doubted) < 2:
            return
        # only neighbours, as _assign prunes: a person's box against the other's track's, widened by the reach
        near = _overlap(_boxes(points[doubted]), _boxes(predicted[rows[doubted]]),
                        _reach(sigmas, areas[rows[doubted]]) * c.appearance_reach)
        np.fill_diagonal(near, False)
        a, b = np.nonzero(near & near.T)  # person a of the doubted on b's track, each near the other's
        if not len(a):
            return
        d_idx, t_idx = doubted[a], rows[doubted[b]]
        dist = appearance.distance(looks, self._look, d_idx, t_idx)
        wide = _pair_similarity(points, predicted, sigmas, areas * c.appearance_reach ** 2, d_idx, t_idx,
                                c.shared_prior)
        fits = np.full((len(doubted), len(doubted)), np.nan)
        good = (dist <= c.appearance_scale) & (wide >= c.min_similarity)
        fits[a[good], b[good]] = dist[good]
        both = fits + fits.T  # NaN unless each fits the other's track
        done = np.zeros(len(doubted), bool)
        for k in np.argsort(both, axis=None)[:int(np.isfinite(both).sum())]:
            i, j = divmod(int(k), len(doubted))
            if i < j and not (done[i] or done[j]):
                pi, pj = doubted[i], doubted[j]
                rows[pi], rows[pj] = rows[pj], rows[pi]
                far[pi], far[pj] = fits[i, j], fits[j, i]
                done[[i, j]] = True

    def _reclaim(self, rows: np.ndarray, points: np.ndarray, looks: np.ndarray, tall: np.ndarray,
                 predicted: np.ndarray, areas: np.ndarray, absent: np.ndarray, taken: np.ndarray,
                 sigmas: np.ndarray, far: np.ndarray, now: float) -> np.ndarray:
        """A person left without a track takes back a lost, confirmed track that looks like
        them (what they wear within ``appearance_scale``) and is near enough with its tolerance
        widened ``appearance_reach`` times: a person who returns farther from where their
        track coasted than the keypoints' gate allows keeps their id. So may a person matched
        to a track whose colours are more than ``appearance_doubt`` scales from theirs, where
        the lost track's lie nearer by at least :data:`_DOUBT_MARGIN` scales on the limbs
        the person and both tracks have (:func:`appearance.distances_alike`), or else on each
        track's own limbs in this frame and the track's last too (a limb only one track has
        may be misread for a frame), or at once where the person shares fewer than two limbs
        with both: someone who comes out from behind a neighbour, where the neighbour's track
        is nearer than their own coasting one, goes back to their own (the neighbour's track is
        then unmatched, as the neighbour is now hidden), if they are ``tall`` (at least
        ``appearance_min_height`` pixels in the frame: a smaller person's limbs are a few
        pixels wide, their colours mostly what lies around them). Either way, a track is taken
        back so only where its person was seen that tall at some time (one that only ever
        followed a small or partial pose, a piece of someone in a crowd, has colours read from
        a few pixels: in val2017-dev 7 people were moved onto such tracks). ``far``: each
        person's colour distance to their track, kept true for those who change track; ``now``:
        this frame's time. The tracks people left so: the caller offers them again."""
        c = self.config
        none = np.zeros(0, np.int64)
        # a lost track whose person was never seen tall has colours read from a few pixels: none to go by
        free = np.flatnonzero(~taken & (absent > 1e-9) & (self._hits >= c.confirm_hits) & self._tall)
        if not len(free):
            return none
        left = rows == -1
        matched = np.flatnonzero(rows >= 0)
        if len(matched):  # (appearance_doubt >= 1: a lost track taken instead looks more like them)
            left[matched[(far[matched] > c.appearance_doubt * c.appearance_scale) & tall[matched]]] = True
        left = np.flatnonzero(left)
        if not len(left):
            return none
        d_idx, t_idx = np.repeat(left, len(free)), np.tile(free, len(left))
        dist = appearance.distance(looks, self._look, d_idx, t_idx)
        wide = _pair_similarity(points, predicted, sigmas, areas * c.appearance_reach ** 2, d_idx, t_idx,
                                c.shared_prior)
        ok = (dist <= c.appearance_scale) & (wide >= c.min_similarity)
        # a doubted person (their distance to the track they have known) moves where the lost track looks more like
        # them than their own on the limbs the two tracks and they all have. Where it does so only on each track's
        # own limbs (a limb one track lacks: a real difference, or the person's limb misread, as val2017-dev 6 under
        # --light 0.3, two legs read on something dark for a frame), they move if that was so in the frame before
        # too (the track's last); where the two tracks share fewer than two limbs with them, at once (train2017-mini
        # 13 of --seeds 10-19 --light 0.3: a person back on their own track shared one limb with both)
        doubt = np.flatnonzero(ok & np.isfinite(far[d_idx]) & (rows[d_idx] >= 0))
        if len(doubt):
            d, own_row = d_idx[doubt], rows[d_idx[doubt]]
            margin = _DOUBT_MARGIN * c.appearance_scale
            own, other = appearance.distances_alike(looks, self._look, d, own_row, t_idx[doubt])
            fair = np.isfinite(own)  # (both NaN or neither: the same limbs)
            with np.errstate(invalid="ignore"):
                shown = other <= own - margin
            hinted = ~shown & (dist[doubt] <= far[d] - margin)  # on each track's own limbs
            again = self._doubted[own_row] == self._last_seen[own_row]
            ok[doubt] = shown | (hinted & (~fair | again))
            wait = own_row[hinted & fair & ~again]
            self._doubted[wait] = now
        if not ok.any():
            return none
        before = rows.copy()
        _solve(rows, d_idx[ok], t_idx[ok], dist[ok] / c.appearance_scale - wide[ok], len(rows), len(self.ids))
        moved = rows != before
        far[moved] = np.nan
        _matched(rows, d_idx[ok], t_idx[ok], dist[ok], far)
        return before[(before >= 0) & moved]

    def _retire(self, rows: np.ndarray, d_idx: np.ndarray, t_idx: np.ndarray, raw: np.ndarray,
                absent: np.ndarray, sigmas: np.ndarray) -> None:
        """End the track a person had while their own was lost, when their own takes them back.

        A person back from behind someone is often given a new id on a poor first pose, until
        their own lost track takes them again (by what they wear, or by the keypoints). The
        new track, then lost for a frame right where they are, its tolerance grown with that
        frame, takes them back in the next, and so on: a person flickering between two ids.
        Such a track is seen in the frame before, not matched in this one, and fits the person
        closely (``raw``, each pair ``d_idx``, ``t_idx``'s similarity, at least
        ``fragment_similarity``); it was born after the track that takes the person was last
        seen, where that track's pose, coasting, could have been then (its tolerance widened
        ``appearance_reach`` times, as for a person who takes a lost track back by what they
        wear): a newcomer who walked in from elsewhere while the person was away, now hidden
        behind them, keeps their track. A track that another person of the frame fits too (its
        gate, ``min_similarity``) is left alone: whose it was, nothing tells. It ends
        (:meth:`_expire` drops it), and :attr:`retired` names it with the id that took its
        person (the offline tracker gives its frames that id where that id is not in them)."""
        c = self.config
        matched = rows[rows >= 0]
        again = absent[matched] > 1e-9
        if not again.any():  # (most frames: nobody taken back)
            return
        back = np.zeros(len(self.ids), bool)  # a track lost before this frame that takes its person again
        back[matched] = again
        taken = np.zeros(len(self.ids), bool)
        taken[matched] = True
        own = np.where(rows >= 0, rows, 0)[d_idx]  # each pair's person's track
        ends = np.flatnonzero((rows[d_idx] >= 0) & back[own] & ~taken[t_idx] & (absent[t_idx] <= 1e-9)
                              & (raw >= c.fragment_similarity) & (self._born[t_idx] > self._last_seen[own]))
        if not len(ends):
            return
        near = np.bincount(t_idx[raw >= c.min_similarity], minlength=len(self.ids))
        ends = ends[near[t_idx[ends]] == 1]  # a track two people of the frame could be: whose, nothing tells
        new, old = t_idx[ends], own[ends]
        then, areas = self._coasted(old, self._born[new] - self._last_seen[old])  # the old track at the birth
        pairs = np.arange(len(ends))
        born_there = _pair_similarity(self._origin[new], then, sigmas, areas * c.appearance_reach ** 2, pairs, pairs,
                                      c.shared_prior) >= c.min_similarity
        new, old = new[born_there], old[born_there]
        if len(new):
            self.retired = list(zip(self.ids[new].tolist(), self.ids[old].tolist(), strict=True))
            self._last_seen[new] = -np.inf  # (seen before any time: dropped as lost too long)

    def _coasted(self, rows: np.ndarray, ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(points (R, K, 2), areas (R,))``: each lost track ``rows`` ``ahead`` seconds after it
        was last seen, its last pose moved on by its decaying body velocity, and the area its
        tolerance has grown to by then (``lost_growth``, ``speed_growth``, as in the matching)."""
        points = self._points[rows] + _coast(self._body[rows], ahead, self.config.coast)[:, None, :]
        return points, self._grown(rows, ahead)

    def _grown(self, rows: Any, gone: np.ndarray) -> np.ndarray:
        """``(R,)`` the area each track ``rows`` (indices or a slice) is compared with after
        ``gone`` seconds unseen: its size grown ``lost_growth`` per second, plus ``speed_growth``
        times the distance its speed covers (the matching's tolerance)."""
        c = self.config
        speed = np.hypot(self._body[rows, 0], self._body[rows, 1])
        return (np.sqrt(_areas(self._points[rows], c.min_area)) * (1.0 + c.lost_growth * gone)
                + c.speed_growth * speed * gone) ** 2

    def _start(self, n: int) -> np.ndarray:
        k = self._k
        first = len(self.ids)
        self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        nan = np.full((n, k, 2), np.nan)
        self._points = np.concatenate([self._points, nan])
        self._velocity = np.concatenate([self._velocity, np.zeros((n, k, 2))])
        self._body = np.concatenate([self._body, np.zeros((n, 2))])
        self._last_seen = np.concatenate([self._last_seen, np.full(n, self._now)])
        self._hits = np.concatenate([self._hits, np.zeros(n, np.int64)])
        self._born = np.concatenate([self._born, np.full(n, self._now)])
        self._origin = np.concatenate([self._origin, nan])
        width = self._fx.shape[1]  # the body's keypoints and the parts' columns
        self._fx = np.concatenate([self._fx, np.full((n, width, 2), np.nan)])
        self._fdx = np.concatenate([self._fdx, np.zeros((n, width, 2))])
        self._look = np.concatenate([self._look, np.full((n, *self._look.shape[1:]), np.nan, np.float32)])
        self._tall = np.concatenate([self._tall, np.zeros(n, bool)])
        self._doubted = np.concatenate([self._doubted, np.full(n, np.nan)])
        return np.arange(first, first + n)

    def _continue(self, rows: np.ndarray, new: np.ndarray, gaps: np.ndarray, fresh: np.ndarray, now: float,
                  looks: np.ndarray | None = None, far: np.ndarray | None = None) -> None:
        """Move each track ``rows`` on to its person's keypoints ``new`` (and with ``looks``,
        what they wear: ``far`` their colour distance to the track, :meth:`_assign`'s; NaN: too
        little to tell)."""
        c = self.config
        if looks is not None:  # a running mean of each limb's colour; a limb first seen is taken as read
            had = self._look[rows]
            read = np.isfinite(looks[..., :1]) & ~(far > c.appearance_keep * c.appearance_scale)[:, None, None]
            mixed = np.where(np.isfinite(had[..., :1]), had + c.appearance_rate * (looks - had), looks)
            self._look[rows] = np.where(read, mixed, had)
        old, vel = self._points[rows], self._velocity[rows]
        seen = np.isfinite(new[..., 0])
        known = seen & np.isfinite(old[..., 0]) & ~fresh[:, None]
        with np.errstate(invalid="ignore"):
            v = (new - old) / gaps[:, None, None]
        a = c.velocity_smoothing
        vel = np.where(known[..., None], a * v + (1 - a) * vel, vel)
        # the body's velocity: the median of the keypoints' (a keypoint that jumped to a neighbour moves it little)
        n_known = known.sum(axis=1)
        body = np.where((n_known > 0)[:, None], _median(np.where(known[..., None], vel, np.nan), n_known),
                        self._body[rows])
        # keypoints not seen now move with the body
        vel = np.where(~known[..., None] & (n_known > 0)[:, None, None], body[:, None, :], vel)
        carried = old + _coast(body, gaps, c.coast)[:, None, :]
        self._points[rows] = np.where(seen[..., None], new, carried)
        if fresh.any():
            self._origin[rows[fresh]] = new[fresh]
        self._velocity[rows] = vel
        self._body[rows] = body
        self._last_seen[rows] = now
        self._hits[rows] += 1

    def _smooth(self, rows: np.ndarray, points: np.ndarray, gaps: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """One Euro in the frame that moves with the body: each keypoint's filtered position is
        first carried by the person's body velocity (its keypoints' median), so walking adds no lag and the filter only
        sees articulation and noise. ``points``: the body's keypoints, then the parts' columns
        (moved by the body's velocity and scaled by its size); ``gaps``: seconds since each
        track's last match."""
        c = self.config
        k = self._k
        x, dx = self._fx[rows], self._fdx[rows]
        if fresh.any():
            x[fresh] = np.nan  # a new track starts from its first pose (x: a copy, read by row)
        carried = x + (self._body[rows] * gaps[:, None])[:, None, :]  # the body's velocity, as just updated
        size = np.sqrt(_areas(points[:, :k], c.min_area))[:, None, None]  # the person's scale, pixels
        dt = gaps[:, None, None]
        x, dx = one_euro_step(carried, dx, points, dt, c.min_cutoff, c.beta, c.d_cutoff, size)
        self._fx[rows], self._fdx[rows] = x, dx
        return x

    def forget(self, track_id: int) -> None:
        """Drop the track of ``track_id`` (if alive): it will never take a person again."""
        self._keep(self.ids != track_id)

    def _keep(self, alive: np.ndarray) -> None:
        if alive.all():
            return
        self.ids, self._points, self._velocity = self.ids[alive], self._points[alive], self._velocity[alive]
        self._body, self._last_seen, self._hits = self._body[alive], self._last_seen[alive], self._hits[alive]
        self._born, self._origin = self._born[alive], self._origin[alive]
        self._fx, self._fdx = self._fx[alive], self._fdx[alive]
        self._look = self._look[alive]
        self._tall = self._tall[alive]
        self._doubted = self._doubted[alive]


def _filtered(people: list[Pose], xy: np.ndarray) -> np.ndarray:
    """``(P, K, 3)`` the people's keypoints with the filtered ``xy`` (``(P, K, 2)``) where it is
    known: a point the tracker could not read (missing, inf, one coordinate) stays as given."""
    out = np.array([p.keypoints for p in people], dtype=np.float64)
    out[..., :2] = np.where(np.isfinite(xy), xy, out[..., :2])
    return out


def answered(person: Pose) -> bool:
    """Whether :meth:`Tracker.update` gives ``person`` back, tracked or not: a keypoint known in
    both coordinates (what a track follows), or a point of a part (a face found alone, passed
    through untracked). A person with neither is left out."""
    seen = np.isfinite(person.keypoints[:, :2]).all(axis=1).any()
    return bool(seen or any(np.isfinite(k[:, :2]).any() for k in person.parts.values()))


def _duplicates(points: np.ndarray, sigmas: np.ndarray, floor: float, first: np.ndarray | None = None,
                second: np.ndarray | None = None, partner: np.ndarray | None = None,
                order: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """``(D,)`` which of a frame's people repeat another of them: a person whose keypoints are
    where another's are, an OKS of at least :data:`_DUPLICATE` over the keypoints both have
    (scaled by the other's size), the other having more keypoints (of two with as many, the
    later in ``order()``, each person's place as :func:`_ranking` gives it, repeats the other;
    without ``order``, the later listed). A bottom-up decoder gives each keypoint to one person,
    but a top-down one (a box found twice) or a merge of two detectors' people can give the same
    person twice: matched as two, the piece could keep the person's track while the person took
    a lost neighbour's. Two people in the same posture one behind the other are seldom
    duplicates: 200 px tall and 10 px apart, their OKS is 0.65-0.95 by posture (median 0.85;
    about 1 in 20 at 0.9 or more); 20 px apart, about 0.6. ``points``: ``(D, K, 2)``, NaN where
    missing; ``first``, ``second``: the pairs of people that may be compared (either way;
    default: every two whose boxes overlap); ``partner``: where given, ``(D,)`` set for each
    repeat to the person it repeats (the closest, where it repeats several)."""
    count = len(points)
    out = np.zeros(count, bool)
    if first is None or second is None:
        box = _boxes(points)
        overlap = _overlap(box, box)
        np.fill_diagonal(overlap, False)
        first, second = np.nonzero(overlap)
    if not len(first):
        return out
    n = np.isfinite(points[..., 0]).sum(axis=1)
    # each pair once, as (piece, whole): the whole has more keypoints, or as many and comes first in the order
    whole_second = n[second] > n[first]
    tie = n[second] == n[first]
    if tie.any():
        whole_second |= tie & _before(second, first, order)
    piece, whole = first[whole_second], second[whole_second]
    if len(piece):
        oks = _pair_similarity(points, points, sigmas, _areas(points, floor), piece, whole, 0.0)
        out[piece[oks >= _DUPLICATE]] = True
        if partner is not None:
            order = np.argsort(oks, kind="stable")  # ascending: each repeat's closest is written last
            keep = oks[order] >= _DUPLICATE
            partner[piece[order][keep]] = whole[order][keep]
    return out


def _pieces(points: np.ndarray, d_idx: np.ndarray, t_idx: np.ndarray, raw: np.ndarray, close: float,
            gate: float, every: tuple[int, int] | None = None,
            worn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            order: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """The people who are a piece of another person of the frame: of two people whose best track
    (highest ``raw`` similarity over the pairs ``(d_idx, t_idx)``) is the same, with at most
    :data:`_PIECE_SHARED` keypoints in common, the one with fewer keypoints (of two with as many,
    the later in ``order()`` as :func:`_duplicates` takes it: the one the track fits less, where
    :func:`_ranking` was given the fits) is a piece of the other where the other fits it at
    least ``close`` and the piece at least ``gate``. A decoder that finds a person's head apart
    from their body, or their halves apart, gives two such people: matched as two, the head kept
    the person's track and the body took a lost neighbour's, two matches being worth more than
    one (train2017-mini 18 of ``benchmarks/tracking.py --seeds 10-19``: the two ids traded every
    frame, the head's keypoints on the track going stale while the body had it). Two people who
    overlap share keypoints, and each fits their own track best.

    With ``worn`` (``worn(people, tracks)``: whether each of those people wears the colours of
    the track beside them, within :data:`_PIECE_WORN` scales), a piece may share more keypoints
    where all of its keypoints are the other's too, the other has :data:`_PIECE_TWICE` times as
    many and wears the track's colours, and the piece too fits the track at least ``close``: a
    face found alone and a pose of the same body whose head is a neighbour's (or was found
    twice). The body is the track's person; the face took the track, the body a lost
    neighbour's (train2017-mini 10 of ``--seeds 10-19``). The piece's own colours say nothing
    (a face has no limb to read); its close fit is what makes it this person's and not a
    stranger's beside them (a neighbour's legs 30 px from the person's fit loosely). Without
    colours two people in a crowd, one's head before the other's body, look the same.

    ``points``: ``(D, K, 2)``, NaN where missing; ``every``: ``(D, T)`` where the pairs are
    every pair, detection-major (read as a matrix: the few-people case, most frames). The
    indices of the pieces."""
    none = np.zeros(0, np.int64)
    if not len(raw):
        return none
    if every is not None:
        by_person = raw.reshape(every)
        best = by_person.argmax(axis=1)
        fit = np.flatnonzero(by_person.max(axis=1) >= max(gate, 1e-12))
        tracks = best[fit].tolist()
        if len(set(tracks)) == len(tracks):  # most frames: every track is at most one person's best
            return none
        best_raw = by_person[np.arange(every[0]), best]
    else:
        by = np.argsort(raw, kind="stable")  # ascending: each person's last write is their best pair
        best = np.full(len(points), -1, np.int64)
        best_raw = np.zeros(len(points))
        best[d_idx[by]], best_raw[d_idx[by]] = t_idx[by], raw[by]
        fit = np.flatnonzero((best >= 0) & (best_raw >= max(gate, 1e-12)))  # (a person no pair has: none)
    count = np.bincount(best[fit], minlength=int(t_idx.max()) + 1)
    fit = fit[count[best[fit]] >= 2]  # people who share their best track with another
    if not len(fit):
        return none
    have = np.isfinite(points[fit, :, 0]).astype(np.int32)
    n = have.sum(axis=1)
    common = have @ have.T
    smaller = n[:, None] < n[None, :]
    tie = n[:, None] == n[None, :]
    if tie.sum() > len(fit):  # (beyond each with themselves)
        smaller |= tie & _before(fit[None, :], fit[:, None], order)
    same = best[fit][:, None] == best[fit][None, :]
    larger_close = best_raw[fit][None, :] >= close
    pair = same & smaller & larger_close
    allowed = common <= _PIECE_SHARED
    if worn is not None:  # the same parts found twice, both fitting the track closely, the larger wearing its colours
        inside = (common == n[:, None]) & (n[None, :] >= _PIECE_TWICE * n[:, None]) & (best_raw[fit] >= close)[:, None]
        p, w = np.nonzero(pair & inside & ~allowed)
        if len(p):
            allowed[p, w] = worn(fit[w], best[fit[w]])
    return fit[(pair & allowed).any(axis=1)]


def _before(a: np.ndarray, b: np.ndarray, order: Callable[[], np.ndarray] | None) -> np.ndarray:
    """Whether each person ``a`` comes before ``b`` (broadcast) in ``order()`` (their places,
    :func:`_ranking`); without ``order``, in the order given."""
    if order is None:
        return a < b
    place = order()
    return place[a] < place[b]


def _sure(found: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``(D,)`` the summed confidence of the keypoints each person with a body keypoint was
    found with (``found``: ``(N, K, 3)`` as given, ``seen``: ``(N, K)`` which are known; an
    unreadable or negative confidence counts 0)."""
    conf = found[..., 2]
    with np.errstate(invalid="ignore"):
        conf = np.where(seen & np.isfinite(conf), np.maximum(conf, 0.0), 0.0)
    return conf[seen.any(axis=1)].sum(axis=1)


def _ranking(points: np.ndarray, sure: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """``(D,)`` each person's place in an order of a frame's people that does not hang on the
    order they were listed in: the one a track fits better first (``fit``, where given), then
    the surer (``sure``: their keypoints' summed confidence), then by where they are (their
    keypoints' mean x, then y; only two poses whose keypoints are alike to the last bit tie,
    and then the order given decides only whose parts and score come back). Which of two
    people alike in size is the person and which their piece or repeat is read from it: the
    same people, listed in another order, get the same ids and poses."""
    counts = np.isfinite(points[..., 0]).sum(axis=1)  # (a point is known in both coordinates or in neither)
    centre = np.nan_to_num(points).sum(axis=1) / np.maximum(counts, 1)[:, None]
    keys = (np.arange(len(points)), centre[:, 1], centre[:, 0], -sure) + (() if fit is None else (-fit,))
    place = np.empty(len(points), np.int64)
    place[np.lexsort(keys)] = np.arange(len(points))
    return place


def _lazy(make: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """``make``, called once, when first asked (most frames never ask). Made three times a
    frame: a closure costs about 0.2 us to make, ``functools.cache`` about 2 us (three of
    them, some 3 % of a ten-person update)."""
    made: list[np.ndarray] = []

    def get() -> np.ndarray:
        if not made:
            made.append(make())
        return made[0]

    return get


def _owners(rows: np.ndarray, d_idx: np.ndarray, t_idx: np.ndarray, raw: np.ndarray, gate: float) -> np.ndarray:
    """``(D,)`` for each fragment (``rows`` :data:`_FRAGMENT`), the person it is a piece of: of
    the tracks matched this frame, the one that fits the fragment best (highest ``raw`` over the
    pairs ``(d_idx, t_idx)``) gives its person, where it passes the ``gate``; -1 elsewhere."""
    owner = np.full(len(rows), -1, np.int64)
    if not len(raw) or not (rows == _FRAGMENT).any():
        return owner
    person = np.full(int(t_idx.max()) + 1, -1, np.int64)  # track row -> the person matched to it
    matched = np.flatnonzero((rows >= 0) & (rows < len(person)))
    person[rows[matched]] = matched
    pick = (rows[d_idx] == _FRAGMENT) & (person[t_idx] >= 0) & (raw >= gate) & (raw > 0)
    order = np.argsort(raw[pick], kind="stable")  # ascending: each fragment's best pair is written last
    owner[d_idx[pick][order]] = person[t_idx[pick][order]]
    return owner


def _merge(whole: Pose, piece: Pose) -> Pose:
    """``whole`` with the keypoints it lacks (and the parts' points) taken from ``piece``, a
    piece of the same person found apart (its head, an arm, a half, a repeat): one person, one
    pose, nothing found lost. Where both have a point, ``whole``'s stays."""

    def known(k: np.ndarray) -> np.ndarray:
        return np.isfinite(k[:, 0]) & np.isfinite(k[:, 1])

    kp = whole.keypoints.copy()
    take = ~known(kp) & known(piece.keypoints)  # (a point of theirs that cannot be read, inf, stays as given
    # only where the piece cannot read it either)
    kp[take] = piece.keypoints[take]
    parts = {name: k.copy() for name, k in whole.parts.items()}
    for name, k in piece.parts.items():
        if name not in parts:
            parts[name] = k.copy()
        elif parts[name].shape == k.shape:
            take = ~known(parts[name]) & known(k)
            parts[name][take] = k[take]
    return whole.replace(kp, parts=parts)


def _matched(rows: np.ndarray, d_idx: np.ndarray, t_idx: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """``out[d] = values[i]`` for each pair ``i`` (``(d_idx[i], t_idx[i])``) that ``rows`` matched:
    a value computed for the candidate pairs, kept for the pairs taken (each pair is listed once)."""
    hit = rows[d_idx] == t_idx
    out[d_idx[hit]] = values[hit]


def _median(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``(T, 2)`` the median over axis 1 of ``values`` (``(T, K, 2)``, NaN: left out), ``count``
    values known per row (at least 1): numpy's ``nanmedian`` without its cost."""
    ordered = np.sort(values, axis=1)  # NaN last
    row = np.arange(len(values))
    return 0.5 * (ordered[row, np.maximum(count - 1, 0) // 2] + ordered[row, np.maximum(count, 1) // 2])


def _solve(rows: np.ndarray, d_idx: np.ndarray, t_idx: np.ndarray, cost: np.ndarray, n_det: int,
           n_trk: int) -> None:
    """The minimum-cost assignment of the candidate pairs ``(d_idx, t_idx)`` written into
    ``rows`` (detection -> track). Every cost is under 1 (``1 - similarity``) and a pair the
    gate forbids costs :data:`_BIG`, 1.3: the assignment maximises the sum over the pairs
    matched of their similarity and 0.3. So a match is worth more than starting a new id, but
    not at any price: with a forbidding cost far above the rest (the number of pairs first), a
    person would leave their own track for a poor lost one so that a newcomer could take theirs;
    with 1 (the similarity alone), a person whose only fit is a track that fits a neighbour
    better would start a new id rather than let the neighbour take a poorer one (on street.avi
    41 ids became 51; from 1.25 up it is 41 again, BENCHMARKS.md). The pairs split into
    groups that share no detection or track (connected components); a group of one pair is
    matched at once, the rest by scipy's ``linear_sum_assignment`` each, on a matrix the size
    of the group. Up to a few hundred people one matrix of all is cheaper (its gated entries
    cost the solver little)."""
    if not len(d_idx):
        return
    from scipy.optimize import linear_sum_assignment

    if n_det * n_trk <= 300 * 300:  # up to a few hundred people one matrix is cheaper than finding the groups
        matrix = np.full((n_det, n_trk), _BIG)
        matrix[d_idx, t_idx] = cost
        r, k = linear_sum_assignment(matrix)
        good = matrix[r, k] < _BIG
        rows[r[good]] = k[good]
        return
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components

    n = n_det + n_trk
    graph = csr_array((np.ones(len(d_idx)), (d_idx, n_det + t_idx)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    group = label[d_idx]
    size = np.bincount(group, minlength=n)
    single = size[group] == 1
    rows[d_idx[single]] = t_idx[single]
    for g in np.unique(group[~single]):
        pick = np.flatnonzero(group == g)
        dd, d_inv = np.unique(d_idx[pick], return_inverse=True)
        tt, t_inv = np.unique(t_idx[pick], return_inverse=True)
        matrix = np.full((len(dd), len(tt)), _BIG)
        matrix[d_inv, t_inv] = cost[pick]
        r, k = linear_sum_assignment(matrix)
        good = matrix[r, k] < _BIG
        rows[dd[r[good]]] = tt[k[good]]
