"""ControlNet's OpenPose conditioning: the pose image and pose JSON its preprocessor makes.

ControlNet's OpenPose models were trained on pose images drawn one way (lllyasviel's
annotator, now ``controlnet_aux.open_pose`` and sd-webui-controlnet): a black canvas; per
person the 17 limbs of OpenPose's COCO-18 as filled ellipses (half-width 4 pixels) in 60 % of
their colour, then the 18 joints as discs of radius 4 in full colour. A model conditioned
on any other drawing (pafpose's own, with lines that grow with the image) gets an input it
never saw. The sizes follow its rules too: the image is resized so that its short side is
``detect_resolution`` with both sides rounded to a multiple of 64 (its ``resize_image``),
people are found and drawn at that size, and the drawing is resized (bilinear) to the size
the same rule gives for ``image_resolution``. Keypoints are normalised by the detection
canvas (``x / width``, no pixel-centre offset), as its detector stores them.

The pose JSON is what sd-webui-controlnet writes and reads back (and the OpenPose editors
made for it): ``{"people": [{"pose_keypoints_2d": [x, y, 1.0, ...], "face_keypoints_2d":
null, ...}], "canvas_height", "canvas_width"}`` with x and y in 0..1 of the canvas, a
missing keypoint as ``0, 0, 0``, and confidence 1.0 for every keypoint drawn: its reader
drops any keypoint whose confidence is below 1. The canvas is the detection canvas, as
there: drawing the JSON on it and resizing to the image's size gives the image again.

``tests/test_controlnet.py`` compares the drawing with the reference implementation's own
``draw_bodypose``, pixel for pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pafpose.checks import check_number
from pafpose.errors import PafposeError
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18, convert_keypoints

if TYPE_CHECKING:
    from pafpose.predict import Estimator

__all__ = ["COLORS", "DEFAULT_RESOLUTION", "KEYPOINTS", "LIMBS", "RESOLUTION_RANGE", "ControlNetPose", "DetectInput",
           "Sizes", "annotate", "detect_input", "detector", "draw", "keypoints", "pose_image", "pose_json", "render",
           "sizes"]

DEFAULT_RESOLUTION = 512  #: ControlNet's default detect and image resolution
RESOLUTION_RANGE = (64, 4096)  #: accepted resolutions (short side, pixels)
MAX_CANVAS_PIXELS = 50_000_000  #: largest canvas (a very wide image at a high resolution): 150 MB as BGR

#: ControlNet's keypoints: OpenPose's COCO-18, in its order.
KEYPOINTS = COCO18.keypoints
#: ControlNet's 17 limbs, in its drawing order (COCO-18's limbs without the two ear-shoulder ones).
LIMBS: tuple[tuple[str, str], ...] = (
    ("neck", "right_shoulder"), ("neck", "left_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("neck", "left_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("neck", "nose"), ("nose", "right_eye"),
    ("right_eye", "right_ear"), ("nose", "left_eye"), ("left_eye", "left_ear"),
)
#: OpenPose's 18 colours (RGB): joint i has colour i, limb i colour i at 60 %.
COLORS = COCO18.keypoint_colors
STICK_WIDTH = 4  #: half-width of a limb's ellipse, in detection-canvas pixels
JOINT_RADIUS = 4  #: radius of a joint's disc
LIMB_SHADE = 0.6  #: a limb's colour is its keypoint colour times this

_LIMB_INDEX = [(KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in LIMBS]


@dataclass(frozen=True)
class Sizes:
    """ControlNet's two sizes for an image, each ``(width, height)``.

    Attributes:
        detect: where people are found and drawn (short side ``detect_resolution``, rounded).
        output: the pose image's size (the rule applied to ``detect`` with ``image_resolution``).
    """

    detect: tuple[int, int]
    output: tuple[int, int]


def _resolution_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """ControlNet's ``resize_image`` size: short side ``resolution``, each side rounded to a multiple
    of 64 (round half to even, as numpy's ``round``; the same float operations in the same order)."""
    k = float(resolution) / min(float(height), float(width))
    w = round(float(width) * k / 64.0) * 64
    h = round(float(height) * k / 64.0) * 64
    if w * h > MAX_CANVAS_PIXELS:
        raise PafposeError(f"ControlNet's canvas for a {width} x {height} image at resolution {resolution} would be "
                           f"{w} x {h}, above {MAX_CANVAS_PIXELS / 1e6:g} Mpixel: use a lower resolution")
    return w, h


def sizes(width: int, height: int, detect_resolution: int = DEFAULT_RESOLUTION,
          image_resolution: int = DEFAULT_RESOLUTION) -> Sizes:
    """ControlNet's detection canvas and pose-image size for a ``width`` x ``height`` image.

    Raises :class:`PafposeError` for a resolution outside :data:`RESOLUTION_RANGE`, a
    non-positive image size, or a canvas above :data:`MAX_CANVAS_PIXELS`.
    """
    check_number("width", width, 1, integer=True)
    check_number("height", height, 1, integer=True)
    check_number("detect_resolution", detect_resolution, *RESOLUTION_RANGE, integer=True)
    check_number("image_resolution", image_resolution, *RESOLUTION_RANGE, integer=True)
    detect = _resolution_size(int(width), int(height), int(detect_resolution))
    return Sizes(detect, _resolution_size(*detect, int(image_resolution)))


def detect_input(image: np.ndarray, detect_resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """``image`` resized as ControlNet resizes it before detection (its ``resize_image``): to
    :func:`sizes`' detection canvas, with Lanczos when the resolution is above the image's
    short side and area averaging otherwise."""
    import cv2

    h, w = image.shape[:2]
    size = sizes(w, h, detect_resolution).detect
    grow = float(detect_resolution) / min(float(h), float(w)) > 1
    return cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4 if grow else cv2.INTER_AREA)


def keypoints(poses: Sequence[Pose], width: int, height: int, threshold: float = 0.1) -> list[np.ndarray]:
    """Each person's ``(18, 2)`` keypoints in ControlNet's order, normalised by a ``width`` x
    ``height`` image (``x / width``, ``y / height``), NaN where missing or scoring below ``threshold``.

    ``poses`` are in that image's pixels, in any layout: keypoints are matched by name (a
    COCO-17 model's neck is the shoulders' mid-point, as OpenPose defines it).
    """
    check_number("threshold", threshold, 0, 1)
    out = []
    for p in poses:
        k = p.keypoints if p.skeleton.name == COCO18.name else convert_keypoints(p.keypoints, p.skeleton, COCO18)
        ok = np.isfinite(k[:, 0]) & np.isfinite(k[:, 1]) & (k[:, 2] >= threshold)
        xy = np.full((len(KEYPOINTS), 2), np.nan)
        xy[ok, 0] = k[ok, 0] / float(width)
        xy[ok, 1] = k[ok, 1] / float(height)
        out.append(xy)
    return out


def draw(people: Iterable[np.ndarray], width: int, height: int) -> np.ndarray:
    """The ``height`` x ``width`` BGR pose image of normalised keypoints (:func:`keypoints`).

    Person after person: the limbs as filled ellipses around the segment (half-length by
    :data:`STICK_WIDTH`, angle and centre truncated to whole numbers as ControlNet's OpenCV
    calls take them), then the joints as discs. A keypoint is placed at ``int(x * width)``.
    """
    import cv2

    canvas = np.zeros((height, width, 3), np.uint8)
    w, h = float(width), float(height)
    for xy in people:
        ok = np.isfinite(xy).all(axis=1)
        for (a, b), (r, g, bl) in zip(_LIMB_INDEX, COLORS, strict=False):
            if not (ok[a] and ok[b]):
                continue
            xa, xb = float(xy[a, 0]) * w, float(xy[b, 0]) * w
            ya, yb = float(xy[a, 1]) * h, float(xy[b, 1]) * h
            length = ((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ya - yb, xa - xb))
            polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), STICK_WIDTH),
                                       int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, [int(float(c) * LIMB_SHADE) for c in (bl, g, r)])
        for i in np.flatnonzero(ok).tolist():
            r, g, bl = COLORS[i]
            cv2.circle(canvas, (int(float(xy[i, 0]) * w), int(float(xy[i, 1]) * h)), JOINT_RADIUS, (bl, g, r), -1)
    return canvas


def pose_image(people: Iterable[np.ndarray], size: Sizes) -> np.ndarray:
    """The pose image ControlNet is given: drawn on the detection canvas, resized (bilinear) to
    the output size. ``people`` as :func:`keypoints` gives them."""
    import cv2

    return cv2.resize(draw(people, *size.detect), size.output, interpolation=cv2.INTER_LINEAR)


def pose_json(people: Iterable[np.ndarray], size: Sizes) -> dict[str, Any]:
    """sd-webui-controlnet's pose JSON of normalised keypoints (:func:`keypoints`); the canvas is
    the detection canvas. Coordinates are written unrounded, so the JSON redraws the image exactly."""

    def flat(xy: np.ndarray) -> list[float]:
        return [v for x, y in xy.tolist() for v in ((x, y, 1.0) if math.isfinite(x) and math.isfinite(y)
                                                     else (0.0, 0.0, 0.0))]

    return {"people": [{"pose_keypoints_2d": flat(xy), "face_keypoints_2d": None, "hand_left_keypoints_2d": None,
                        "hand_right_keypoints_2d": None} for xy in people],
            "canvas_height": size.detect[1], "canvas_width": size.detect[0]}


def render(poses: Sequence[Pose], image_size: tuple[int, int], detect_resolution: int = DEFAULT_RESOLUTION,
           image_resolution: int = DEFAULT_RESOLUTION, threshold: float = 0.1) -> np.ndarray:
    """ControlNet's pose image (BGR) of people found in an image of ``image_size`` (``(width,
    height)``; ``poses`` in its pixels), at ControlNet's sizes for that image.

    Example:
        >>> people = est.predict(image)
        >>> cv2.imwrite("pose.png", render(people, (image.shape[1], image.shape[0])))
    """
    w, h = image_size
    return pose_image(keypoints(poses, w, h, threshold), sizes(w, h, detect_resolution, image_resolution))


@dataclass(frozen=True)
class ControlNetPose:
    """What ControlNet's OpenPose preprocessor gives for one image.

    Attributes:
        image: the pose image, BGR, ``sizes.output``.
        json: the pose JSON (:func:`pose_json`).
        poses: the people, in the detection canvas's pixels.
        sizes: the detection canvas and output sizes.
    """

    image: np.ndarray
    json: dict[str, Any]
    poses: Poses
    sizes: Sizes


def annotate(estimator: Estimator, image: Any, detect_resolution: int = DEFAULT_RESOLUTION,
             image_resolution: int = DEFAULT_RESOLUTION, threshold: float = 0.1, color: str = "BGR") -> ControlNetPose:
    """ControlNet's OpenPose preprocessing of ``image`` with pafpose's network: the image resized
    by ControlNet's rule, people found there, drawn and written as ControlNet does.

    ``image``: a path, an array (``color`` order) or a PIL image, as :meth:`Estimator.predict` takes.

    Example:
        >>> result = annotate(pafpose.Estimator(), "photo.jpg")
        >>> cv2.imwrite("pose.png", result.image); json.dumps(result.json)
    """
    from pafpose.images import as_bgr

    bgr = as_bgr(image, color)
    size = sizes(bgr.shape[1], bgr.shape[0], detect_resolution, image_resolution)
    poses = estimator.predict(detect_input(bgr, detect_resolution))
    people = keypoints(poses, *size.detect, threshold)
    return ControlNetPose(pose_image(people, size), pose_json(people, size), poses, size)


@dataclass(frozen=True)
class DetectInput:
    """The preprocessing hook (:data:`pafpose.predict.Prepare`) that resizes each image as
    ControlNet's preprocessor does before detection (:func:`detect_input`)."""

    detect_resolution: int = DEFAULT_RESOLUTION

    def __post_init__(self) -> None:
        check_number("detect_resolution", self.detect_resolution, *RESOLUTION_RANGE, integer=True)
        object.__setattr__(self, "detect_resolution", int(self.detect_resolution))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return detect_input(image, self.detect_resolution)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape :meth:`__call__` makes of an image of ``shape``: the detection canvas."""
        w, h = sizes(shape[1], shape[0], self.detect_resolution).detect
        return (h, w, *shape[2:])


def detector(estimator: Estimator, detect_resolution: int = DEFAULT_RESOLUTION) -> Estimator:
    """``estimator`` finding people as ControlNet's preprocessor does: in each image or frame
    resized by ControlNet's rule (:func:`sizes`), reported in the image's own pixels (the
    Estimator maps them back). ``pafpose predict --render controlnet`` runs through it, so that
    its keypoint files and pose images come from the same people; every method of the
    Estimator (``predict``, ``predict_batch``, ``pipeline``, ``stream``) works as usual.

    Example:
        >>> det = detector(pafpose.Estimator(), 512)
        >>> people = det.predict("photo.jpg")  # in photo.jpg's pixels
    """
    return estimator.with_options(prepare=DetectInput(detect_resolution))
