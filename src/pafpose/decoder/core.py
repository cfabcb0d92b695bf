"""The :class:`Decoder`: the steps composed, for one image or a batch.

Inputs are numpy arrays or torch tensors, ``(C, H, W)`` or batched ``(B, C, H, W)``. For
GPU tensors, peak finding runs on the GPU (the ``O(B K H W)`` step); the PAFs are then
copied to host memory once, since limb scoring is ``O(pairs)`` and its inputs are a few
hundred kilobytes. CPU tensors are read as numpy arrays without a copy: on the CPU,
numpy's peak finding (which looks only at values above the threshold) is several times
faster than PyTorch's dozen whole-map operations (0.4 against 1.4 ms per 256x456 frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pafpose.decoder.assembly import assemble
from pafpose.decoder.config import DecoderConfig
from pafpose.decoder.fill import fill_missing
from pafpose.decoder.limbs import score_limbs
from pafpose.decoder.peaks import Peaks, _peaks_torch, find_peaks
from pafpose.errors import PafposeError
from pafpose.fields import FieldSpec
from pafpose.pose import Pose, Poses


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
