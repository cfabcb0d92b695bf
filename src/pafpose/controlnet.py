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

Its preprocessors that add hands and faces (:data:`MODES`: ``openpose_hand``, ``openpose_face``,
``openpose_faceonly``, ``openpose_full``) draw, after each person's body, each hand's 20 bones
as 2-pixel lines in its 20 hues and its points as blue discs of radius 4, then the face's
points as white discs of radius 3; a point is drawn only where both its whole-pixel
coordinates are above 0 (its detector marks a missing point at -1), so one in the canvas's
first row or column is not drawn either. The JSON then carries ``hand_left_keypoints_2d``,
``hand_right_keypoints_2d`` (the person's own left and right hand) and ``face_keypoints_2d``
(OpenPose's 70 points) normalised like the body, a missing point ``0, 0, 0`` as OpenPose
writes it and a hand or face with no point found ``null``. ControlNet's own detector writes a
hand's missing points at ``(-1/W, -1/H)`` with confidence 1 instead (its hand and face drawing
takes no missing point); pafpose never writes a point it did not find as found, so a reader
that redraws the JSON with that drawing must skip the missing ones.

``tests/test_controlnet.py`` compares the drawing with the reference implementation's own
``draw_bodypose``, ``draw_handpose`` and ``draw_facepose``, pixel for pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pafpose.checks import check_number
from pafpose.draw import HAND_LIMBS
from pafpose.errors import PafposeError
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18, HAND_KEYPOINTS, PART_KEYPOINTS, convert_keypoints

if TYPE_CHECKING:
    from pafpose.predict import Estimator

__all__ = ["COLORS", "DEFAULT_MODE", "DEFAULT_RESOLUTION", "HAND_COLORS", "KEYPOINTS", "LIMBS", "MODES",
           "RESOLUTION_RANGE", "ControlNetPose", "DetectInput", "Person", "Sizes", "annotate", "detect_input",
           "detector", "draw", "keypoints", "parts_needed", "persons", "pose_image", "pose_json", "render", "sizes"]

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
#: a point further than this many pixels from the canvas's origin is drawn as missing, as NaN and inf
#: are: OpenCV can't place it (int32 pixels) and no canvas (at most MAX_CANVAS_PIXELS / 64 long) reaches it
FAR_PIXELS = 2**24

_LIMB_INDEX = [(KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in LIMBS]
_HAND_INDEX = [(HAND_KEYPOINTS.index(a), HAND_KEYPOINTS.index(b)) for a, b in HAND_LIMBS]

#: ControlNet's OpenPose preprocessors, named as sd-webui-controlnet and controlnet_aux name them,
#: and what each draws: ``(body, hands, face)``, its ``OpenposeDetector``'s ``include_body``,
#: ``include_hand`` and ``include_face``. The JSON always carries the body (found in every mode).
MODES: dict[str, tuple[bool, bool, bool]] = {
    "openpose": (True, False, False), "openpose_hand": (True, True, False), "openpose_face": (True, False, True),
    "openpose_faceonly": (False, False, True), "openpose_full": (True, True, True),
}
DEFAULT_MODE = "openpose"  #: the body alone, ControlNet's default preprocessor
#: ControlNet's 20 hand bones' colours (RGB), in :data:`~pafpose.draw.HAND_LIMBS`' order: bone ``i``
#: has hue ``i / 20`` at full saturation and value, as OpenCV rounds its float colour.
HAND_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 77, 0), (255, 153, 0), (255, 229, 0), (204, 255, 0), (128, 255, 0), (51, 255, 0),
    (0, 255, 25), (0, 255, 102), (0, 255, 179), (0, 255, 255), (0, 178, 255), (0, 102, 255), (0, 25, 255),
    (51, 0, 255), (128, 0, 255), (204, 0, 255), (255, 0, 230), (255, 0, 153), (255, 0, 77),
)
HAND_LINE = 2  #: a hand bone's line thickness
HAND_POINT = (4, (0, 0, 255))  #: a hand point's disc: radius and colour (RGB)
FACE_POINT = (3, (255, 255, 255))  #: a face point's disc: radius and colour (RGB)


def _mode(mode: str) -> tuple[bool, bool, bool]:
    """``(body, hands, face)`` of a :data:`MODES` name; a one-line error for any other."""
    if not isinstance(mode, str) or mode not in MODES:
        raise PafposeError(f"ControlNet mode must be one of {', '.join(MODES)}, got {mode!r}")
    return MODES[mode]


def parts_needed(mode: str) -> set[str]:
    """The :attr:`Pose.parts <pafpose.pose.Pose.parts>` that ``mode`` draws and writes (``"hand_left"``,
    ``"hand_right"``, ``"face"``): what to ask the estimator for, so that a body-only mode costs nothing more.

    Example:
        >>> parts_needed("openpose_full")
        {'face', 'hand_left', 'hand_right'}
    """
    _, hands, face = _mode(mode)
    return ({"hand_left", "hand_right"} if hands else set()) | ({"face"} if face else set())


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
    output = _resolution_size(*detect, int(image_resolution))
    for what, resolution, (w, h) in (("detect", detect_resolution, detect), ("image", image_resolution, output)):
        if w * h > MAX_CANVAS_PIXELS:  # the image's own size named: the detection canvas means nothing to a user
            raise PafposeError(f"ControlNet's canvas for a {width} x {height} image at {what} resolution {resolution} "
                               f"would be {w} x {h}, above {MAX_CANVAS_PIXELS / 1e6:g} Mpixel: use a lower {what} "
                               "resolution")
    return Sizes(detect, output)


def detect_input(image: np.ndarray, detect_resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """``image`` resized as ControlNet resizes it before detection (its ``resize_image``): to
    :func:`sizes`' detection canvas, with Lanczos when the resolution is above the image's
    short side and area averaging otherwise."""
    import cv2

    h, w = image.shape[:2]
    size = sizes(w, h, detect_resolution).detect
    grow = float(detect_resolution) / min(float(h), float(w)) > 1
    return cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4 if grow else cv2.INTER_AREA)


def _normalised(k: np.ndarray, width: int, height: int, threshold: float) -> np.ndarray:
    """``(n, 3)`` pixel keypoints -> ``(n, 2)`` normalised by the canvas, NaN where missing or weak."""
    ok = np.isfinite(k[:, 0]) & np.isfinite(k[:, 1]) & (k[:, 2] >= threshold)
    xy = np.full((len(k), 2), np.nan)
    xy[ok, 0] = k[ok, 0] / float(width)
    xy[ok, 1] = k[ok, 1] / float(height)
    return xy


def keypoints(poses: Sequence[Pose], width: int, height: int, threshold: float = 0.1) -> list[np.ndarray]:
    """Each person's ``(18, 2)`` keypoints in ControlNet's order, normalised by a ``width`` x
    ``height`` image (``x / width``, ``y / height``), NaN where missing or scoring below ``threshold``.

    ``poses`` are in that image's pixels, in any layout: keypoints are matched by name (a
    COCO-17 model's neck is the shoulders' mid-point, as OpenPose defines it).
    """
    check_number("threshold", threshold, 0, 1)
    return [_normalised(p.keypoints if p.skeleton.name == COCO18.name else
                        convert_keypoints(p.keypoints, p.skeleton, COCO18), width, height, threshold) for p in poses]


@dataclass(frozen=True)
class Person:
    """One person as ControlNet draws and writes them: every point normalised by the canvas
    (``x / width``, ``y / height``), NaN where missing.

    Attributes:
        body: ``(18, 2)``, in :data:`KEYPOINTS`' order.
        hand_left: ``(21, 2)``, the person's own left hand in :data:`~pafpose.skeleton.HAND_KEYPOINTS`'
            order; None: no hand (``null`` in the JSON).
        hand_right: the right hand, the same way.
        face: ``(70, 2)``, in :data:`~pafpose.skeleton.FACE_KEYPOINTS`' order; None: no face.
    """

    body: np.ndarray
    hand_left: np.ndarray | None = None
    hand_right: np.ndarray | None = None
    face: np.ndarray | None = None


def persons(poses: Sequence[Pose], width: int, height: int, threshold: float = 0.1,
            mode: str = DEFAULT_MODE) -> list[Person]:
    """Each person normalised as :func:`keypoints` does, with the hands and face that ``mode``
    draws (:func:`parts_needed`) from their :attr:`~pafpose.pose.Pose.parts`.

    A part the person lacks, or whose points all score below ``threshold``, is None: no hand is
    written as no hand, never as 21 missing points.
    """
    wanted = sorted(parts_needed(mode))
    out = []
    for p, body in zip(poses, keypoints(poses, width, height, threshold), strict=True):
        parts = {}
        for name in wanted:
            k = p.parts.get(name)
            if k is None:
                continue
            if len(k) != len(PART_KEYPOINTS[name]):
                raise PafposeError(f"part {name!r} has {len(k)} points; ControlNet draws {len(PART_KEYPOINTS[name])}")
            xy = _normalised(k, width, height, threshold)
            if np.isfinite(xy[:, 0]).any():
                parts[name] = xy
        out.append(Person(body, **parts))
    return out


def _person(person: Person | np.ndarray) -> Person:
    return person if isinstance(person, Person) else Person(np.asarray(person, dtype=np.float64))


def draw(people: Iterable[Person | np.ndarray], width: int, height: int, mode: str = DEFAULT_MODE) -> np.ndarray:
    """The ``height`` x ``width`` BGR pose image of normalised people (:func:`persons`, or the
    body's arrays of :func:`keypoints`), drawn as ControlNet's ``mode`` draws them (:data:`MODES`).

    Person after person: the body's limbs as filled ellipses around the segment (half-length by
    :data:`STICK_WIDTH`, angle and centre truncated to whole numbers as ControlNet's OpenCV
    calls take them), then its joints as discs; then the left hand, the right hand and the face
    when the mode draws them. A point is placed at ``int(x * width)``; one that is NaN, infinite or
    beyond :data:`FAR_PIXELS` is missing.
    """
    import cv2

    body_on, hands_on, face_on = _mode(mode)
    canvas = np.zeros((height, width, 3), np.uint8)
    w, h = float(width), float(height)
    for person in map(_person, people):
        if body_on:
            _draw_body(canvas, person.body, w, h)
        for hand in (person.hand_left, person.hand_right) if hands_on else ():
            if hand is not None:
                px, seen = _pixels(hand, w, h)
                for (a, b), (r, g, bl) in zip(_HAND_INDEX, HAND_COLORS, strict=True):
                    if seen[a] and seen[b]:
                        cv2.line(canvas, px[a], px[b], (bl, g, r), thickness=HAND_LINE)
                _discs(canvas, px, seen, *HAND_POINT)
        if face_on and person.face is not None:
            _discs(canvas, *_pixels(person.face, w, h), *FACE_POINT)
    return canvas


def _draw_body(canvas: np.ndarray, xy: np.ndarray, w: float, h: float) -> None:
    import cv2

    with np.errstate(invalid="ignore"):  # NaN compares False: missing
        ok = (np.abs(xy * (w, h)) < FAR_PIXELS).all(axis=1)
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


def _pixels(xy: np.ndarray, w: float, h: float) -> tuple[list[tuple[int, int]], list[bool]]:
    """A hand's or face's whole-pixel points, and which ControlNet draws: found, and both
    coordinates above 0 (its ``> eps`` test on whole pixels, which its -1 marks of missing points fail);
    a point beyond :data:`FAR_PIXELS` is missing."""
    px = [(int(x * w), int(y * h)) if abs(x * w) < FAR_PIXELS and abs(y * h) < FAR_PIXELS else (-1, -1)
          for x, y in xy.tolist()]  # NaN and inf compare False: missing
    return px, [x > 0 and y > 0 for x, y in px]


def _discs(canvas: np.ndarray, px: list[tuple[int, int]], seen: list[bool], radius: int,
           rgb: tuple[int, int, int]) -> None:
    import cv2

    for p, ok in zip(px, seen, strict=True):
        if ok:
            cv2.circle(canvas, p, radius, rgb[::-1], thickness=-1)


def pose_image(people: Iterable[Person | np.ndarray], size: Sizes, mode: str = DEFAULT_MODE) -> np.ndarray:
    """The pose image ControlNet is given: drawn on the detection canvas as ``mode`` draws
    (:func:`draw`), resized (bilinear) to the output size. ``people`` as :func:`persons` gives them."""
    import cv2

    return cv2.resize(draw(people, *size.detect, mode), size.output, interpolation=cv2.INTER_LINEAR)


def pose_json(people: Iterable[Person | np.ndarray], size: Sizes) -> dict[str, Any]:
    """sd-webui-controlnet's pose JSON of normalised people (:func:`persons`): the body, and the
    hands and face each person carries (``null`` where none); the canvas is the detection canvas.
    Coordinates are written unrounded, so the JSON redraws the image exactly."""

    def flat(xy: np.ndarray | None) -> list[float] | None:
        if xy is None:
            return None
        return [v for x, y in xy.tolist() for v in ((x, y, 1.0) if math.isfinite(x) and math.isfinite(y)
                                                     else (0.0, 0.0, 0.0))]

    return {"people": [{"pose_keypoints_2d": flat(p.body), "face_keypoints_2d": flat(p.face),
                        "hand_left_keypoints_2d": flat(p.hand_left), "hand_right_keypoints_2d": flat(p.hand_right)}
                       for p in map(_person, people)],
            "canvas_height": size.detect[1], "canvas_width": size.detect[0]}


def render(poses: Sequence[Pose], image_size: tuple[int, int], detect_resolution: int = DEFAULT_RESOLUTION,
           image_resolution: int = DEFAULT_RESOLUTION, threshold: float = 0.1, mode: str = DEFAULT_MODE) -> np.ndarray:
    """ControlNet's pose image (BGR) of people found in an image of ``image_size`` (``(width,
    height)``; ``poses`` in its pixels), at ControlNet's sizes for that image, as ``mode`` draws
    (:data:`MODES`; hands and faces from each person's :attr:`~pafpose.pose.Pose.parts`).

    Example:
        >>> people = est.predict(image)
        >>> cv2.imwrite("pose.png", render(people, (image.shape[1], image.shape[0])))
    """
    w, h = image_size
    size = sizes(w, h, detect_resolution, image_resolution)
    return pose_image(persons(poses, w, h, threshold, mode), size, mode)


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
             image_resolution: int = DEFAULT_RESOLUTION, threshold: float = 0.1, color: str = "BGR",
             mode: str = DEFAULT_MODE) -> ControlNetPose:
    """ControlNet's OpenPose preprocessing of ``image`` with pafpose's network: the image resized
    by ControlNet's rule, people found there, drawn and written as ControlNet's ``mode`` does
    (the hands and face are those the estimator's people carry: :func:`parts_needed` says which).

    ``image``: a path, an array (``color`` order) or a PIL image, as :meth:`Estimator.predict` takes.

    Example:
        >>> result = annotate(pafpose.Estimator(), "photo.jpg")
        >>> cv2.imwrite("pose.png", result.image); json.dumps(result.json)
    """
    from pafpose.images import as_bgr

    _mode(mode)  # a wrong mode fails before the network runs
    bgr = as_bgr(image, color)
    size = sizes(bgr.shape[1], bgr.shape[0], detect_resolution, image_resolution)
    poses = estimator.predict(detect_input(bgr, detect_resolution))
    people = persons(poses, *size.detect, threshold, mode)
    return ControlNetPose(pose_image(people, size, mode), pose_json(people, size), poses, size)


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
