"""Drawing skeletons with the OpenPose colour scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # drawing needs only each person's keypoints, skeleton and id: no import of the result type
    from pafpose.pose import Pose


def poses(image: np.ndarray, people: Sequence[Pose], threshold: float = 0.1) -> np.ndarray:
    """A copy of ``image`` (HxWx3 BGR uint8) with every person's limbs and joints drawn.

    Line widths scale with the image size; keypoints scoring below ``threshold`` are left out.
    The skeleton comes from each pose, never from guessing by keypoint count. Untracked
    people have OpenPose's colours; a tracked person (``track_id``) is drawn in the colour of
    their id, with the id in a label above them, so one follows them from frame to frame.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 250))
    radius = thick + 1
    labels: list[tuple[int, int, int, int]] = []  # boxes already placed: a crowd's labels never cover each other
    for pose in people:
        sk = pose.skeleton
        k = pose.keypoints
        ok = np.isfinite(k[:, 0]) & (k[:, 2] >= threshold)
        own = None if pose.track_id is None else id_color(pose.track_id)
        for (a, b), (r, g, bl) in zip(sk.limb_indices().tolist(), sk.limb_colors, strict=True):
            if ok[a] and ok[b]:
                pa, pb = (round(k[a, 0]), round(k[a, 1])), (round(k[b, 0]), round(k[b, 1]))
                cv2.line(out, pa, pb, own or (bl, g, r), thick, cv2.LINE_AA)
        for i in np.flatnonzero(ok).tolist():
            r, g, bl = sk.keypoint_colors[i]
            cv2.circle(out, (round(k[i, 0]), round(k[i, 1])), radius, own or (bl, g, r), -1, cv2.LINE_AA)
        if pose.track_id is not None and ok.any():
            _label(out, str(pose.track_id), k[ok, :2], thick, labels)
    return out


def id_color(track_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour for a person id (golden-ratio steps around the hue circle)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 1.0)
    return round(b * 255), round(g * 255), round(r * 255)


def _label(out: np.ndarray, text: str, points: np.ndarray, thick: int,
           placed: list[tuple[int, int, int, int]]) -> None:
    """The person's id in a box of the id's colour, above the highest keypoint; moved up (or
    down) past the boxes already ``placed``."""
    import cv2

    scale = max(0.4, thick / 2.5)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick // 2))
    x = int(np.clip(points[:, 0].mean() - tw / 2, 0, max(0, out.shape[1] - tw - 4)))
    y0 = int(np.clip(points[:, 1].min() - 4 * thick, th + 4, out.shape[0] - 1))
    step = th + base + 6
    for y in [y0 - n * step for n in range(8)] + [y0 + n * step for n in range(1, 8)]:
        if th + 4 <= y <= out.shape[0] - 1 and not any(
                x < bx1 and bx0 < x + tw + 4 and y - th - 4 < by1 and by0 < y + base for bx0, by0, bx1, by1 in placed):
            break
    else:
        y = y0  # nowhere free: over the others
    placed.append((x, y - th - 4, x + tw + 4, y + base))
    cv2.rectangle(out, (x, y - th - 4), (x + tw + 4, y + base), id_color(int(text)), -1)
    cv2.putText(out, text, (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, thick // 2),
                cv2.LINE_AA)
