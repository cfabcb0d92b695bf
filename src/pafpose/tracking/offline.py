"""Tracking a sequence whose later frames are known too (a video file, a folder of frames):
smoothing without lag, short gaps filled and returning people re-linked.

The online :class:`~pafpose.tracking.Tracker` gives the ids (unsmoothed), and a new id that
continues a track ended within ``max_lost`` is re-linked to it from hindsight (its best pose
of the ``window`` frames after its birth, see :meth:`OfflineTracker._relink`); a person given a
new id for a frame or two, whose own track the online tracker found again after, gets that
track's id back, and so does a person given a hidden neighbour's id for a frame or two
(:meth:`OfflineTracker._bridge`); a person given a new id every frame (too
small for their speed: a new track has no velocity) keeps one where three frames show them
moving on steadily (:meth:`OfflineTracker._chain`). Each frame is
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

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pafpose.pose import Pose, Poses
from pafpose.skeleton import Skeleton
from pafpose.tracking import appearance
from pafpose.tracking.base import SequenceTracker
from pafpose.tracking.config import TrackerConfig
from pafpose.tracking.online import (
    PartSlots,
    Tracker,
    _areas,
    _box_areas,
    _boxes,
    _median,
    _overlap,
    _reach,
    similarity,
)

# how far (in person sizes, the square root of the keypoints' box area) a pose may be from the one before it moved
# rigidly, and two steps from each other, for :meth:`OfflineTracker._chain` to take them for one person moving on
_STEADY = 0.2
_CHAIN_REACH = 4.0  # ... and how far a step may go, in the same sizes (a person does not cover four a frame)
# a pose missing more than this share of its layout's keypoints is a part of its person (a half, a head alone), which
# :func:`_complete` makes whole from the same track's other poses (a few keypoints missed at random need nothing)
_PART = 0.25
# :func:`_fit` gathers the frames of up to this many people at once (without parts), and writes more frame by frame
_GATHER_MAX = 16


@dataclass
class _Frame:
    time: float  # in frames
    poses: Poses  # as given (their ids in ``ids``)
    payload: Any
    ids: np.ndarray  # (P,) track id of each person (-1: none)
    keypoints: np.ndarray  # (P, K, 3)
    scores: np.ndarray  # (P,)
    parts: np.ndarray  # (P, columns, 3) the people's parts in PartSlots' columns of this frame's time
    obs: np.ndarray  # (P, K, 4) the keypoints as the fit reads them (:func:`_observations`)
    part_obs: np.ndarray  # (P, columns, 4) the parts likewise
    looks: np.ndarray | None = None  # (P, S, 3) what each wears (:mod:`appearance`; None: not read)
    # read once, when the frame comes, for the comparisons of every frame that holds it (each costs numpy's call)
    seen: np.ndarray = field(init=False)  # (P, K, 2) the keypoints as the matching takes them (:func:`_seen`)
    boxes: np.ndarray = field(init=False)  # (P, 4) their boxes (NaN: none seen)

    def __post_init__(self) -> None:
        self.seen = np.where(self.obs[..., :1] > 0, self.keypoints[..., :2], np.nan)
        self.boxes = _boxes(self.seen) if self.seen.size else np.zeros((len(self.seen), 4))


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

    def __init__(self, config: TrackerConfig | None = None,
                 describe: Callable[[Any, np.ndarray, Skeleton], np.ndarray] | None = None) -> None:
        self.config = config or TrackerConfig()
        self.online = Tracker(replace(self.config, smooth=False), describe)  # describe: as the online Tracker's
        self._frames: deque[_Frame] = deque()
        self._next = 0  # index in _frames of the next frame to give out
        self._parts = PartSlots()
        self._k = 0  # keypoints per person of the frames held (0: none seen yet)
        self._first: dict[int, float] = {}  # id -> the time it was first seen
        self._alias: dict[int, int] = {}  # online id -> the earlier id it was re-linked to
        self._forget_at = 64  # the two's size at which :meth:`_remember` next forgets

    def push(self, poses: Any, payload: Any = None, time_s: float | None = None,
             image: np.ndarray | None = None) -> list[tuple[Any, Poses]]:
        """Add the next frame; the frames now final, in order."""
        c = self.config
        on = self.online
        empty, people, rows, _, _, _, rest, _now, looks, _ = on._track(poses, time_s, image)
        ids = np.concatenate([on.ids[rows], np.full(len(rest), -1, np.int64)])
        on._expire(_now)
        tracked = empty.derive(people + rest)  # as given: each gets its id once, when given out
        k = len(tracked[0].keypoints) if tracked else 0
        out = []
        if k and self._k and k != self._k:  # another skeleton: the held frames end their sequence, as online
            for _ in range(len(self._frames) - self._next):  # (no re-linking: the online tracker has restarted)
                self._bridge()
                out.append(self._give())
            self._frames.clear()
            self._next = 0
            self._parts.clear()
            self._first.clear()  # nobody of the old layout can be re-linked to
            self._alias.clear()
            self._forget_at = 64
        self._k = k or self._k
        if self._alias:
            ids = np.array([self._alias.get(i, i) for i in ids.tolist()], np.int64)
        for ended, took in on.retired if c.relink_similarity < 1.0 else ():  # (1: no hindsight)
            # a track the online tracker ended as the person's interim one when their own took them back: its
            # frames not given out yet are that person's
            ended, took = self._alias.get(ended, ended), self._alias.get(took, took)
            for f in list(self._frames)[self._next:]:
                if not (f.ids == took).any():
                    f.ids[f.ids == ended] = took
        keypoints = np.array([p.keypoints for p in tracked]) if tracked else np.zeros((0, k, 3))
        parts = self._parts.gather(list(tracked)) if c.smooth or c.max_gap else np.zeros((len(tracked), 0, 3))
        scores = np.array([p.score for p in tracked], dtype=np.float64)
        if looks is not None and len(rest):
            looks = np.concatenate([looks, np.full((len(rest), *looks.shape[1:]), np.nan, looks.dtype)])
        self._frames.append(_Frame(self.online.frame_time, tracked, payload, ids.astype(np.int64), keypoints, scores,
                                   parts, _observations(keypoints), _observations(parts), looks))
        self._remember(self._frames[-1])
        while len(self._frames) - 1 - self._next >= self.config.window:
            self._relink()
            self._chain()
            self._bridge()
            out.append(self._give())
        return out

    def _remember(self, frame: _Frame) -> None:
        """Each id's first time (births are what :meth:`_relink` looks at); ids neither alive
        in the online tracker nor in a held frame are forgotten, and so are the aliases of
        online ids no longer alive: memory stays bounded. They are forgotten when the two
        have doubled since the last time (ids are never given again, so one forgotten late
        is never read): a crowd's ids are not all gathered every frame."""
        if len(self._first) + len(self._alias) > self._forget_at:
            alive = set(self.online.ids.tolist())
            for gone in [i for i in self._alias if i not in alive]:
                del self._alias[gone]
            keep = {self._alias.get(i, i) for i in alive}.union(*(f.ids.tolist() for f in self._frames))
            for gone in [i for i in self._first if i not in keep]:
                del self._first[gone]
            self._forget_at = 2 * (len(self._first) + len(self._alias)) + 64
        for track_id in frame.ids.tolist():
            if track_id >= 0:
                self._first.setdefault(track_id, frame.time)

    def _relink(self) -> None:
        """Hindsight: an id born in the frame about to be given out that continues a track
        lost before it (within ``max_lost``) takes that track's id. The online tracker had to
        decide on the returning person's first, often partial pose; here their best pose of
        the next ``window`` frames is compared with the lost track as the online tracker keeps
        it (its last pose moved on by its decaying body velocity, its tolerance grown as in
        the matching). Of several born in one frame, one assignment pairs them with the lost
        tracks (the pairs that fit best in all, whichever was numbered first). The lost track
        is then dropped from the online tracker, so the two never meet again."""
        c = self.config
        frames = list(self._frames)
        centre = frames[self._next]
        born = [i for i in centre.ids.tolist() if i >= 0 and self._first.get(i) == centre.time]
        if not born or c.relink_similarity >= 1.0:
            return
        on = self.online
        later = {i for f in frames[self._next:] for i in f.ids.tolist()}
        shown = np.array([self._alias.get(i, i) for i in on.ids.tolist()], dtype=np.int64)
        lost = np.flatnonzero((on._hits >= c.confirm_hits) & (on._last_seen * c.fps < centre.time)
                              & ~np.isin(shown, list(later)))
        if not len(lost):
            return
        sigmas = np.asarray(centre.poses[0].skeleton.sigmas, dtype=np.float64)
        sim = np.full((len(born), len(lost)), np.nan)
        for b, new in enumerate(born):
            best = max((f for f in frames[self._next:] if (f.ids == new).any()),
                       key=lambda f: int(np.isfinite(f.keypoints[f.ids == new][0, :, 0]).sum()))
            points = _seen(best, np.flatnonzero(best.ids == new))[0]
            guess, areas = on._coasted(lost, np.maximum(best.time / c.fps - on._last_seen[lost], 0.0))
            sim[b] = similarity(points[None], guess, sigmas, areas, c.shared_prior)[0]
            if on._look.shape[1] and (on.ids == new).any():  # what they wear: as in the online matching
                dist = appearance.distance(on._look[on.ids == new], on._look, np.zeros(len(lost), np.int64), lost)
                wide = similarity(points[None], guess, sigmas, areas * c.appearance_reach ** 2, c.shared_prior)[0]
                with np.errstate(invalid="ignore"):
                    sim[b] = np.where(dist <= c.appearance_scale, np.maximum(sim[b], wide), sim[b])
                sim[b] *= appearance.alike(dist, c.appearance, c.appearance_scale, c.appearance_unknown)
        # one assignment (two newcomers after one lost track: the better fit takes it, whichever was numbered first)
        r, k = _best_pairs(sim, c.relink_similarity)
        gone = on.ids[lost[k]].tolist()  # (read before any is dropped: the rows move up as they go)
        for b, j, track_id in zip(r.tolist(), k.tolist(), gone, strict=True):
            new, old = born[b], int(shown[lost[j]])
            self._alias[new] = old
            on.forget(int(track_id))
            for f in frames[self._next:]:
                f.ids[f.ids == new] = old

    def _chain(self) -> None:
        """Hindsight over three frames: an id born in the frame about to be given out takes the
        id that ended in the frame before it, where the ended pose, the born one and the born
        person's own pose in the next frame (their id there, or an id born there) show one
        person moving on steadily: over the keypoints each two share (three or more), each pose
        is the one before it shifted, within :data:`_STEADY` of the person's size (at least
        that of ``min_area``: a far head's few pixels jitter as much as a near one's), by a step of
        at most :data:`_CHAIN_REACH` sizes a frame, and the two steps, per frame of the clock
        (a frame dropped between two doubles a step), agree within as much. A person
        too small for their speed (a head alone above a crowd, moving half its width a frame)
        gets a new online id every frame: a new track has no velocity yet, and the next pose
        is outside its tolerance. The born and the ended are paired by one assignment (the
        best fits first); the ended id's online track, if still held, is dropped, as
        :meth:`_relink` drops the track it re-links to."""
        frames = list(self._frames)
        n = self._next
        if n < 1 or n + 1 >= len(frames):
            return
        before, centre, after = frames[n - 1], frames[n], frames[n + 1]
        born = np.array([r for r, i in enumerate(centre.ids.tolist()) if i >= 0 and self._first.get(i) == centre.time],
                        np.int64)
        if not len(born):
            return
        later = set().union(*(f.ids.tolist() for f in frames[n:]))
        ended = np.array([r for r, i in enumerate(before.ids.tolist()) if i >= 0 and i not in later], np.int64)
        born_ids = set(centre.ids[born].tolist())
        nexts = np.array([q for q, i in enumerate(after.ids.tolist())
                          if i in born_ids or (i >= 0 and self._first.get(i) == after.time)], np.int64)
        if not len(ended) or not len(nexts):
            return
        here = _seen(centre, born)  # (B, K, 2)
        size = np.sqrt(_areas(here, self.config.min_area))
        # steps are per frame of the tracker's clock (a frame dropped between two makes that step twice as long)
        dt1, dt2 = max(centre.time - before.time, 1e-9), max(after.time - centre.time, 1e-9)
        tol, reach = _STEADY * size, _CHAIN_REACH * size
        # the ended and the born within reach of each other (their keypoints' centres), then their steps
        e, b = _within(_seen(before, ended), here, dt1 * reach[None, :])
        step, off = _rigid_steps(_seen(before, ended)[e], here[b])
        step = step / dt1
        good = (off <= tol[b]) & (np.hypot(*step.T) <= reach[b])
        e, b, step = e[good], b[good], step[good]
        # each born person's own pose next: their id in the next frame if they have one there, else a born one
        b2, q = _within(here, _seen(after, nexts), dt2 * reach[:, None])
        own = centre.ids[born][b2] == after.ids[nexts][q]
        has_own = np.zeros(len(born), bool)
        has_own[b2[own]] = True
        keep = own | ~has_own[b2]
        b2, q = b2[keep], q[keep]
        step2, off2 = _rigid_steps(here[b2], _seen(after, nexts)[q])
        step2 = step2 / dt2
        ok2 = (off2 <= tol[b2]) & (np.hypot(*step2.T) <= reach[b2])
        b2, step2 = b2[ok2], step2[ok2]
        if not len(e) or not len(b2):
            return
        # a pair (ended, born) is confirmed by a next pose whose step agrees with theirs
        pe, pq = np.nonzero(b[:, None] == b2[None, :])
        agree = np.hypot(*(step2[pq] - step[pe]).T) <= tol[b[pe]]
        fit = np.full((len(ended), len(born)), np.nan)
        confirmed = np.unique(pe[agree])
        fit[e[confirmed], b[confirmed]] = 1.0 - off[good][confirmed] / np.maximum(tol[b[confirmed]], 1e-9)
        rows, cols = _best_pairs(fit, 0.0)
        on = self.online
        for r, k in zip(rows.tolist(), cols.tolist(), strict=True):
            old, new = int(before.ids[ended[r]]), int(centre.ids[born[k]])
            for i in [int(i) for i in on.ids.tolist() if self._alias.get(i, i) == old and i != new]:
                on.forget(i)  # the ended id's own online track never takes anyone again
            self._alias[new] = old
            for f in frames[n:]:
                f.ids[f.ids == new] = old

    def _bridge(self) -> None:
        """Hindsight within the window: a person of the frame about to be given out whose id
        is not seen on both sides of it (a new id for a frame or two, an id that ends here)
        takes the id of a track missing from this frame but seen both before it and after it
        (within the window), where the track's pose interpolated between the two sides (its
        whole pose, where a side found a part of the person: :func:`_complete`) fits
        them (its similarity, weighed by what they wear as in the online matching, at least
        ``relink_similarity``). This is a person given a new id for a frame or two (a poor
        pose, a turn the prediction missed) whose own track the online tracker found again
        after: :meth:`_relink` cannot give them that track, as it is seen again later. A
        person on an id born here, whose run of frames ends before the free track comes back,
        is judged on the run's frames after the first, and where each fits, the whole run
        takes the track (:meth:`_born_runs`, also for an id back after longer than the
        window): a person back from behind someone on a poor first pose.

        So does a person on an id seen before and after, but not in the frame just before (a
        run of that id between gaps: a person given a hidden neighbour's track for a frame or
        two, out of a merged or poor pose), for the whole run, where the free track is seen just
        before the run and just after it, in none of its frames, and fits the person on the id
        in every frame of the run better than the id's own last pose (its tolerance grown with
        the frames since, each weighed by what they wear; :meth:`_continues`): a neighbour back
        for a frame keeps their id. Only the held frames' ids change; the online tracker's
        state is left as it is. Only people and tracks within reach of each other are compared
        (in a crowd with missed detections, many come back after a gap)."""
        c = self.config
        frames = list(self._frames)
        centre = frames[self._next]
        past, ahead = frames[:self._next], frames[self._next + 1:]
        if not past or not ahead or c.relink_similarity >= 1.0 or not (centre.ids >= 0).any():
            return
        ids = centre.ids.tolist()
        beside = set(past[-1].ids.tolist()) & set(ahead[0].ids.tolist())
        if all(i < 0 or i in beside for i in ids):  # everyone seen in the frames just before and after: the usual case
            return
        seen_before = set().union(*(f.ids.tolist() for f in past))
        seen_after = set().union(*(f.ids.tolist() for f in ahead))
        free = np.array(sorted((seen_before & seen_after) - set(ids) - {-1}), np.int64)
        if not len(free):
            return
        just_before = set(past[-1].ids.tolist())
        back = [r for r, i in enumerate(ids) if i not in just_before and i in seen_before
                and i in seen_after]  # on an id seen around, after a gap: a run between gaps
        sigmas = np.asarray(centre.poses[0].skeleton.sigmas, dtype=np.float64)
        if back:  # ... worth a look only near a free track seen just before (in a crowd with missed detections,
            # most people coming back after a gap are near none)
            near = np.flatnonzero(_lookup(free, past[-1].ids)[1])
            if len(near):
                last = past[-1].boxes[near]
                close = _overlap(centre.boxes[back], last, _reach(sigmas, _box_areas(last, c.min_area))).any(axis=1)
                back = [r for r, ok in zip(back, close.tolist(), strict=True) if ok]
            else:
                back = []
        loose = np.array(sorted({r for r, i in enumerate(ids) if i >= 0 and not (i in seen_before and i in seen_after)}
                                | set(back)), np.int64)
        if not len(loose):
            return
        # each free track's latest frame before and earliest after (an index in ``frames``), and its pose there
        side = np.full((2, len(free)), -1, np.int64)
        p0, p1 = (np.full((len(free), centre.keypoints.shape[1], 2), np.nan) for _ in range(2))
        for which, indices, out in ((0, range(self._next - 1, -1, -1), p0),
                                    (1, range(self._next + 1, len(frames)), p1)):
            for index in indices:  # the nearest first, until each track has its side (most, in the next frame)
                f = frames[index]
                if not len(f.ids):  # (a frame without people holds no keypoints' layout)
                    continue
                pos, hit = _lookup(free, f.ids)
                hit &= side[which, pos] < 0
                side[which, pos[hit]] = index
                out[pos[hit]] = f.seen[hit]
                if (side[which] >= 0).all():
                    break
        times = np.array([f.time for f in frames])
        t0, t1 = times[side[0]], times[side[1]]
        _complete(frames, free, side[0], p0, range(self._next - 1, -1, -1), before=True)
        _complete(frames, free, side[1], p1, range(self._next + 1, len(frames)), before=False)
        guess, areas = _between(p0, p1, t0, t1, centre.time, c)
        # only the free tracks within reach of someone loose (the others cannot pass relink_similarity) go on
        keep = _overlap(centre.boxes[loose], _boxes(guess), _reach(sigmas, areas)).any(axis=0)
        if not keep.any():
            return
        free, guess, areas = free[keep], guess[keep], areas[keep]
        p0, p1, t0, t1 = p0[keep], p1[keep], t0[keep], t1[keep]
        sim = similarity(_seen(centre, loose), guess, sigmas, areas, c.shared_prior)  # (L, F)
        born = self._born_runs(loose, ids, seen_before, seen_after, free, (p0, p1, t0, t1), sim, sigmas)
        keep = (sim >= c.relink_similarity).any(axis=0)  # what they wear only lowers a fit: the others are out
        if not keep.any():
            return
        free, sim, p0, p1, t0, t1 = free[keep], sim[:, keep], p0[keep], p1[keep], t0[keep], t1[keep]
        looked = centre.looks is not None and bool(c.appearance)
        if looked:  # what the track's person wore in the frames before
            d_idx, t_idx = np.divmod(np.arange(len(loose) * len(free)), len(free))
            free_looks = _worn(past, free, centre.looks.shape[1:])
            worn = centre.looks[loose]  # (a copy: indexed by an array)
            if born:  # a run's person: what they wore over the run (its first pose is often too poor to read)
                for j, (run, _) in born.items():
                    worn[j] = _worn(run, np.array([ids[loose[j]]]), centre.looks.shape[1:])[0]
            dist = appearance.distance(worn, free_looks, d_idx, t_idx)
            sim = sim * appearance.alike(dist, c.appearance, c.appearance_scale,
                                         c.appearance_unknown).reshape(sim.shape)
        runs: dict[int, list[_Frame]] = {}  # by row of ``loose``: the frames of a run between gaps
        returning = set(back)
        for j, r in enumerate(loose.tolist()):
            i = ids[r]
            if r not in returning:
                continue
            # a run between gaps: only a free track seen just before it may take it (most loose people in a crowd
            # with missed detections fit none: nothing more is computed for them)
            candidates = (sim[j] >= c.relink_similarity) & np.isin(free, past[-1].ids)
            if not candidates.any():
                sim[j] = np.nan
                continue
            end = self._next
            while end < len(frames) and (frames[end].ids == i).any():
                end += 1
            run = frames[self._next:end]  # ... and seen just after it, and in none of its frames
            if end < len(frames):
                candidates &= np.isin(free, frames[end].ids) & ~np.isin(free, np.concatenate([f.ids for f in run]))
            else:
                candidates[:] = False
            last = next(f for f in reversed(past) if (f.ids == i).any())  # the id's own last pose before the run
            mine = _seen(last, np.flatnonzero(last.ids == i)[:1])
            if candidates.any():
                worn = _worn(past, np.array([i]), centre.looks.shape[1:]) if looked else None
                for t in np.flatnonzero(candidates).tolist():  # the run's person, frame by frame, fits this
                    free_worn = free_looks[t:t + 1] if looked else None
                    sides = (p0[t:t + 1], p1[t:t + 1], t0[t:t + 1], t1[t:t + 1], free_worn)
                    candidates[t] = all(self._continues(f, i, (last, mine, worn), sides, sigmas,
                                                        sim[j, t] if f is centre else None) for f in run)
            sim[j] = np.where(candidates, sim[j], np.nan)
            runs[j] = run
        r, k = _best_pairs(sim, c.relink_similarity)
        for j, track in zip(r.tolist(), k.tolist(), strict=True):
            if j in born and int(free[track]) in born[j][1]:
                runs[j] = born[j][0]
            for f in runs.get(j, [centre]):
                f.ids[f.ids == ids[loose[j]]] = free[track]

    def _born_runs(self, loose: np.ndarray, ids: list[int], seen_before: set[int], seen_after: set[int],
                   free: np.ndarray, sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], sim: np.ndarray,
                   sigmas: np.ndarray) -> dict[int, tuple[list[_Frame], set[int]]]:
        """For :meth:`_bridge`: the loose people on an id not seen in the held frames before
        the one about to be given out (new, or back after longer than the window), whose whole
        life in the held frames is a run of two frames or more from here that ends before a
        free track comes back, and who fit that track's interpolated pose
        (``sides``: each free track's points and times on both sides, as :func:`_between`
        takes them) at least ``relink_similarity`` in every frame of the run after the first:
        ``{row of loose: (the run's frames, those free ids)}``, and ``sim`` (loose by free) is
        raised for them to the poorest of those fits (what they wear is then read over the
        run, by :meth:`_bridge`). The online tracker had to judge the person on their first
        pose back, often the poorest (a few keypoints, half hidden); the run is judged on the
        rest, every frame of it (someone else crossing the hidden person's path fits for a
        frame or two, not all along). A run that does not fit all along is left to the
        frame-by-frame judgement of :meth:`_bridge`, as before: each frame, when given out,
        on its own pose."""
        c = self.config
        frames = list(self._frames)
        out: dict[int, tuple[list[_Frame], set[int]]] = {}
        p0, p1, t0, t1 = sides
        for j, r in enumerate(loose.tolist()):
            i = ids[r]
            if i in seen_before or i not in seen_after:
                continue
            end = self._next + 1
            while end < len(frames) and (frames[end].ids == i).any():
                end += 1
            if end >= len(frames) or any((f.ids == i).any() for f in frames[end:]):
                continue  # the run goes on past the frames held, or the id comes back after a gap
            run = frames[self._next:end]
            apart = ~np.isin(free, np.concatenate([f.ids for f in run]))  # a free track seen in the run is not them
            if not apart.any():
                continue
            poorest = np.full(int(apart.sum()), np.inf)
            for f in run[1:]:
                guess, areas = _between(p0[apart], p1[apart], t0[apart], t1[apart], f.time, c)
                fit = similarity(_seen(f, np.flatnonzero(f.ids == i)[:1]), guess, sigmas, areas, c.shared_prior)[0]
                poorest = np.minimum(poorest, fit)
            fits = poorest >= c.relink_similarity
            if fits.any():
                columns = np.flatnonzero(apart)[fits]
                sim[j, columns] = np.fmax(sim[j, columns], poorest[fits])
                out[j] = (run, set(free[columns].tolist()))
        return out

    def _continues(self, frame: _Frame, i: int, own: tuple[_Frame, np.ndarray, np.ndarray | None],
                   free: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], sigmas: np.ndarray,
                   free_fit: float | None) -> bool:
        """Whether the person on id ``i`` in ``frame`` (of a run of that id between gaps) is
        rather a free track's than the person ``i`` followed: the track's pose, known as ``free``
        on both sides of the run (its points, made whole by :func:`_complete`, and times as
        :func:`_between` takes them, and what its person wore), interpolated to the frame, fits them
        (at least ``relink_similarity``; ``free_fit``: that fit already computed) better than
        ``i``'s own last pose (``own``: its frame, its points, its tolerance grown with the time
        since); each weighed by what its person wore (the last of ``own`` and of ``free``:
        :func:`_worn`; None: not read)."""
        c = self.config
        person = np.flatnonzero(frame.ids == i)[:1]
        here = _seen(frame, person)
        read = frame.looks is not None and bool(c.appearance)

        def alike(worn: np.ndarray | None) -> float:
            if not read or worn is None or frame.looks.shape[1:] != worn.shape[1:]:
                return 1.0
            zero = np.zeros(1, np.int64)
            return float(appearance.alike(appearance.distance(frame.looks[person], worn, zero, zero), c.appearance,
                                          c.appearance_scale, c.appearance_unknown)[0])

        if free_fit is None:
            p0, p1, t0, t1, free_worn = free
            guess, area = _between(p0, p1, t0, t1, frame.time, c)
            free_fit = float(similarity(here, guess, sigmas, area, c.shared_prior)[0, 0]) * alike(free_worn)
            if free_fit < c.relink_similarity:
                return False
        last, mine, worn = own
        grown = (np.sqrt(_areas(mine, c.min_area))
                 * (1.0 + c.lost_growth * max(frame.time - last.time - 1.0, 0.0) / c.fps)) ** 2
        return free_fit > float(similarity(here, mine, sigmas, grown, c.shared_prior)[0, 0]) * alike(worn)

    def flush(self) -> list[tuple[Any, Poses]]:
        """The frames still held, in order, with the same hindsight as the others from the
        frames after them that there are. The ids go on if more frames follow (a new
        sequence needs :meth:`reset`)."""
        out = []
        for _ in range(len(self._frames) - self._next):
            self._relink()
            self._chain()
            self._bridge()
            out.append(self._give())
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
        self._first.clear()
        self._alias.clear()
        self._forget_at = 64

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
        for i, (person, track_id) in enumerate(zip(centre.poses, centre.ids.tolist(), strict=True)):
            track_id = None if track_id < 0 else track_id
            out.append(person.replace(keypoints[i], track_id=track_id) if merged is None
                       else person.replace(keypoints[i], track_id=track_id, parts=merged[i]))
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


def _within(first: np.ndarray, second: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: the pairs of poses ``first[i]``, ``second[j]`` (``(N, K, 2)``, NaN where
    missing) whose keypoints' centres lie within ``reach`` (``(len(first), len(second))`` or
    broadcast to it; and a half more) of each other."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pose without a keypoint: NaN, quietly
        a, b = np.nanmean(first, axis=1), np.nanmean(second, axis=1)
    near = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]) <= 1.5 * reach
    return np.nonzero(near)


def _rigid_steps(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(steps (P, 2), off (P,))``: for each pair of poses ``first[p]``, ``second[p]``
    (``(P, K, 2)``, NaN where missing), the median step over the keypoints both have, and the
    median distance of those keypoints from where that step alone puts them (inf where they
    share fewer than three)."""
    moves = second - first
    have = np.isfinite(moves[..., 0])
    count = have.sum(axis=1)
    step = _median(np.where(have[..., None], moves, np.nan), np.maximum(count, 1))
    dev = np.hypot(moves[..., 0] - step[:, None, 0], moves[..., 1] - step[:, None, 1])
    off = _median(np.stack([dev, dev], axis=-1), np.maximum(count, 1))[:, 0]
    return np.nan_to_num(step), np.where(count >= 3, off, np.inf)


def _best_pairs(sim: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, columns)`` of the pairs that maximise the similarity ``sim`` summed over the
    pairs of at least ``threshold`` (each row and column once). A pair below it counts nothing,
    so two that would be refused cannot together outweigh one that would be taken."""
    from scipy.optimize import linear_sum_assignment

    gain = np.where(sim >= threshold, sim, 0.0)  # NaN compares False: nothing
    r, k = linear_sum_assignment(-gain)
    ok = sim[r, k] >= threshold
    return r[ok], k[ok]


def _lookup(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pos, hit)``: where each of ``values`` lies in ``ids`` (sorted, not empty), and whether
    it is there (``ids[pos] == values``)."""
    pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return pos, ids[pos] == values


def _seen(frame: _Frame, rows: Any) -> np.ndarray:
    """``(len(rows), K, 2)`` the keypoints of the people ``rows`` of ``frame``, NaN in both
    coordinates where either is not finite (as the online matching takes them); ``rows`` an
    array of rows, so a copy."""
    return frame.seen[rows]


def _between(p0: np.ndarray, p1: np.ndarray, t0: np.ndarray, t1: np.ndarray, at: float,
             c: TrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, K, 2), areas (N,))``: tracks seen as ``p0`` at times ``t0`` and ``p1`` at
    ``t1`` (frames), interpolated to ``at`` (a keypoint one side lacks: the other side's), and
    their areas, the tolerance grown with the seconds from the nearer side, as for a lost track."""
    w = ((at - t0) / np.maximum(t1 - t0, 1e-9))[:, None, None]
    both = np.isfinite(p0) & np.isfinite(p1)
    guess = np.where(both, p0 + w * (p1 - p0), np.where(np.isfinite(p0), p0, p1))
    gone = np.maximum(np.minimum(at - t0, t1 - at) - 1.0, 0.0) / c.fps
    return guess, (np.sqrt(_areas(guess, c.min_area)) * (1.0 + c.lost_growth * gone)) ** 2


def _complete(frames: list[_Frame], ids: np.ndarray, start: np.ndarray, points: np.ndarray,
              order: Iterable[int], before: bool) -> None:
    """Fill in place the keypoints each track ``ids`` (sorted) lacks in ``points`` (``(N, K,
    2)``, its pose in the frame ``start``, an index in ``frames``), where that pose is a part of
    the person (:data:`_PART`), from its poses in the frames farther from the centre
    (``order``: the indices away from it; ``before``: the frames before ``start``, else after),
    each moved by the median shift of the keypoints the two share: a track is its whole
    person, as the online tracker keeps it, not the part the detector found in one frame. A
    person found as a lower half on one side of a gap and as an upper half in it share no
    keypoint, and no similarity could tell them one person."""
    part = np.isnan(points[..., 0]).sum(axis=1) > _PART * points.shape[1]
    if not part.any():
        return
    order = [i for i in order if len(frames[i].ids)]  # (a frame without people holds no keypoints' layout)
    if not order:
        return
    # the keypoints any of those frames has of each track: a track stops when it lacks none of them (a person
    # whose legs are never seen would read every frame held, in every frame given out)
    pos, hit = _lookup(ids, np.concatenate([frames[i].ids for i in order]))  # every frame's rows at once
    have = np.concatenate([frames[i].obs[:, :, 0] for i in order])[hit]  # (H, K), 1 where seen
    can = (pos[hit][None, :] == np.arange(len(ids))[:, None]).astype(np.float64) @ have > 0  # (N, K)
    bounds = np.cumsum([0, *(len(frames[i].ids) for i in order)])
    for index, a, b in zip(order, bounds[:-1], bounds[1:], strict=True):
        lacking = part & (np.isnan(points[..., 0]) & can).any(axis=1)
        if not lacking.any():
            break
        open_ = lacking & ((index < start) if before else (index > start))
        if not open_.any():
            continue
        f = frames[index]
        mine = hit[a:b] & open_[pos[a:b]]
        if not mine.any():
            continue
        rows, tracks = np.flatnonzero(mine), pos[a:b][mine]
        there = _seen(f, rows)  # (H, K, 2)
        apart = points[tracks] - there
        shared = np.isfinite(apart[..., 0]).sum(axis=1)
        shift = np.where((shared > 0)[:, None], _median(apart, shared), np.nan)  # none in common: nothing filled
        fill = np.isnan(points[tracks]) & np.isfinite(there + shift[:, None])
        points[tracks] = np.where(fill, there + shift[:, None], points[tracks])


def _worn(frames: list[_Frame], ids: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(len(ids), *shape)`` the median over ``frames`` of what each of the people ``ids``
    (sorted) wore (:mod:`appearance`; NaN where never read)."""
    held = [f for f in frames if f.looks is not None and f.looks.shape[1:] == shape]
    worn = np.full((max(len(held), 1), len(ids), *shape), np.nan, np.float32)
    for j, f in enumerate(held):
        pos, hit = _lookup(ids, f.ids)
        worn[j, pos[hit]] = f.looks[hit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a limb never seen: NaN, quietly
        return np.nanmedian(worn, axis=0)


def _observations(points: np.ndarray) -> np.ndarray:
    """``(..., 4)``: whether each point (``(..., 3)``, NaN or inf: not seen) was seen, and
    its x, y and score where it was (0 where not): computed once per frame, when it comes,
    for all the fits that read it."""
    have = np.isfinite(points[..., 0]) & np.isfinite(points[..., 1])
    out = np.zeros((*points.shape[:-1], 4))
    out[..., 0] = have
    out[..., 1:][have] = points[have]
    return out


def _fit(frames: list[_Frame], ids: np.ndarray, at: float, window: int, both_sides: np.ndarray) -> _Fit:
    """The keypoints and parts of the people ``ids`` (sorted) at time ``at`` from a weighted
    local quadratic fit over the frames within ``window``, and their scores. A keypoint seen
    once is itself; NaN where it has no observation (where ``both_sides``: none before or none
    after ``at``)."""
    near = [f for f in frames if abs(f.time - at) <= window]
    k = next((f.keypoints.shape[1] for f in near if len(f.ids)), 0)
    width = max((f.parts.shape[1] for f in near), default=0)  # the latest frame's parts' columns
    n, f_count = len(ids), len(near)
    full = [(i, f) for i, f in enumerate(near) if len(f.ids)]
    if not (n and full):
        body, present, scores = np.zeros((f_count, n, k, 4)), np.zeros((f_count, n), bool), np.zeros((f_count, n))
        parts = np.zeros((f_count, n, width, 4))
    else:  # every frame's people's rows looked up at once
        sizes = [len(f.ids) for _, f in full]
        all_ids = np.concatenate([f.ids for _, f in full])
        pos, hit = _lookup(ids, all_ids)
        frame_of = np.repeat([i for i, _ in full], sizes)
        present, scores = np.zeros((f_count, n), bool), np.zeros((f_count, n))
        present[frame_of[hit], pos[hit]] = True
        scores[frame_of[hit], pos[hit]] = np.concatenate([f.scores for _, f in full])[hit]
        if n <= _GATHER_MAX and not width:  # a few people: one gather from the frames stacked (a few calls in all)
            source = np.zeros(f_count * n, np.int64)  # the row of each (frame, person) in the stack; 0: absent
            source[frame_of[hit] * n + pos[hit]] = np.flatnonzero(hit) + 1
            body = np.concatenate([np.zeros((1, k, 4))] + [f.obs for _, f in full]).take(source, axis=0)
            body = body.reshape(f_count, n, k, 4)
        else:  # more: each frame's rows written in place (the gather's two copies of every row, each over 200 kB
            # from about 20 people on, cost twice this at 20 people and three times at 50), the rows of people not
            # wanted onto one spare row left out of the fit (picking the wanted rows first copies each frame's)
            dest = np.where(hit, pos, n)
            body, parts = np.zeros((f_count, n + 1, k, 4)), np.zeros((f_count, n + 1, width, 4))
            bounds = np.cumsum([0, *sizes])
            for (i, f), a, b in zip(full, bounds[:-1], bounds[1:], strict=True):
                body[i, dest[a:b]] = f.obs
                if width:  # each frame's parts fill its first columns (the columns only grow)
                    parts[i, dest[a:b], :f.part_obs.shape[1]] = f.part_obs
            # the spare row left out of the view the fit reads (a wider product could round differently in BLAS)
            body, parts = body[:, :n], parts[:, :n]
    t = np.array([f.time - at for f in near])
    g = np.exp(-0.5 * (t / max(window / 2.0, 1.0)) ** 2)  # (F,)
    points, conf = _local_fit(body, t, g, both_sides)
    if width:
        part_points, part_conf = _local_fit(parts, t, g, both_sides)
    else:
        part_points, part_conf = np.zeros((n, 0, 2)), np.zeros((n, 0))
    seen = g[:, None] * present
    score = (seen * scores).sum(axis=0) / np.maximum(seen.sum(axis=0), 1e-12)
    return _Fit(points, conf, score, part_points, part_conf)


def _local_fit(obs: np.ndarray, t: np.ndarray, g: np.ndarray, both_sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, K, 2), confidences (N, K))`` at time 0 of the observations ``obs``
    (``(F, N, K, 4)`` as :func:`_observations` gives them) at times ``t``, weighted by ``g``
    in time: a local quadratic fit per point. Every weighted sum over the frames (the moments
    of time, the right-hand sides, the confidence) comes from one matrix product, and each
    3 x 3 system (symmetric, its entries the moments) is solved for its first unknown alone,
    the value at time 0, from the cofactors of its first row: a few array operations for every
    point, whatever their number."""
    powers = g[:, None] * t[:, None] ** np.arange(5)[None, :]  # (F, 5): g, g t, g t², g t³, g t⁴
    sums = (powers.T @ obs.reshape(len(t), -1)).reshape(5, *obs.shape[1:])  # (5, N, K, 4): the power first
    m = sums[..., 0]  # moments of the frames seen, (5, N, K)
    b = sums[:3, ..., 1:3]  # (3, N, K, 2): the right-hand sides of x and y
    m0 = m[0]
    ridge = 1e-3 * np.maximum(m0, 1e-9)  # short runs stay near linear
    a00, a01, a02 = m0 + 1e-9 * np.maximum(m0, 1e-9), m[1], m[2]
    a11, a12, a22 = m[2] + ridge, m[3], m[4] + ridge
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a11 * a02
    have = obs[..., 0]
    count = have.sum(axis=0)  # (N, K)
    ok = count >= 2
    if both_sides.any():
        sides = (have[t < 0] > 0).any(axis=0) & (have[t > 0] > 0).any(axis=0)
        ok &= sides | ~both_sides[:, None]
    det = np.where(ok, a00 * c00 + a01 * c01 + a02 * c02, 1.0)  # the systems not ok are dropped
    value = (b[0] * c00[..., None] + b[1] * c01[..., None] + b[2] * c02[..., None]) / det[..., None]
    points = np.where(ok[..., None], value, np.nan)
    one = (count == 1) & ~both_sides[:, None]
    if one.any():  # seen once: itself
        points[one] = b[0][one] / m0[one][:, None]
    conf = sums[0, ..., 3] / np.maximum(m0, 1e-12)
    return points, conf


def track_offline(frames: Iterable[Any], config: TrackerConfig | None = None) -> Iterator[Poses]:
    """Each frame's tracked people, for a whole sequence of per-frame people (offline mode)."""
    tracker = OfflineTracker(config)
    for poses in frames:
        for _, out in tracker.push(poses):
            yield out
    for _, out in tracker.flush():
        yield out
