"""Faces: OpenPose's 70 face points from MediaPipe's face mesh and iris networks.

The first crop is the face box the body gives (:func:`~.crops.face_crop`, eyes level) or,
for close-ups where the body is barely visible, a box of MediaPipe's face detector
(:class:`FaceDetector`, OpenPose's ``--face_detector``). Each of the mesh network's answers
gives the next crop as MediaPipe makes it (eye corners 33 -> 263 level, 1.5x the mesh's box:
``face_landmark_landmarks_to_roi``); the third answer is kept (a second re-crop recovers the
body's looser boxes: NME through the body 0.057 -> 0.054 on the 300-W faces, about 1.4 ms a
face; BENCHMARKS.md). Its 468 points give the 68 iBUG points through a
fixed vertex table (:data:`MESH_TO_IBUG`), and the iris network on each eye gives the two
pupils (OpenPose's points 68 and 69).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pafpose.wholebody.crops import MIN_SIDE, Crop, around
from pafpose.wholebody.nets import SsdDetector, landmark_net, recropped, sigmoid, to_input

#: The face-mesh vertex for each of the 68 iBUG (300-W) points, in iBUG's order (jaw 0-16,
#: brows 17-26, nose 27-35, eyes 36-47, mouth 48-67). Fitted on the 165 300-W HELEN faces of
#: ../shared/wholebody (for each point the vertex of least mean error, the mesh found on crops
#: from the faces' boxes): NME 0.049 two-fold cross-validated (jaw 0.084), against 0.058 (jaw
#: 0.106) for the table commonly published for this mapping (GeneFace++'s
#: ``index_lm68_from_lm478``), which it shares on 44 points.
MESH_TO_IBUG: tuple[int, ...] = (
    127, 227, 137, 215, 172, 136, 149, 148, 152, 400, 378, 365, 397, 435, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 460,
    7, 159, 158, 155, 153, 144, 382, 385, 387, 249, 373, 380,
    61, 73, 37, 11, 267, 304, 291, 321, 314, 17, 84, 181, 78, 82, 13, 268, 292, 317, 14, 87,
)
#: The eye corners of the mesh: the person's right eye (image left) and left eye, outer first.
RIGHT_EYE, LEFT_EYE = (33, 133), (263, 362)


def eye_crop(mesh: np.ndarray, corners: tuple[int, int]) -> Crop:
    """MediaPipe's iris crop: centred between an eye's corners, 2.3x their distance, level with them."""
    a, b = mesh[corners[0], :2], mesh[corners[1], :2]
    d = b - a if corners == RIGHT_EYE else a - b  # both turned so that image-left -> image-right is +x
    return Crop(*((a + b) / 2), 2.3 * float(np.hypot(*d)), math.atan2(float(d[1]), float(d[0])))


def level_crop(mesh: np.ndarray) -> Crop | None:
    """MediaPipe's next face crop from a mesh: eye line level, 1.5x the mesh's box."""
    d = mesh[LEFT_EYE[0], :2] - mesh[RIGHT_EYE[0], :2]
    return around(mesh, math.atan2(float(d[1]), float(d[0])), 1.5)


class FaceNet:
    """70 face points (68 iBUG + the right and left pupil) of each face crop."""

    def __init__(self, threads: int | None = None, precision: str = "auto", passes: int = 3,
                 min_presence: float = 0.5, pupils: bool = True) -> None:
        self.net = landmark_net("mediapipe-face", threads, precision)
        self.iris = landmark_net("mediapipe-iris", threads, precision) if pupils else None
        self.passes, self.min_presence = passes, min_presence

    def meshes(self, image: np.ndarray, crops: Sequence[Crop | None]) -> list[tuple[np.ndarray, float] | None]:
        """The 468-point mesh (image pixels) and face presence per crop (None: no face)."""
        n = self.net.side
        out: list[tuple[np.ndarray, float] | None] = []
        for last in recropped(self.net, image, crops, self.passes,
                              lambda crop, rows: level_crop(crop.to_image(rows[0].reshape(468, 3), n))):
            presence = -1.0 if last is None else float(sigmoid(last[1][1][0]))
            if last is None or presence < self.min_presence:
                out.append(None)
                continue
            crop, (lm, _) = last
            out.append((crop.to_image(lm.reshape(468, 3), n), presence))
        return out

    def pupils(self, image: np.ndarray, meshes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``(2, 2)`` the right and the left pupil of each mesh (the iris network's iris centre),
        every eye in one call."""
        assert self.iris is not None
        if not meshes:
            return []
        n = self.iris.side
        crops = [eye_crop(mesh, corners) for mesh in meshes for corners in (RIGHT_EYE, LEFT_EYE)]
        pixels = [c.cut(image, n) for c in crops]
        pixels[1::2] = [p[:, ::-1] for p in pixels[1::2]]  # the network sees every eye as the right one
        iris = self.iris(to_input(pixels))[1].reshape(len(crops), 5, 3)
        iris[1::2, :, 0] = n - iris[1::2, :, 0]  # the left eyes mirrored back
        centres = np.stack([crop.to_image(i[0], n)[:2] for crop, i in zip(crops, iris, strict=True)])
        return list(centres.reshape(len(meshes), 2, 2))

    def __call__(self, image: np.ndarray, crops: Sequence[Crop | None]) -> list[np.ndarray]:
        """``(70, 3)`` ``x, y, presence`` per crop in image pixels; all missing (NaN, 0) where
        there is no crop or no face."""
        meshes = self.meshes(image, crops)
        found = [m for m in meshes if m is not None]
        pupils = iter(self.pupils(image, [mesh for mesh, _ in found]) if self.iris is not None else [])
        out = []
        for one in meshes:
            face = np.tile([np.nan, np.nan, 0.0], (70, 1))
            if one is not None:
                mesh, presence = one
                face[:68, :2] = mesh[list(MESH_TO_IBUG), :2]
                face[:68, 2] = presence
                if self.iris is not None:
                    face[68:, :2] = next(pupils)
                    face[68:, 2] = presence
            out.append(face)
        return out


# ---------------------------------------------------------------------- close-ups: the face detector
class FaceDetector(SsdDetector):
    """MediaPipe's short-range face detector (BlazeFace) on a whole image: the faces of
    close-up portraits, where the body is barely visible (OpenPose's ``--face_detector``).
    Each face gives a crop for :class:`FaceNet` as MediaPipe makes it (eyes level, 1.5x the box)."""

    NET = "mediapipe-face-detector"
    #: Its 896 anchors: 16 x 16 cells x 2, then 8 x 8 x 6.
    LAYERS = ((16, 2), (8, 6))

    def __call__(self, image: np.ndarray) -> list[tuple[Crop, float]]:
        """The faces found, best first: their crop and score."""
        out = []
        for face in self.detections(image):
            right, left = face.keypoints[:2]  # the right eye first
            d = left - right
            side = float(max(face.box[2:])) * 1.5
            if side >= MIN_SIDE:
                out.append((Crop(float(face.box[0]), float(face.box[1]), side, math.atan2(float(d[1]), float(d[0]))),
                            face.score))
        return out
