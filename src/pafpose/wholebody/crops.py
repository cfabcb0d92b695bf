"""Crops for the part networks: a rotated square of the image, cut out, and the way back.

A :class:`Crop` is a square of side ``side`` image pixels centred at ``(cx, cy)`` and turned
by ``angle`` radians, so that the crop's "up" is the image direction ``(sin a, -cos a)``: a
hand crop is turned so that the fingers point up, a face crop so that the eyes are level,
a body crop so that the hips are below the shoulders, as MediaPipe's networks were trained.
Points follow :mod:`pafpose.coords` (pixel centres at integers). The networks answer in
their input's pixels with the left edge at 0 (MediaPipe's convention, centres at +0.5);
:meth:`Crop.to_image` takes those.

The boxes from a person's body keypoints are OpenPose's rules (``handDetector``,
``faceDetector``; controlnet_aux's ``handDetect``/``faceDetect``), turned where the network
wants it; the re-crops from a network's own first answer are MediaPipe's
(``*_landmarks_to_roi``): both are here so that the geometry is tested in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

#: The smallest crop worth a network (a face: the mesh still finds faces whose eyes are 10
#: pixels apart, NME 0.064 on the 300-W faces shrunk so): smaller ones are reported missing.
MIN_SIDE = 12.0
#: The smallest hand crop (1.5 forearms): hands under ~25 pixels fail in every recipe, so their
#: crops are not run (a crowd's small people cost nothing) and the hands are missing.
MIN_HAND_SIDE = 36.0
#: The smallest person crop for the feet: a person under ~50 pixels has feet of a few pixels.
MIN_PERSON_SIDE = 64.0


@dataclass(frozen=True)
class Crop:
    """A square of the image: centre, side (image pixels) and turn (radians)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, n: int) -> np.ndarray:
        """``2 x 3`` affine map from the crop's ``n x n`` pixels to image pixels (centres at integers)."""
        k = self.side / n
        c, s = math.cos(self.angle) * k, math.sin(self.angle) * k
        o = 0.5 - n / 2.0
        return np.array([[c, -s, self.cx + o * (c - s)], [s, c, self.cy + o * (s + c)]], dtype=np.float64)

    def cut(self, image: np.ndarray, n: int) -> np.ndarray:
        """The crop as an ``n x n`` image (outside the image: black, as MediaPipe pads)."""
        return cv2.warpAffine(image, self.matrix(n), (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_image(self, points: np.ndarray, n: int) -> np.ndarray:
        """``(..., 2+)`` points in a network's ``n``-pixel input (left edge 0) -> image pixels;
        other columns are kept."""
        pts = np.array(points, dtype=np.float64)
        k = self.side / n
        du, dv = (pts[..., 0] - n / 2.0) * k, (pts[..., 1] - n / 2.0) * k
        c, s = math.cos(self.angle), math.sin(self.angle)
        pts[..., 0], pts[..., 1] = self.cx + du * c - dv * s, self.cy + du * s + dv * c
        return pts

    def from_image(self, points: np.ndarray, n: int) -> np.ndarray:
        """The inverse of :meth:`to_image`: image pixels -> a network's input (left edge 0)."""
        pts = np.array(points, dtype=np.float64)
        dx, dy = pts[..., 0] - self.cx, pts[..., 1] - self.cy
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = n / self.side
        pts[..., 0], pts[..., 1] = (dx * c + dy * s) * k + n / 2.0, (-dx * s + dy * c) * k + n / 2.0
        return pts

    def scaled(self, factor: float, shift_up: float = 0.0) -> Crop:
        """The square ``factor`` times as large, its centre moved ``shift_up`` sides towards its up."""
        d = shift_up * self.side
        return Crop(self.cx + d * math.sin(self.angle), self.cy - d * math.cos(self.angle), self.side * factor,
                    self.angle)


def upright(direction: np.ndarray) -> float:
    """The :attr:`Crop.angle` that turns ``direction`` (image x, y) to the crop's up."""
    return math.atan2(float(direction[0]), float(-direction[1]))


def around(points: np.ndarray, angle: float, scale: float, shift_up: float = 0.0) -> Crop | None:
    """The square around ``points`` (their box in the frame turned by ``angle``; its long side)
    times ``scale``, moved ``shift_up`` sides up: MediaPipe's re-crop from a network's own
    landmarks. None when no point is finite."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return None
    c, s = math.cos(angle), math.sin(angle)
    u, v = pts[:, 0] * c + pts[:, 1] * s, -pts[:, 0] * s + pts[:, 1] * c  # in the turned frame
    cu, cv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = max(u.max() - u.min(), v.max() - v.min())
    crop = Crop(cu * c - cv * s, cu * s + cv * c, side, angle)
    return crop.scaled(scale, shift_up)


# ---------------------------------------------------------------------- from the body's keypoints
Points = Mapping[str, np.ndarray]  # keypoint name -> (x, y, score), missing ones absent


def body_points(keypoints: np.ndarray, names: tuple[str, ...], threshold: float) -> dict[str, np.ndarray]:
    """A person's keypoints by name, those found and scoring at least ``threshold`` only."""
    return {n: k for n, k in zip(names, np.asarray(keypoints, dtype=np.float64), strict=True)
            if np.isfinite(k[:2]).all() and k[2] >= threshold}


def hand_crop(body: Points, side: str) -> Crop | None:
    """OpenPose's hand box for the person's ``side`` (``"left"``/``"right"``) hand: centred a third
    of the forearm beyond the wrist, 1.5 times the longer of the forearm and 0.9 upper arms
    across; turned so that the forearm points up (the fingers' likely direction). None
    without a wrist and elbow, or when the box is too small for the network."""
    wrist, elbow, shoulder = (body.get(f"{side}_{j}") for j in ("wrist", "elbow", "shoulder"))
    if wrist is None or elbow is None:
        return None
    forearm = wrist[:2] - elbow[:2]
    length = float(np.hypot(*forearm))
    upper = float(np.hypot(*(elbow[:2] - shoulder[:2]))) if shoulder is not None else 0.0
    size = 1.5 * max(length, 0.9 * upper)
    if size < MIN_HAND_SIDE or length == 0:
        return None
    centre = wrist[:2] + 0.33 * forearm
    return Crop(float(centre[0]), float(centre[1]), size, upright(forearm))


def face_crop(body: Points, scale: float = 0.8) -> Crop | None:
    """The face box from nose, eyes and ears (controlnet_aux's ``faceDetect``, itself OpenPose's
    rule: centred on the nose, half-side three eye distances or 1.5 ear distances, whichever is
    largest) times ``scale``: that box is ~1.8x the face (median 1.83x on the 300-W faces) where
    MediaPipe's mesh wants ~1.5x (NME through the body 0.063 -> 0.057 at 0.8). Turned so that
    the eyes are level (right eye on the left of the crop), unless they are under an eighth of
    the box apart: a face in profile, whose eye line says nothing of its turn, stays upright.
    None without a nose and an eye, or too small."""
    nose = body.get("nose")
    eyes = [body.get(f"{s}_eye") for s in ("right", "left")]
    ears = [body.get(f"{s}_ear") for s in ("right", "left")]
    if nose is None or (eyes[0] is None and eyes[1] is None):
        return None
    half = 0.0
    for points, factor in ((eyes, 3.0), (ears, 1.5)):
        for p in points:
            if p is not None:
                half = max(half, float(np.abs(p[:2] - nose[:2]).max()) * factor)
    side = 2 * half * scale
    if side < MIN_SIDE:
        return None
    angle = 0.0
    if eyes[0] is not None and eyes[1] is not None:
        d = eyes[1][:2] - eyes[0][:2]  # right eye -> left eye: the crop's +x
        if np.hypot(*d) >= 2 * half / 8:
            angle = math.atan2(float(d[1]), float(d[0]))
    return Crop(float(nose[0]), float(nose[1]), side, angle)


def person_crop(body: Points, scale: float = 2.5) -> Crop | None:
    """BlazePose's person crop from the body: centred at mid-hip, turned so that mid-hip to
    mid-shoulder points up, ``scale`` times the farthest keypoint's distance from mid-hip
    across (MediaPipe: 1.25 x the diameter of the circle around the body). None without both
    hips and a shoulder."""
    hips = [body.get(f"{s}_hip") for s in ("left", "right")]
    shoulders = [p for p in (body.get(f"{s}_shoulder") for s in ("left", "right")) if p is not None]
    if hips[0] is None or hips[1] is None or not shoulders:
        return None
    mid_hip = (hips[0][:2] + hips[1][:2]) / 2
    mid_shoulder = np.mean([p[:2] for p in shoulders], axis=0)
    pts = np.array([p[:2] for p in body.values()])
    radius = float(np.hypot(*(pts - mid_hip).T).max())
    if radius * scale < MIN_PERSON_SIDE or np.allclose(mid_shoulder, mid_hip):
        return None
    return Crop(float(mid_hip[0]), float(mid_hip[1]), radius * scale, upright(mid_shoulder - mid_hip))
