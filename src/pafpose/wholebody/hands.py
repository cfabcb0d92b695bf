"""Hands: 21 points per hand from MediaPipe's hand network, on crops the body gives.

The first crop is OpenPose's hand box from the wrist and forearm (:func:`~.crops.hand_crop`),
turned so that the forearm points up; the network's own first answer then gives a second,
tighter crop turned as MediaPipe turns it (wrist to the middle finger's base up; 2x the
box of the palm's points, moved a tenth up: ``hand_landmark_landmarks_to_roi``), and the
points of that second pass are the answer. Measured on real hands (BENCHMARKS.md): upright
crops matter (0.2-0.3 PCK), the re-crop recovers a poor first box. A hand whose network
presence is under ``min_presence`` is missing: its 21 points are not invented.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pafpose.wholebody.crops import MIN_SIDE, Crop, around, upright
from pafpose.wholebody.nets import landmark_net, to_input

#: The palm's points MediaPipe boxes for the next crop: wrist, thumb base, the fingers' bases and joints.
PALM = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]


def recrop(points: np.ndarray) -> Crop | None:
    """MediaPipe's next hand crop from 21 hand points (image pixels)."""
    base = ((points[5, :2] + points[13, :2]) / 2 + points[9, :2]) / 2  # about the middle finger's base, steadier
    return around(points[PALM], upright(base - points[0, :2]), 2.0, 0.1)


class HandNet:
    """21 points of each hand crop (``passes`` network runs each: the body's box, then re-crops)."""

    def __init__(self, threads: int | None = None, precision: str = "auto", passes: int = 2,
                 min_presence: float = 0.5) -> None:
        self.net = landmark_net("mediapipe-hand", threads, precision)
        self.passes, self.min_presence = passes, min_presence

    def __call__(self, image: np.ndarray, crops: Sequence[Crop | None]) -> list[np.ndarray]:
        """``(21, 3)`` ``x, y, presence`` per crop in image pixels; all missing (NaN, 0) for a
        missing crop or a hand the network does not see."""
        n = self.net.side
        out = [np.tile([np.nan, np.nan, 0.0], (21, 1)) for _ in crops]
        todo = [(i, c) for i, c in enumerate(crops) if c is not None]
        for step in range(self.passes):
            if not todo:
                break
            lm, presence = self.net(to_input([c.cut(image, n) for _, c in todo]))[:2]
            nxt = []
            for (i, crop), row, score in zip(todo, lm, presence[:, 0], strict=True):
                pts = crop.to_image(row.reshape(21, 3), n)
                if step == self.passes - 1:
                    if score >= self.min_presence:
                        out[i] = np.column_stack([pts[:, :2], np.full(21, float(score))])
                    continue
                again = recrop(pts)
                if again is not None and again.side >= MIN_SIDE:
                    nxt.append((i, again))
            todo = nxt
        return out
