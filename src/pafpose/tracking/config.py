"""The trackers' settings, online and offline alike: :class:`TrackerConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from pafpose.checks import check_number


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
        lost_growth: how fast a lost track's tolerance widens, per missed frame (its size is
            taken ``1 + lost_growth * missed`` times larger in the similarity).
        min_area: smallest person area (pixels²) the similarity scale assumes (tiny or
            one-keypoint people would otherwise match nothing).
        smooth: apply the One Euro filter to the tracked keypoints (whole-body parts too:
            hands, face and feet, with the same settings and the person's size).
        min_cutoff: the filter's cut-off frequency at rest (Hz): lower, smoother.
        beta: how fast the cut-off rises with speed (speed relative to the body, in person
            sizes, the square root of the keypoints' box area, per second): higher, less lag.
        d_cutoff: cut-off frequency of the speed estimate (Hz).
        fps: frame rate assumed when :meth:`~pafpose.tracking.Tracker.update` is given no
            timestamp.
        window: frames the offline mode (:class:`~pafpose.tracking.OfflineTracker`, for
            recordings) looks ahead and back to smooth each frame; also how long it holds frames.
        max_gap: frames missing from a person's track that the offline mode fills in
            (0: none, the default: on the generated sequences of ``benchmarks/tracking.py``
            filling gaps added as many false people, hidden behind others, as it found).

    The defaults were chosen on generated sequences (``benchmarks/tracking.py``, seed 1) and
    checked on others (seed 0): see BENCHMARKS.md.
    """

    min_similarity: float = 0.1
    max_missed: int = 30
    velocity_smoothing: float = 0.3
    max_extrapolation: int = 10
    lost_growth: float = 0.2
    min_area: float = 32.0 * 32.0
    smooth: bool = True
    min_cutoff: float = 3.0
    beta: float = 3.0
    d_cutoff: float = 0.3
    fps: float = 30.0
    window: int = 10
    max_gap: int = 0

    def __post_init__(self) -> None:
        check_number("min_similarity", self.min_similarity, 0.0, 1.0)
        check_number("max_missed", self.max_missed, 0, 100_000, integer=True)
        check_number("velocity_smoothing", self.velocity_smoothing, 0.0, 1.0)
        check_number("max_extrapolation", self.max_extrapolation, 0, 100_000, integer=True)
        check_number("lost_growth", self.lost_growth, 0.0, 100.0)
        check_number("min_area", self.min_area, 0.0, 1e12, lo_open=True)
        check_number("min_cutoff", self.min_cutoff, 0.0, 1e6, lo_open=True)
        check_number("beta", self.beta, 0.0, 1e6)
        check_number("d_cutoff", self.d_cutoff, 0.0, 1e6, lo_open=True)
        check_number("fps", self.fps, 0.0, 1e6, lo_open=True)
        check_number("window", self.window, 0, 1000, integer=True)
        check_number("max_gap", self.max_gap, 0, 1000, integer=True)
        if not isinstance(self.smooth, bool):
            from pafpose.errors import PafposeError

            raise PafposeError(f"smooth must be True or False, got {self.smooth!r}")
