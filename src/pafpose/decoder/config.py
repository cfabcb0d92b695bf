"""The decoder's settings: every threshold in one frozen value, and the range each may take
(shared with the command line, which checks the same bounds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pafpose.checks import check_number
from pafpose.errors import PafposeError

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
