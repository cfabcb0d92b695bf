"""The result type: one detected person."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pafpose.coords import Geometry
from pafpose.skeleton import COCO17, Skeleton, convert_keypoints, get_skeleton

if TYPE_CHECKING:
    from pafpose.fields import Fields


@dataclass
class Pose:
    """One person.

    Attributes:
        keypoints: ``(K, 3)`` float array of ``(x, y, score)`` in input-image pixels. A
            missing keypoint has ``x = y = NaN`` and ``score = 0``, never a fake ``(0, 0)``.
        score: person confidence in ``[0, 1]`` (mean confidence of its keypoints and limbs).
        skeleton: the keypoint layout of ``keypoints``.
        track_id: the person's id across a video's frames (:class:`pafpose.tracker.Tracker`),
            never reused within a sequence; None for a single image or with tracking off.
        interpolated: the person was not detected in this frame but put back by offline
            tracking (:mod:`pafpose.offline`) from the frames on both sides.
    """

    keypoints: np.ndarray
    score: float
    skeleton: Skeleton = field(repr=False)
    track_id: int | None = None
    interpolated: bool = False

    def __post_init__(self) -> None:
        self.skeleton = get_skeleton(self.skeleton)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64)
        if self.keypoints.shape != (self.skeleton.num_keypoints, 3):
            raise ValueError(
                f"keypoints must be ({self.skeleton.num_keypoints}, 3) for {self.skeleton.name}, "
                f"got {self.keypoints.shape}"
            )

    @property
    def present(self) -> np.ndarray:
        """``(K,)`` bool: which keypoints were found."""
        return np.isfinite(self.keypoints[:, 0]) & np.isfinite(self.keypoints[:, 1])

    @property
    def num_keypoints(self) -> int:
        """How many keypoints were found."""
        return int(self.present.sum())

    def to_array(self) -> np.ndarray:
        """A copy of ``keypoints`` (for vectorised code)."""
        return self.keypoints.copy()

    def convert(self, skeleton: Skeleton | str) -> Pose:
        """The same person in another keypoint layout (``"coco18"``, ``"body25"``, ``"coco17"``),
        keypoints matched by name: BODY-25's ``mid_hip`` is the mid-point of the hips and
        COCO-18's ``neck`` that of the shoulders when both are found; keypoints the source
        lacks (BODY-25's feet) are missing (see :func:`~pafpose.skeleton.convert_keypoints`)."""
        skeleton = get_skeleton(skeleton)
        if skeleton is self.skeleton:
            return Pose(self.keypoints.copy(), self.score, skeleton, self.track_id, self.interpolated)
        return Pose(convert_keypoints(self.keypoints, self.skeleton, skeleton), self.score, skeleton, self.track_id,
                    self.interpolated)

    def to_coco17(self) -> Pose:
        """The same person in COCO-17 order (OpenPose's neck is dropped)."""
        return self.convert(COCO17)

    def to_coco_keypoints(self) -> list[float]:
        """COCO results ``keypoints``: flat ``[x, y, v] * 17``; missing ones are ``0, 0, 0``."""
        kps = self.to_coco17().keypoints
        out = np.zeros_like(kps)
        ok = np.isfinite(kps[:, 0])
        out[ok, :2] = kps[ok, :2]
        out[ok, 2] = 1.0
        return [float(v) for v in out.ravel()]

    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the found keypoints (NaNs when none)."""
        pts = self.keypoints[self.present, :2]
        if len(pts) == 0:
            return (np.nan,) * 4
        return (*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist())


def map_poses(poses: Sequence[Pose], points: Callable[[np.ndarray], np.ndarray]) -> Poses:
    """The same people with their keypoints moved by ``points`` (a :class:`~pafpose.coords.Geometry`
    point method, e.g. ``geometry.input_to_image``: x and y mapped, scores kept)."""
    out = Poses()
    out.truncated = getattr(poses, "truncated", False)
    for p in poses:
        out.append(Pose(points(p.keypoints), p.score, p.skeleton, p.track_id, p.interpolated))
    return out


def convert_poses(poses: Sequence[Pose], skeleton: Skeleton | str) -> Poses:
    """The same people in another keypoint layout, by name (:meth:`Pose.convert`)."""
    out = Poses(p.convert(skeleton) for p in poses)
    out.truncated = getattr(poses, "truncated", False)
    return out


def scale_poses(poses: Sequence[Pose], fx: float, fy: float) -> Poses:
    """The same people in an image resized by ``fx`` x ``fy`` (new pixels per old pixel; see
    :mod:`pafpose.coords`: ``x' = (x + 0.5) * fx - 0.5``); their :attr:`Poses.fields`, if
    kept, come along with a geometry for the resized image."""
    out = map_poses(poses, Geometry(fx, fy).image_to_input)
    kept = getattr(poses, "fields", None)
    if kept is not None:
        out.fields = kept.for_resized(fx, fy)
    return out


class Poses(list):
    """The people decoded from one image: a plain ``list`` of :class:`Pose`.

    Attributes:
        truncated: True when some keypoint type had more candidate peaks than
            ``DecoderConfig.max_peaks_per_part`` and only the strongest were kept.
        fields: the heatmaps and PAFs these people were decoded from, and where the image
            lies on them (:class:`~pafpose.fields.Fields`), when the Estimator was asked to
            keep them (``keep_fields=True``: OpenPose's heatmap files and part candidates
            are made from them); None otherwise. :func:`scale_poses` keeps them (with the
            resized image's geometry), and so do the trackers; :func:`map_poses`, which may
            move points any way, drops them.
    """

    truncated: bool = False
    fields: Fields | None = None
