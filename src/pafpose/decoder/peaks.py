"""Step 1: keypoint candidates by 3x3 non-maximum suppression, a threshold, and sub-pixel
refinement (:mod:`~pafpose.decoder.refine`); on numpy arrays, or batched on a GPU tensor's device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pafpose.decoder.config import DecoderConfig
from pafpose.decoder.refine import _refine


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


_NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, -1), (1, 0), (1, 1))


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
