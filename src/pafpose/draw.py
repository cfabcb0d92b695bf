"""Drawing skeletons with the OpenPose colour scheme."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pafpose.pose import Pose


def poses(image: np.ndarray, people: Sequence[Pose], threshold: float = 0.1) -> np.ndarray:
    """A copy of ``image`` (HxWx3 BGR uint8) with every person's limbs and joints drawn.

    Line widths scale with the image size; keypoints scoring below ``threshold`` are left out.
    The skeleton comes from each pose, never from guessing by keypoint count.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 250))
    radius = thick + 1
    for pose in people:
        sk = pose.skeleton
        k = pose.keypoints
        ok = np.isfinite(k[:, 0]) & (k[:, 2] >= threshold)
        for (a, b), (r, g, bl) in zip(sk.limb_indices().tolist(), sk.limb_colors, strict=True):
            if ok[a] and ok[b]:
                pa, pb = (round(k[a, 0]), round(k[a, 1])), (round(k[b, 0]), round(k[b, 1]))
                cv2.line(out, pa, pb, (bl, g, r), thick, cv2.LINE_AA)
        for i in np.flatnonzero(ok).tolist():
            r, g, bl = sk.keypoint_colors[i]
            cv2.circle(out, (round(k[i, 0]), round(k[i, 1])), radius, (bl, g, r), -1, cv2.LINE_AA)
    return out
