"""Feet: heels and big toes from BlazePose (MediaPipe's pose landmark network) on a person crop.

The crop is BlazePose's own (:func:`~.crops.person_crop`: centred at mid-hip, turned so the
torso points up, 2.5x the body's radius), made from the PAF keypoints. BlazePose's first
output has 39 points x (x, y, z, visibility, presence) in the crop's 256 pixels: heels 29/30,
foot index (the big toe's tip) 31/32, ankles 27/28 (left first). Each foot is then moved by
the difference between the PAF ankle and BlazePose's, where the PAF found the ankle: the
foot is placed relative to the better-localised ankle (on the 12 annotated people in
../shared/wholebody/feet, PCK@0.1 0.76 -> 0.86; BENCHMARKS.md).

BlazePose has no small toe: the small toes are always missing, written as OpenPose writes
any point it did not find, never as a detection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pafpose.wholebody.crops import Crop
from pafpose.wholebody.nets import landmark_net, sigmoid, to_input

#: BlazePose's point for each of :data:`~pafpose.skeleton.FOOT_KEYPOINTS` (None: it has none).
BLAZEPOSE_FOOT = (31, None, 29, 32, None, 30)
_ANKLES = {"left": (27, (0, 2)), "right": (28, (3, 5))}


class FootNet:
    """The six foot points (:data:`~pafpose.skeleton.FOOT_KEYPOINTS`) of each person crop."""

    def __init__(self, threads: int | None = None, precision: str = "auto", min_visibility: float = 0.5) -> None:
        self.net = landmark_net("mediapipe-pose", threads, precision)
        self.min_visibility = min_visibility

    def __call__(self, image: np.ndarray, crops: Sequence[Crop | None],
                 bodies: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """``(6, 3)`` ``x, y, visibility`` per crop (image pixels), a foot point missing where
        BlazePose has none, sees none, or the crop is missing. ``bodies``: each person's
        found keypoints by name, whose ankles place the feet."""
        n = self.net.side
        out = [np.tile([np.nan, np.nan, 0.0], (6, 1)) for _ in crops]
        todo = [(i, c) for i, c in enumerate(crops) if c is not None]
        if not todo:
            return out
        lm, flag = self.net(to_input([c.cut(image, n) for _, c in todo]))[:2]
        for (i, crop), row, present in zip(todo, lm, flag[:, 0], strict=True):
            pts = crop.to_image(row.reshape(39, 5), n)
            feet = out[i]
            for k, j in enumerate(BLAZEPOSE_FOOT):
                if j is not None:
                    feet[k] = (pts[j, 0], pts[j, 1], float(sigmoid(pts[j, 3])) * float(present))
            for side, (ankle, rows) in _ANKLES.items():
                found = bodies[i].get(f"{side}_ankle")
                if found is not None:
                    feet[list(rows), :2] += found[:2] - pts[ankle, :2]
            feet[feet[:, 2] < self.min_visibility] = (np.nan, np.nan, 0.0)
        return out
