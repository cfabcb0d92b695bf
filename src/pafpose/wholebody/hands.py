"""Hands: 21 points per hand from MediaPipe's hand network, on crops the body gives.

The first crop is OpenPose's hand box from the wrist and forearm (:func:`~.crops.hand_crop`),
turned so that the forearm points up; the network's own first answer then gives a second,
tighter crop turned as MediaPipe turns it (wrist to the middle finger's base up; 2x the
box of the palm's points, moved a tenth up: ``hand_landmark_landmarks_to_roi``), and the
points of that second pass are the answer. Measured on real hands (BENCHMARKS.md): the turn
matters (PCK@0.2 0.94 from boxes turned by the hand, 0.77 from the same boxes upright), and the
re-crop recovers much of a poor first box (0.57 -> 0.77). A hand whose network
presence is under ``min_presence`` is missing: its 21 points are not invented.

Where the body gives no crop (close-ups, webcam signing with the elbows out of frame),
MediaPipe's palm detector on the whole image gives one (:class:`PalmDetector`, OpenPose's
``--hand_detector``): the crop MediaPipe makes from a palm (:func:`palm_crop`), then the same
passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pafpose.wholebody.crops import MIN_SIDE, Crop, around, upright
from pafpose.wholebody.nets import Detection, SsdDetector, landmark_net, recropped

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

    def find(self, image: np.ndarray, crops: Sequence[Crop | None]) -> list[tuple[np.ndarray, float] | None]:
        """Per crop, ``(21, 3)`` ``x, y, presence`` in image pixels and how likely the hand is the
        person's right one (None: no crop, or no hand seen).

        The network's handedness is MediaPipe's, which assumes a mirrored (selfie) image; read as
        here, unmirrored, it is the right hand's probability: measured on the palm detector's
        crops of 6 hands (hand1, hand2, handsup1.jpg), 0.85-0.93 for right hands, 0.05-0.08 for left ones."""
        n = self.net.side
        out: list[tuple[np.ndarray, float] | None] = []
        for last in recropped(self.net, image, crops, self.passes,
                              lambda crop, rows: recrop(crop.to_image(rows[0].reshape(21, 3), n))):
            score = -1.0 if last is None else float(last[1][1][0])
            if last is None or score < self.min_presence:
                out.append(None)
                continue
            crop, (lm, _, right) = last
            pts = crop.to_image(lm.reshape(21, 3), n)
            out.append((np.column_stack([pts[:, :2], np.full(21, score)]), float(right[0])))
        return out

    def __call__(self, image: np.ndarray, crops: Sequence[Crop | None]) -> list[np.ndarray]:
        """``(21, 3)`` ``x, y, presence`` per crop in image pixels; all missing (NaN, 0) for a
        missing crop or a hand the network does not see."""
        return [np.tile([np.nan, np.nan, 0.0], (21, 1)) if found is None else found[0]
                for found in self.find(image, crops)]


# ---------------------------------------------------------------------- hands without arms: the palm detector
def palm_crop(palm: Detection) -> Crop | None:
    """The hand crop MediaPipe makes from a palm (``palm_detection_detection_to_roi``): turned so
    that the wrist's centre (keypoint 0) to the middle finger's base (keypoint 2) points up,
    moved half the box's height up, 2.6 times the box's long side. None when too small."""
    wrist, middle = palm.keypoints[0], palm.keypoints[2]
    angle = upright(middle - wrist)
    width, height = float(palm.box[2]), float(palm.box[3])
    moved = Crop(float(palm.box[0]), float(palm.box[1]), height, angle).scaled(1.0, 0.5)
    side = 2.6 * max(width, height)
    return Crop(moved.cx, moved.cy, side, angle) if side >= MIN_SIDE else None


class PalmDetector(SsdDetector):
    """MediaPipe's palm detector (lite) on a whole image: hands whose arm gives no crop
    (OpenPose's ``--hand_detector``; pafpose's 1 is this detector, OpenPose has none for hands).
    Measured on hand1.jpg, hand2.jpg and handsup1.jpg: palms on the 4 hands the body's arms give
    and on 2 they miss, none elsewhere (handsup1's small dark hands at the edges: neither);
    :func:`palm_crop` gives each one's hand crop for :class:`HandNet`."""

    NET = "mediapipe-palm"
    #: Its 2016 anchors: strides 8, 16, 16, 16 of its 192-pixel input, i.e. 24 x 24 cells x 2, then 12 x 12 x 6.
    LAYERS = ((24, 2), (12, 6))

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """The palms found, best first, in image pixels: box, the 7 keypoints (0 the wrist's
        centre, 2 the middle finger's base) and score."""
        return self.detections(image)
