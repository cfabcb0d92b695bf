"""Sub-pixel refinement of a peak from the 3x3 window of field values around it.

Peaks are refined on the field itself, not by upsampling the maps: a parabola per axis
through the centre and its two neighbours (through their logs for ``"gaussian"``, exact for
a Gaussian blob), or the window's weighted mean (``"centroid"``). Peak finding and
:func:`~pafpose.decoder.fill.fill_missing` both refine this way.
"""

from __future__ import annotations

import math

import numpy as np

_FEW_EDGE_PEAKS = 32  # up to this many, edge peaks are refined one by one (:func:`_axis_offset`)


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

