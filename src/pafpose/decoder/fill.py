"""Completing people (``DecoderConfig.fill_missing``): a keypoint the grouping left out is
put at the strongest heatmap response near the person, since COCO's OKS scores every
labelled keypoint and a located guess can only raise it."""

from __future__ import annotations

import functools

import numpy as np

from pafpose.decoder.config import DecoderConfig
from pafpose.decoder.refine import _refine
from pafpose.fields import FieldSpec


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
        typical = _typical_limb(person, found, limbs)
        for j in np.flatnonzero(~found):
            dist = np.where(found, hops[j], np.iinfo(np.int64).max)
            i = int(np.argmin(dist))
            if dist[i] > spec.num_keypoints:
                continue
            r = max(dist[i] * typical * config.fill_radius, 1.0)
            best = _strongest_in_disc(heatmaps[j], person[i, 0], person[i, 1], r, gx, gy)
            if best is None:
                continue  # no evidence at all: the keypoint stays missing
            yy, xx, value = best
            pad[1:-1, 1:-1] = np.nan_to_num(heatmaps[j], nan=0.0, posinf=0.0, neginf=0.0)
            dx, dy = _refine(pad[None, yy : yy + 3, xx : xx + 3].astype(np.float64), config.refine
                             if config.refine != "upsample" else "quadratic")
            person[j] = (xx + dx[0], yy + dy[0], value)
    return out


def _typical_limb(person: np.ndarray, found: np.ndarray, limbs: np.ndarray) -> float:
    """The median length of the person's found limbs (1 cell if none is found)."""
    both = found[limbs[:, 0]] & found[limbs[:, 1]]
    seg = person[limbs[both, 0], :2] - person[limbs[both, 1], :2]
    return float(np.median(np.hypot(seg[:, 0], seg[:, 1]))) if both.any() else 1.0


def _strongest_in_disc(heatmap: np.ndarray, cx: float, cy: float, r: float, gx: np.ndarray,
                       gy: np.ndarray) -> tuple[int, int, float] | None:
    """The cell (row, column) of ``heatmap``'s maximum within ``r`` cells of (cx, cy), and its
    value; None where the disc is off the map or holds no positive value."""
    h, w = heatmap.shape
    y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
    x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    win = np.nan_to_num(heatmap[y0:y1, x0:x1], nan=0.0, posinf=0.0, neginf=0.0)
    inside = (gx[y0:y1, x0:x1] - cx) ** 2 + (gy[y0:y1, x0:x1] - cy) ** 2 <= r * r
    win = np.where(inside, win, -np.inf)
    if not win.max() > 0:
        return None
    yy, xx = np.unravel_index(np.argmax(win), win.shape)
    return yy + y0, xx + x0, float(win[yy, xx])
