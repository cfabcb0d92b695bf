"""Step 2: for every limb, the PAF line integral of all candidate pairs at once (bilinear
sampling), the original's criteria, and greedy one-to-one matching."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pafpose.decoder.config import DecoderConfig
from pafpose.decoder.peaks import Peaks, _all_finite
from pafpose.fields import FieldSpec


@dataclass
class Connections:
    """Matched limbs of one image: peak ``a[i]`` joins peak ``b[i]`` by limb ``limb[i]``."""

    limb: np.ndarray
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray


def _bilinear(table: np.ndarray, h: int, w: int, limb: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear PAF vectors of ``limb`` at (x, y), border-clamped.

    ``table`` is ``(L * H * W,)`` complex: each limb's field as ``x + iy``, so that one
    scalar gather fetches both components. Returns complex, shaped like ``x``.
    """
    x = np.minimum(np.maximum(x, 0.0), w - 1.0)  # np.clip's Python wrapper costs more than these
    y = np.minimum(np.maximum(y, 0.0), h - 1.0)
    x0 = np.minimum(x.astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(h - 2, 0))
    fx = x - x0
    fy = y - y0
    i = (limb * h + y0) * w + x0
    dx, dy = int(w > 1), w * int(h > 1)
    v00, v01, v10, v11 = table[i], table[i + dx], table[i + dy], table[i + dy + dx]
    top = v00 + (v01 - v00) * fx
    bot = v10 + (v11 - v10) * fx
    return top + (bot - top) * fy


_FEW_PAIRS = 500  # up to this many candidate pairs, limbs are sampled in one pass (measured crossover ~600)


@functools.lru_cache(maxsize=32)
def _sample_chunks(n: int, misses: int) -> tuple[np.ndarray, ...]:
    """Fractions along the limb of ``n`` samples, in the chunks they are taken in.

    Exact early rejection: samples are taken in chunks of ``misses + 1``, spread along the
    limb, and a pair is dropped as soon as more than ``misses`` of its samples fail; most
    cross-person pairs cost 2 samples instead of 10.
    """
    t = np.linspace(0.0, 1.0, n)
    order = np.argsort(_spread(n))
    c = misses + 1
    chunks = [order[:c], order[c:2 * c], order[2 * c:]] if 3 * c <= n else [order]
    return tuple(t[chunk] for chunk in chunks if len(chunk))


@functools.lru_cache(maxsize=32)
def _spread(n: int) -> np.ndarray:
    """A rank per sample index 0..n-1 such that low ranks are spread evenly along the limb."""
    rank = np.empty(n, dtype=np.int64)
    taken: list[int] = []
    for k in (2, 3, 5, 9, n):
        for i in np.round(np.linspace(0, n - 1, k + 2)[1:-1]).astype(np.int64).tolist():
            if i not in taken:
                taken.append(i)
    taken += [i for i in range(n) if i not in taken]
    rank[taken] = np.arange(n)
    return rank


def _pairs(peaks: Peaks, spec: FieldSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (limb, peak a, peak b) candidate, vectorised over limbs."""
    starts = np.searchsorted(peaks.part, np.arange(spec.num_keypoints + 1))
    counts = np.diff(starts)
    ka, kb = spec.limb_index[:, 0], spec.limb_index[:, 1]
    na, nb = counts[ka], counts[kb]
    sizes = na * nb
    limb = np.repeat(np.arange(len(ka)), sizes)
    r = np.arange(len(limb)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    nbl = nb[limb]
    return limb, starts[ka][limb] + r // nbl, starts[kb][limb] + r % nbl


def score_limbs(pafs: np.ndarray, peaks: Peaks, spec: FieldSpec, config: DecoderConfig | None = None) -> Connections:
    """Score every candidate pair of every limb by its PAF line integral, then match greedily.

    A pair is kept when strictly more than ``paf_min_fraction`` of its samples project above
    ``paf_threshold`` and its mean projection plus the distance prior is positive. Pairs are
    then taken by descending score, each peak used at most once per limb.
    """
    cfg = config or DecoderConfig()
    pafs = np.asarray(pafs, dtype=np.float32)
    if not _all_finite(pafs):
        pafs = np.nan_to_num(pafs, nan=0.0, posinf=0.0, neginf=0.0)
    limb, ia, ib = _pairs(peaks, spec)
    project, length = _projector(pafs, peaks, spec, limb, ia, ib)
    if cfg.paf_samples_per_cell > 0:
        sel, hits, mean, need = _sample_by_length(project, length, cfg)
    else:
        sel, hits, mean, need = _sample_with_early_rejection(project, len(limb), cfg)
    score = mean
    if cfg.distance_prior > 0:
        score = mean + np.minimum(cfg.distance_prior * pafs.shape[1] / length[sel] - 1.0, 0.0)
    good = (hits >= need) & (score > 0)
    sel, score = sel[good], score[good]
    return _match(limb[sel], ia[sel], ib[sel], score, len(peaks.part))


_Projector = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: the pairs kept, and per pair: supporting samples, mean projection, samples needed (or one number for all)
_Sampled = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | int]


def _projector(pafs: np.ndarray, peaks: Peaks, spec: FieldSpec, limb: np.ndarray, ia: np.ndarray,
               ib: np.ndarray) -> tuple[_Projector, np.ndarray]:
    """``project(t, sel)``: PAF . u at fractions ``t`` along the pairs ``sel``; and each pair's length."""
    # Positions as complex numbers: one scalar gather per pair instead of a row gather.
    z = np.empty(len(peaks.part), np.complex64)
    z.real, z.imag = peaks.xy[:, 0], peaks.xy[:, 1]
    pa = z[ia]
    d = z[ib] - pa
    length = np.abs(d)
    h, w = pafs.shape[1:]
    table = np.empty((len(spec.paf_index), h, w), np.complex64)
    table.real, table.imag = pafs[spec.paf_index[:, 0]], pafs[spec.paf_index[:, 1]]
    table = table.reshape(-1)
    u = d / np.maximum(length, 1e-6)
    same = length <= 1e-6
    if same.any():
        # Two peaks in one spot (a tiny person's nose and eye in one cell): every direction
        # fits, so the limb is scored by the field's own strength there.
        v = _bilinear(table, h, w, limb[same], pa[same].real, pa[same].imag)
        u[same] = np.where(np.abs(v) > 0, v / np.maximum(np.abs(v), 1e-12), 1.0)
        length = np.maximum(length, 1e-6)

    def project(t: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """PAF . u at fractions ``t`` ((n, S) or (S,)) along the pairs ``sel``."""
        tt = (t if t.ndim == 2 else t[None, :]).astype(np.float32)
        pts = pa[sel, None] + tt * d[sel, None]
        v = _bilinear(table, h, w, limb[sel, None], pts.real, pts.imag)
        uu = u[sel, None]
        return v.real * uu.real + v.imag * uu.imag

    return project, length


def _sample_by_length(project: _Projector, length: np.ndarray, cfg: DecoderConfig) -> _Sampled:
    """``paf_samples_per_cell > 0``: each pair's own number of samples, all taken at once (every pair kept)."""
    n_max = cfg.paf_samples
    sel = np.arange(len(length))
    n = np.clip(np.ceil(length * cfg.paf_samples_per_cell).astype(np.int64) + 1, 3, n_max)
    j = np.arange(n_max)[None, :]
    valid = j < n[:, None]
    t = np.where(valid, j / np.maximum(n[:, None] - 1, 1), 0.0)
    s = project(t, sel)
    hits = ((s > cfg.paf_threshold) & valid).sum(axis=1)
    mean = np.where(valid, s, 0.0).sum(axis=1) / n
    need = np.floor(cfg.paf_min_fraction * n + 1e-9).astype(np.int64) + 1
    return sel, hits, mean, need


def _sample_with_early_rejection(project: _Projector, n_pairs: int, cfg: DecoderConfig) -> _Sampled:
    """``paf_samples`` samples per pair, in the chunks of :func:`_sample_chunks` (the pairs
    that fail too many are dropped on the way)."""
    n_max = cfg.paf_samples
    sel = np.arange(n_pairs)
    need = math.floor(cfg.paf_min_fraction * n_max + 1e-9) + 1  # 0.29 * 100 = 28.999...
    misses = n_max - need
    fails = np.zeros(n_pairs, dtype=np.int64)
    total = np.zeros(n_pairs, dtype=np.float32)
    chunks = _sample_chunks(n_max, misses)
    if n_pairs <= _FEW_PAIRS:
        # Few pairs (a few people): array operations, not samples, are the cost, so every
        # sample in one pass; the sums are taken chunk by chunk as below, same to the bit.
        sc = project(np.concatenate(chunks), sel)
        fails += (sc <= cfg.paf_threshold).sum(axis=1)
        start = 0
        for t in chunks:
            total += sc[:, start:start + len(t)].sum(axis=1)
            start += len(t)
        sel = sel[fails <= misses]
    else:
        for t in chunks:
            if not len(sel):
                continue
            sc = project(t, sel)
            fails[sel] += (sc <= cfg.paf_threshold).sum(axis=1)
            total[sel] += sc.sum(axis=1)
            sel = sel[fails[sel] <= misses]
    hits = n_max - fails[sel]
    mean = total[sel] / n_max
    return sel, hits, mean, need


def _match(limb: np.ndarray, a: np.ndarray, b: np.ndarray, score: np.ndarray, n_peaks: int) -> Connections:
    """Greedy one-to-one matching per limb, by descending score."""
    order = np.lexsort((-score, limb))
    # one integer per (limb, peak): a peak is used at most once per limb
    slot_a = (limb[order] * n_peaks + a[order]).tolist()
    slot_b = (limb[order] * n_peaks + b[order]).tolist()
    used: set[int] = set()
    keep = []
    for i, (sa, sb) in enumerate(zip(slot_a, slot_b, strict=True)):
        if sa in used or sb in used:
            continue
        used.add(sa)
        used.add(sb)
        keep.append(i)
    k = order[np.array(keep, dtype=np.int64)]
    return Connections(limb[k], a[k], b[k], score[k])
