"""Heatmaps + Part Affinity Fields -> people.

Three steps, the mirror of :mod:`pafpose.encoder`:

1. :func:`find_peaks`: keypoint candidates by 3x3 non-maximum suppression, a threshold, and
   sub-pixel refinement on the field itself (no upsampling of the maps).
2. :func:`score_limbs`: for every limb, the PAF line integral of all candidate pairs at
   once (bilinear sampling), the original's criteria, and greedy one-to-one matching.
3. :func:`assemble`: people grown from limb connections in limb order, merging partial
   people that share no keypoint type; redundant limbs (those closing a cycle, such as
   COCO-18's shoulder-ear) only confirm or extend people, never start one.

Inputs are numpy arrays or torch tensors, ``(C, H, W)`` or batched ``(B, C, H, W)``. For
GPU tensors, peak finding runs on the GPU (the ``O(B K H W)`` step); the PAFs are then
copied to host memory once, since limb scoring is ``O(pairs)`` and its inputs are a few
hundred kilobytes. CPU tensors are read as numpy arrays without a copy: on the CPU,
numpy's peak finding (which looks only at values above the threshold) is several times
faster than PyTorch's dozen whole-map operations (0.4 against 1.4 ms per 256x456 frame).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pafpose.checks import check_number
from pafpose.errors import PafposeError
from pafpose.fields import FieldSpec
from pafpose.pose import Pose, Poses

Refine = Literal["gaussian", "quadratic", "centroid", "none", "upsample"]


@dataclass(frozen=True)
class DecoderConfig:
    """Every threshold of the decoder; defaults chosen by measurement (see BENCHMARKS.md).

    Attributes:
        peak_threshold: heatmap value a peak must exceed. OpenPose uses 0.1; 0.05 scored
            higher on COCO train2017-mini (+0.003 AP at one scale, +0.017 with 4 scales and
            flip, whose averaged maps have lower peaks) and found no extra people on the
            sample photos (BENCHMARKS.md, evaluation ablation).
        refine: sub-pixel refinement of peaks on the field: ``"gaussian"`` (parabola through
            the log of the 3 values per axis: exact for a Gaussian blob), ``"quadratic"``
            (parabola through the values), ``"centroid"`` (3x3 weighted mean), ``"none"``,
            or ``"upsample"`` (the anchors' way: bicubic upsampling by ``upsample_factor``,
            then integer peaks; slow, kept for comparison).
        upsample_factor: map upsampling for ``refine="upsample"``.
        max_peaks_per_part: candidates kept per keypoint type (the strongest); bounds the
            time on pathological maps. ``Poses.truncated`` says when it bit.
        paf_samples: points sampled on each candidate limb (OpenPose: 10); with
            ``paf_samples_per_cell > 0``, the maximum.
        paf_samples_per_cell: if positive, sample ``ceil(length * this) + 1`` points (at
            least 3, at most ``paf_samples``) for a limb ``length`` cells long.
        paf_threshold: a sample counts as supporting the limb above this PAF projection.
        paf_min_fraction: fraction of samples that must support a limb (strictly more).
        distance_prior: OpenPose's penalty ``min(distance_prior * H / length - 1, 0)`` on
            limbs longer than this fraction of the map height ``H``; 0 disables it.
        min_keypoints: people with fewer keypoints are dropped (the CVPR'17 original: 4).
        min_score: people with a lower score (mean of keypoint and limb scores) are dropped.
        fill_missing: complete every person: a keypoint the grouping left out is put at the
            strongest heatmap response near the person (see :func:`fill_missing`), with that
            value as its score. COCO's OKS scores every labelled keypoint and ignores the
            rest, so a located guess can only raise it; off by default, so that plain output
            holds only keypoints that were found (missing = NaN).
        fill_radius: search radius for ``fill_missing``, in typical limb lengths of the
            person per limb between the keypoint and its nearest found neighbour.
    """

    peak_threshold: float = 0.05
    refine: Refine = "gaussian"
    upsample_factor: int = 8
    max_peaks_per_part: int = 100
    paf_samples: int = 10
    paf_samples_per_cell: float = 0.0
    paf_threshold: float = 0.05
    paf_min_fraction: float = 0.8
    distance_prior: float = 0.5
    min_keypoints: int = 4
    min_score: float = 0.2
    fill_missing: bool = False
    fill_radius: float = 1.5

    def __post_init__(self) -> None:
        if self.refine not in ("gaussian", "quadratic", "centroid", "none", "upsample"):
            raise PafposeError(f"unknown refine {self.refine!r}: use gaussian, quadratic, centroid, none or upsample")
        if not isinstance(self.fill_missing, bool):
            raise PafposeError(f"fill_missing must be True or False, got {self.fill_missing!r}")
        for name, (lo, hi, kw) in DECODER_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and not kw.get("integer"):
                object.__setattr__(self, name, float(value))  # 1 for 1.0 is no mistake
            check_number(name, getattr(self, name), lo, hi, **kw)


#: The valid range of each numeric :class:`DecoderConfig` field (the command line checks the same):
#: wide enough for any sensible use, narrow enough that no value costs unbounded time or memory.
DECODER_BOUNDS: dict[str, tuple[float, float, dict[str, bool]]] = {
    "peak_threshold": (0.0, 10.0, {}),  # maps may exceed 1 a little: 1.01 drops every peak
    "upsample_factor": (1, 16, {"integer": True}),
    "max_peaks_per_part": (1, 10_000, {"integer": True}),
    "paf_samples": (2, 1000, {"integer": True}),
    "paf_samples_per_cell": (0.0, 100.0, {}),
    "paf_threshold": (0.0, 10.0, {}),
    "paf_min_fraction": (0.0, 1.0, {"hi_open": True}),
    "distance_prior": (0.0, 100.0, {}),
    "min_keypoints": (0, 1000, {"integer": True}),
    "min_score": (0.0, 10.0, {}),
    "fill_radius": (0.0, 100.0, {"lo_open": True}),
}


@dataclass
class Peaks:
    """Keypoint candidates of one image, sorted by keypoint type.

    Attributes:
        part: ``(P,)`` keypoint index of each peak.
        xy: ``(P, 2)`` sub-pixel position in field cells.
        score: ``(P,)`` heatmap value at the peak.
        truncated: True if some type had more than ``max_peaks_per_part`` candidates.
    """

    part: np.ndarray
    xy: np.ndarray
    score: np.ndarray
    truncated: bool = False


@dataclass
class Connections:
    """Matched limbs of one image: peak ``a[i]`` joins peak ``b[i]`` by limb ``limb[i]``."""

    limb: np.ndarray
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray


# ----------------------------------------------------------------------------- peaks

_NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, -1), (1, 0), (1, 1))


def _offsets(c: np.ndarray, lo: np.ndarray, hi: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parabola vertex along one axis from the values before, at and after the peak.

    ``other`` is the curvature found on the other axis. On a map edge one neighbour is
    missing (NaN); there the blob is taken as isotropic and the other axis' curvature
    completes the fit, so peaks in edge cells are refined too. In a corner cell neither
    axis has both neighbours and the offset stays 0 (error up to half a cell).

    Returns:
        the offset in ``[-0.5, 0.5]`` cells, and this axis' curvature (NaN if unknown).
    """
    both = np.isfinite(lo) & np.isfinite(hi)
    curv = np.where(both, lo - 2.0 * c + hi, np.nan)
    a2 = np.where(both, curv, other)
    near = np.where(np.isfinite(hi), hi, lo)
    sign = np.where(np.isfinite(hi), 1.0, -1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(both, 0.5 * (lo - hi) / a2, -sign * (near - c - a2 / 2.0) / a2)
    off = np.where((a2 < 0) & np.isfinite(off), off, 0.0)
    return np.clip(off, -0.5, 0.5), curv


def _axis_offset(c: float, lo: float, hi: float, other: float) -> tuple[float, float]:
    """:func:`_offsets` for one peak, in Python floats (the same operations, so the same
    results): a handful of edge peaks costs less this way than a dozen array steps."""
    if math.isfinite(lo) and math.isfinite(hi):
        curv = lo - 2.0 * c + hi
        off = 0.5 * (lo - hi) / curv if curv < 0 else 0.0
    else:
        curv = math.nan
        a2 = other
        near, sign = (hi, 1.0) if math.isfinite(hi) else (lo, -1.0)
        off = -sign * (near - c - a2 / 2.0) / a2 if a2 < 0 else 0.0
    if not math.isfinite(off):
        off = 0.0
    return min(max(off, -0.5), 0.5), curv


def _refine(values: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dx, dy) from a (P, 3, 3) window of values (NaN outside the map)."""
    if mode == "none" or len(values) == 0:
        z = np.zeros(len(values))
        return z, z
    if mode == "centroid":
        w = np.nan_to_num(np.maximum(values, 0.0))
        tot = w.sum(axis=(1, 2))
        tot[tot <= 0] = 1.0
        dx = (w[:, :, 2].sum(1) - w[:, :, 0].sum(1)) / tot
        dy = (w[:, 2, :].sum(1) - w[:, 0, :].sum(1)) / tot
        return dx, dy
    cross = values[:, [1, 1, 1, 0, 2], [1, 0, 2, 1, 1]]  # centre, left, right, above, below
    if mode == "gaussian":
        # The log-parabola is exact for Gaussian blobs; where a neighbour is <= 0 (real
        # network maps can dip there) its log is meaningless, so those peaks keep the plain
        # parabola. NaN (outside the map) is fine.
        ok = ~(cross[:, 1:] <= 0).any(axis=1)
        cross = np.where(ok[:, None], np.log(np.maximum(cross, 1e-30)), cross)
    return _parabola(*cross.T)


def _parabola(c: np.ndarray, xl: np.ndarray, xr: np.ndarray, yl: np.ndarray,
              yr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis parabola vertices from the centre and its 4 neighbours (NaN outside the
    map), edges completed by the other axis (:func:`_offsets`)."""
    # Peaks off the map's edges (most): the 3 points per axis, in a few whole-array steps.
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for lo, hi in ((xl, xr), (yl, yr)):
            curv = lo - 2.0 * c + hi
            out.append(np.minimum(np.maximum(np.where(curv < 0, 0.5 * (lo - hi) / curv, 0.0), -0.5), 0.5))
    dx, dy = out
    edge = np.flatnonzero(~np.isfinite(xl + xr + yl + yr))
    if 0 < len(edge) <= _FEW_EDGE_PEAKS:
        for i, (ci, xli, xri, yli, yri) in zip(edge.tolist(), np.stack(
                [c[edge], xl[edge], xr[edge], yl[edge], yr[edge]], axis=1).tolist(), strict=True):
            _, cx = _axis_offset(ci, xli, xri, math.nan)
            dy[i], cy = _axis_offset(ci, yli, yri, cx)
            dx[i], _ = _axis_offset(ci, xli, xri, cy)
    elif len(edge):
        c, xl, xr, yl, yr = c[edge], xl[edge], xr[edge], yl[edge], yr[edge]
        _, cx = _offsets(c, xl, xr, np.full(len(c), np.nan))
        dy[edge], cy = _offsets(c, yl, yr, cx)
        dx[edge], _ = _offsets(c, xl, xr, cy)
    return dx, dy


_FEW_EDGE_PEAKS = 32  # up to this many, edge peaks are refined one by one (:func:`_axis_offset`)


def _cap(part: np.ndarray, score: np.ndarray, k: int, cap: int) -> tuple[np.ndarray, bool]:
    """Indices (sorted by part) of at most ``cap`` strongest peaks per part."""
    counts = np.bincount(part, minlength=k)
    if counts.max(initial=0) <= cap:
        return np.arange(len(part)), False
    order = np.lexsort((-score, part))
    starts = np.concatenate([[0], np.cumsum(counts)])
    rank = np.arange(len(part)) - starts[part[order]]
    return np.sort(order[rank < cap]), True


def _all_finite(x: np.ndarray) -> bool:
    """Whether no value is NaN or infinite: one summing pass instead of a boolean map
    (a finite sum that overflows reads as non-finite; the caller's cleaning then changes nothing)."""
    return bool(np.isfinite(x.sum()))


def _peaks_numpy(hm: np.ndarray, cfg: DecoderConfig) -> Peaks:
    k, h, w = hm.shape
    # One flat, -inf-bordered copy: a neighbour is a constant offset from its cell, so each
    # comparison is one 1-D gather, and border cells need no special case (-inf never wins).
    row, plane = w + 2, (h + 2) * (w + 2)
    pad = np.full((k, h + 2, w + 2), -np.inf, dtype=np.float32)
    pad[:, 1:-1, 1:-1] = hm
    flat = pad.reshape(-1)
    idx = np.flatnonzero(flat > cfg.peak_threshold)
    val = flat[idx]
    keep = np.ones(len(idx), dtype=bool)
    # 3x3 NMS; ties broken in raster order so a (convex) plateau yields one peak, not hundreds.
    for i, (dy, dx) in enumerate(_NEIGHBOURS):
        nb = flat[idx + (dy * row + dx)]
        keep &= (val > nb) if i < 4 else (val >= nb)
    idx, val = idx[keep], val[keep]
    kk = idx // plane
    sel, truncated = _cap(kk, val, k, cfg.max_peaks_per_part)
    idx, kk, val = idx[sel], kk[sel], val[sel]
    yy, xx = divmod(idx - kk * plane, row)
    window = (np.arange(-1, 2)[:, None] * row + np.arange(-1, 2)[None, :]).reshape(-1)
    win = flat[idx[:, None] + window].reshape(-1, 3, 3).astype(np.float64)
    win[win == -np.inf] = np.nan  # outside the map
    dx, dy = _refine(win, cfg.refine)
    xy = np.stack([xx - 1 + dx, yy - 1 + dy], axis=1).astype(np.float64)
    return Peaks(kk.astype(np.int64), xy, val.astype(np.float64), truncated)


def _peaks_upsampled(hm: np.ndarray, cfg: DecoderConfig) -> Peaks:
    import cv2

    f = cfg.upsample_factor
    k, h, w = hm.shape
    up = np.stack(
        [cv2.resize(hm[i:i + 1].transpose(1, 2, 0), (w * f, h * f), interpolation=cv2.INTER_CUBIC)
         for i in range(k)]
    ) if k else np.zeros((0, h * f, w * f), np.float32)
    peaks = _peaks_numpy(up.reshape(k, h * f, w * f), DecoderConfig(
        peak_threshold=cfg.peak_threshold, refine="none", max_peaks_per_part=cfg.max_peaks_per_part))
    # cv2.resize maps pixel centres: src = (dst + 0.5) / f - 0.5.
    peaks.xy = (peaks.xy + 0.5) / f - 0.5
    return peaks


def _peaks_torch(hm: Any, cfg: DecoderConfig) -> list[Peaks]:
    """Batched peak finding on the tensor's device; returns host-side peaks per image."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    hm = hm.detach()  # raw network output may still require grad
    b, k, h, w = hm.shape
    if h == 0 or w == 0 or k == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [Peaks(empty, np.zeros((0, 2)), np.zeros(0)) for _ in range(b)]
    hm = torch.nan_to_num(hm.float(), nan=0.0, posinf=0.0, neginf=0.0)
    pad = F.pad(hm, (1, 1, 1, 1), value=float("-inf"))
    keep = (hm > cfg.peak_threshold) & (hm >= F.max_pool2d(pad, 3, stride=1))
    for dy, dx in _NEIGHBOURS[:4]:  # strict against earlier neighbours (raster tie-break)
        keep &= hm > pad[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    bb, kk, yy, xx = keep.nonzero(as_tuple=True)
    nan_pad = F.pad(hm, (1, 1, 1, 1), value=float("nan"))
    r = torch.arange(-1, 2, device=hm.device)
    win = nan_pad[bb[:, None, None], kk[:, None, None], yy[:, None, None] + 1 + r[None, :, None],
                  xx[:, None, None] + 1 + r[None, None, :]]
    bb, kk, yy, xx = (t.cpu().numpy() for t in (bb, kk, yy, xx))
    win = win.double().cpu().numpy()
    out = []
    for i in range(b):
        m = bb == i
        k_i, val, win_i = kk[m], win[m, 1, 1], win[m]
        sel, truncated = _cap(k_i, val, k, cfg.max_peaks_per_part)
        dx, dy = _refine(win_i[sel], cfg.refine)
        xy = np.stack([xx[m][sel] + dx, yy[m][sel] + dy], axis=1).astype(np.float64)
        out.append(Peaks(k_i[sel].astype(np.int64), xy, val[sel], truncated))
    return out


def find_peaks(heatmaps: np.ndarray, config: DecoderConfig | None = None) -> Peaks:
    """Keypoint candidates of one image from ``(K, H, W)`` heatmaps (no background channel).

    Non-finite values count as zero.
    """
    cfg = config or DecoderConfig()
    hm = np.asarray(heatmaps, dtype=np.float32)
    if not _all_finite(hm):
        hm = np.nan_to_num(hm, nan=0.0, posinf=0.0, neginf=0.0)
    if cfg.refine == "upsample":
        return _peaks_upsampled(hm, cfg)
    return _peaks_numpy(hm, cfg)


# ----------------------------------------------------------------------------- limbs

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

    n_max = cfg.paf_samples
    sel = np.arange(len(limb))
    if cfg.paf_samples_per_cell > 0:
        n = np.clip(np.ceil(length * cfg.paf_samples_per_cell).astype(np.int64) + 1, 3, n_max)
        j = np.arange(n_max)[None, :]
        valid = j < n[:, None]
        t = np.where(valid, j / np.maximum(n[:, None] - 1, 1), 0.0)
        s = project(t, sel)
        hits = ((s > cfg.paf_threshold) & valid).sum(axis=1)
        mean = np.where(valid, s, 0.0).sum(axis=1) / n
        need = np.floor(cfg.paf_min_fraction * n + 1e-9).astype(np.int64) + 1
    else:
        need = math.floor(cfg.paf_min_fraction * n_max + 1e-9) + 1  # 0.29 * 100 = 28.999...
        misses = n_max - need
        fails = np.zeros(len(limb), dtype=np.int64)
        total = np.zeros(len(limb), dtype=np.float32)
        chunks = _sample_chunks(n_max, misses)
        if len(limb) <= _FEW_PAIRS:
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
    score = mean
    if cfg.distance_prior > 0:
        score = mean + np.minimum(cfg.distance_prior * h / length[sel] - 1.0, 0.0)
    good = (hits >= need) & (score > 0)
    sel, score = sel[good], score[good]
    return _match(limb[sel], ia[sel], ib[sel], score, len(peaks.part))


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


# ----------------------------------------------------------------------------- people

@functools.lru_cache(maxsize=16)
def _redundant_limbs(spec: FieldSpec) -> tuple[bool, ...]:
    """Limbs whose ends are already joined by earlier limbs (union-find in limb order)."""
    parent = list(range(spec.num_keypoints))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    out = []
    for ka, kb in spec.limb_index.tolist():
        ra, rb = root(ka), root(kb)
        out.append(ra == rb)
        parent[ra] = rb
    return tuple(out)


def assemble(
    peaks: Peaks, conns: Connections, spec: FieldSpec, config: DecoderConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group connections into people.

    Returns:
        ``members`` ``(M, K)`` peak index per keypoint (-1 where missing) and ``score``
        ``(M,)``, the mean of the person's keypoint and limb scores; filtered by
        ``min_keypoints`` and ``min_score``.
    """
    cfg = config or DecoderConfig()
    k = spec.num_keypoints
    redundant = _redundant_limbs(spec)
    limb_parts = spec.limb_index.tolist()
    part = peaks.part.tolist()
    owner = [-1] * len(part)
    people: list[list[int]] = []
    limb_sum: list[float] = []
    limb_n: list[int] = []
    order = np.argsort(conns.limb, kind="stable")
    for li, a, b, s in zip(conns.limb[order].tolist(), conns.a[order].tolist(),
                           conns.b[order].tolist(), conns.score[order].tolist(), strict=False):
        ka, kb = limb_parts[li]
        pa, pb = owner[a], owner[b]
        if pa < 0 and pb < 0:
            if redundant[li]:
                continue
            person = [-1] * k
            person[ka], person[kb] = a, b
            owner[a] = owner[b] = len(people)
            people.append(person)
            limb_sum.append(s)
            limb_n.append(1)
            continue
        if pa >= 0 and pb >= 0:
            if pa != pb:
                pp, pq = people[pa], people[pb]
                if any(x >= 0 and y >= 0 for x, y in zip(pp, pq, strict=False)):
                    continue  # both hold some keypoint type: they are different people
                for j, y in enumerate(pq):
                    if y >= 0:
                        pp[j] = y
                        owner[y] = pa
                people[pb] = [-1] * k
                limb_sum[pa] += limb_sum[pb]
                limb_n[pa] += limb_n[pb]
                limb_sum[pb], limb_n[pb] = 0.0, 0
            limb_sum[pa] += s
            limb_n[pa] += 1
            continue
        host, new, knew = (pa, b, kb) if pa >= 0 else (pb, a, ka)
        if people[host][knew] >= 0:
            continue  # slot taken by another candidate: leave this one free
        people[host][knew] = new
        owner[new] = host
        limb_sum[host] += s
        limb_n[host] += 1
    if not people:
        return np.zeros((0, k), dtype=np.int64), np.zeros(0)
    members = np.array(people, dtype=np.int64)
    has = members >= 0
    n_kp = has.sum(axis=1)
    kp_sum = np.where(has, peaks.score[np.maximum(members, 0)], 0.0).sum(axis=1)
    score = (kp_sum + np.array(limb_sum)) / np.maximum(n_kp + np.array(limb_n), 1)
    keep = (n_kp >= max(cfg.min_keypoints, 1)) & (score >= cfg.min_score)
    return members[keep], score[keep]


# ----------------------------------------------------------------------------- completion

@functools.lru_cache(maxsize=16)
def _hops(spec: FieldSpec) -> np.ndarray:
    """(K, K) number of limbs between two keypoints in the spec's limb graph (K + 1: unreachable)."""
    k = spec.num_keypoints
    hops = np.full((k, k), k + 1, dtype=np.int64)
    np.fill_diagonal(hops, 0)
    for a, b in spec.limb_index.tolist():
        hops[a, b] = hops[b, a] = 1
    for m in range(k):  # Floyd-Warshall: K is at most a few dozen
        hops = np.minimum(hops, hops[:, m : m + 1] + hops[m : m + 1, :])
    hops.flags.writeable = False  # cached: shared by every call
    return hops


def fill_missing(kps: np.ndarray, heatmaps: np.ndarray, spec: FieldSpec, config: DecoderConfig) -> np.ndarray:
    """Complete people: each missing keypoint at the heatmap maximum near the person.

    For keypoint ``j`` missing from a person, the nearest found keypoint ``i`` in the limb
    graph (``h`` limbs away) anchors a disc of radius ``h * L * fill_radius`` cells, ``L``
    being the median length of the person's found limbs; ``j`` goes to the disc's maximum
    of heatmap ``j`` (refined as peaks are), scored by its value; where the disc holds no
    positive value the keypoint stays missing.

    Args:
        kps: ``(M, K, 3)`` people in field cells, NaN where missing.
        heatmaps: ``(K [+1], H, W)``.

    Returns:
        a completed copy of ``kps``.
    """
    out = kps.copy()
    if len(kps) == 0:
        return out
    hops = _hops(spec)
    limbs = spec.limb_index
    _, h, w = heatmaps.shape
    gy, gx = np.mgrid[0:h, 0:w]
    pad = np.full((h + 2, w + 2), np.nan)
    for person in out:
        found = np.isfinite(person[:, 0])
        if found.all() or not found.any():
            continue
        both = found[limbs[:, 0]] & found[limbs[:, 1]]
        seg = person[limbs[both, 0], :2] - person[limbs[both, 1], :2]
        typical = float(np.median(np.hypot(seg[:, 0], seg[:, 1]))) if both.any() else 1.0
        for j in np.flatnonzero(~found):
            dist = np.where(found, hops[j], np.iinfo(np.int64).max)
            i = int(np.argmin(dist))
            if dist[i] > spec.num_keypoints:
                continue
            r = max(dist[i] * typical * config.fill_radius, 1.0)
            cx, cy = person[i, 0], person[i, 1]
            y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
            x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            win = np.nan_to_num(heatmaps[j, y0:y1, x0:x1], nan=0.0, posinf=0.0, neginf=0.0)
            inside = (gx[y0:y1, x0:x1] - cx) ** 2 + (gy[y0:y1, x0:x1] - cy) ** 2 <= r * r
            win = np.where(inside, win, -np.inf)
            if not win.max() > 0:
                continue  # no evidence at all: the keypoint stays missing
            yy, xx = np.unravel_index(np.argmax(win), win.shape)
            yy, xx = yy + y0, xx + x0
            pad[1:-1, 1:-1] = np.nan_to_num(heatmaps[j], nan=0.0, posinf=0.0, neginf=0.0)
            dx, dy = _refine(pad[None, yy : yy + 3, xx : xx + 3].astype(np.float64), config.refine
                             if config.refine != "upsample" else "quadratic")
            person[j] = (xx + dx[0], yy + dy[0], float(win[yy - y0, xx - x0]))
    return out


# ----------------------------------------------------------------------------- API

def _check(heatmaps: Any, pafs: Any, spec: FieldSpec) -> None:
    hs, ps = tuple(heatmaps.shape), tuple(pafs.shape)
    if len(hs) != len(ps) or len(hs) not in (3, 4):
        raise PafposeError(f"heatmaps and PAFs must both be (C, H, W) or (B, C, H, W); got {hs} and {ps}")
    if hs[-2:] != ps[-2:] or hs[:-3] != ps[:-3]:
        raise PafposeError(f"heatmaps {hs} and PAFs {ps} differ in batch or spatial size")
    if hs[-3] not in (spec.num_keypoints, spec.num_keypoints + 1):
        raise PafposeError(f"expected {spec.num_keypoints} (+1 background) heatmap channels, got {hs[-3]}")
    if ps[-3] != spec.num_pafs:
        raise PafposeError(f"expected {spec.num_pafs} PAF channels, got {ps[-3]}")


class Decoder:
    """Heatmaps + PAFs -> :class:`Poses` (keypoints in network-input pixels).

    Example:
        >>> from pafpose.fields import OPENPOSE_COCO18
        >>> poses = Decoder(OPENPOSE_COCO18).decode(heatmaps, pafs)  # (19, H, W), (38, H, W)
    """

    def __init__(self, spec: FieldSpec, config: DecoderConfig | None = None) -> None:
        self.spec = spec
        self.config = config or DecoderConfig()

    def decode(self, heatmaps: Any, pafs: Any) -> Poses:
        """The people of one image: ``(C, H, W)`` heatmaps and PAFs (use :meth:`decode_batch` for
        ``(B, C, H, W)``)."""
        if len(getattr(heatmaps, "shape", ())) == 4:
            raise PafposeError("decode takes one image's (C, H, W) fields; use decode_batch for (B, C, H, W)")
        return self._decode(heatmaps, pafs, batched=False)  # type: ignore[return-value]

    def decode_batch(self, heatmaps: Any, pafs: Any) -> list[Poses]:
        """The people of each image of a batch: ``(B, C, H, W)`` heatmaps and PAFs (on a GPU, the
        peak search runs for the whole batch at once)."""
        if len(getattr(heatmaps, "shape", ())) != 4:
            raise PafposeError("decode_batch takes (B, C, H, W) fields; use decode for one image's (C, H, W)")
        return self._decode(heatmaps, pafs, batched=True)  # type: ignore[return-value]

    def _decode(self, heatmaps: Any, pafs: Any, batched: bool) -> Poses | list[Poses]:
        _check(heatmaps, pafs, self.spec)
        k = self.spec.num_keypoints
        if _is_tensor(heatmaps) and heatmaps.device.type != "cpu" and self.config.refine != "upsample":
            hm = heatmaps if batched else heatmaps[None]
            peaks = _peaks_torch(hm[:, :k], self.config)
        else:
            hm = _to_numpy(heatmaps)
            hm = hm if batched else hm[None]
            peaks = [find_peaks(x[:k], self.config) for x in hm]
        pf = _to_numpy(pafs)
        pf = pf if batched else pf[None]
        if self.config.fill_missing:
            maps = _to_numpy(heatmaps)
            maps = maps if batched else maps[None]
        else:
            maps = [None] * len(pf)
        out = [self._people(p, f, m) for p, f, m in zip(peaks, pf, maps, strict=False)]
        return out if batched else out[0]

    def _people(self, peaks: Peaks, pafs: np.ndarray, heatmaps: np.ndarray | None) -> Poses:
        conns = score_limbs(pafs, peaks, self.spec, self.config)
        members, scores = assemble(peaks, conns, self.spec, self.config)
        kps = np.zeros((*members.shape, 3))
        kps[:, :, :2] = np.nan
        has = members >= 0
        kps[has, :2] = peaks.xy[members[has]]
        kps[has, 2] = peaks.score[members[has]]
        if heatmaps is not None:
            kps = fill_missing(kps, heatmaps, self.spec, self.config)
        kps[:, :, :2] = self.spec.cells.cell_to_input(kps[:, :, :2])  # cells -> network-input pixels
        out = Poses(Pose(k, float(score), self.spec.skeleton) for k, score in zip(kps, scores, strict=True))
        out.truncated = peaks.truncated
        out.sort(key=lambda p: -p.score)
        return out


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _to_numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def decode(heatmaps: Any, pafs: Any, spec: FieldSpec, config: DecoderConfig | None = None) -> Poses:
    """Functional form of :meth:`Decoder.decode` (one image)."""
    return Decoder(spec, config).decode(heatmaps, pafs)
