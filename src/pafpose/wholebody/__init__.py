"""Whole body: each person's hands, face and feet, found from their body (OpenPose's method).

The body's PAF keypoints give each person's hand boxes (beyond the wrist along the
forearm), face box (nose, eyes, ears) and a person crop for the feet (:mod:`.crops`); a
crop network then finds 21 points per hand (:mod:`.hands`), the 68 face points and two
pupils (:mod:`.face`) and the heels and big toes (:mod:`.feet`). The networks are Google
MediaPipe's published landmark networks (Apache-2.0, :data:`pafpose.weights.PART_NETS`),
run by OpenVINO. The results go into :attr:`pafpose.pose.Pose.parts` (``"hand_left"``,
``"hand_right"``, ``"face"``, ``"feet"``), which every output writes: OpenPose JSON's hand and
face arrays, BODY-25's feet, COCO-WholeBody.

Close-ups, where the body gives no crop, can use MediaPipe's detectors on the whole image as
well (``face_detector``/``hand_detector="detector"``, OpenPose's ``--face_detector``/
``--hand_detector``): a face or hand goes to the person it belongs to, or becomes a person of its own.

A part the networks cannot produce is missing (NaN, score 0), never invented: BlazePose has
no small toe, hands under ~25 pixels fail in every recipe, a face turned away has no mesh.

Example:
    >>> est = Estimator(parts=("hands", "face", "feet"))      # or WholeBody()(image, people)
    >>> people = est.predict("photo.jpg"); people[0].parts["hand_left"].shape  # (21, 3)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from pafpose.errors import PafposeError
from pafpose.estimator_config import FACE_DETECTORS, HAND_DETECTORS, PARTS, check_parts
from pafpose.pose import Pose, Poses
from pafpose.skeleton import PART_KEYPOINTS, get_skeleton
from pafpose.wholebody.crops import Crop, body_points, face_crop, hand_crop, person_crop

#: A body keypoint must score this much to place a crop.
BODY_THRESHOLD = 0.1


__all__ = ["FACE_DETECTORS", "HAND_DETECTORS", "PARTS", "WholeBody", "check_parts"]

#: A detected hand goes to a person whose wrist lies within this many of its crop's sides of the
#: hand's own wrist, or, for an arm without a wrist, whose elbow does (about a forearm: 2.5-3 palm
#: boxes, and the crop is 2.6 boxes across).
WRIST_REACH, ELBOW_REACH = 0.5, 1.5


def _empty(name: str) -> np.ndarray:
    return np.tile([np.nan, np.nan, 0.0], (len(PART_KEYPOINTS[name]), 1))


class WholeBody:
    """Adds hands, faces and feet to people found by the body network.

    ``WholeBody(parts)(image, people)``: ``image`` a BGR array, ``people`` the body's
    :class:`~pafpose.pose.Poses` in that image's pixels. Every person gets every part asked
    for (missing where not found), so the layout of a run's outputs does not depend on
    what was seen. ``face_detector``: :data:`FACE_DETECTORS`; ``hand_detector``:
    :data:`HAND_DETECTORS`. ``precision``: the networks' (``auto``: bfloat16 where the CPU computes
    it natively, else float32; :mod:`.nets`).
    """

    def __init__(self, parts: Iterable[str] = PARTS, face_detector: str = "body", threads: int | None = None,
                 precision: str = "auto", hand_detector: str = "body") -> None:
        from pafpose.wholebody.face import FaceDetector, FaceNet
        from pafpose.wholebody.feet import FootNet
        from pafpose.wholebody.hands import HandNet, PalmDetector

        self.parts = check_parts(parts)
        if face_detector not in FACE_DETECTORS:
            raise PafposeError(f"unknown face detector {face_detector!r}: use {' or '.join(FACE_DETECTORS)}")
        if face_detector != "body" and "face" not in self.parts:
            raise PafposeError("a face detector finds faces: ask for the face too")
        if hand_detector not in HAND_DETECTORS:
            raise PafposeError(f"unknown hand detector {hand_detector!r}: use {' or '.join(HAND_DETECTORS)}")
        if hand_detector != "body" and "hands" not in self.parts:
            raise PafposeError("a hand detector finds hands: ask for the hands too")
        self.face_detector, self.hand_detector = face_detector, hand_detector
        self.hands = HandNet(threads, precision) if "hands" in self.parts else None
        self.face = FaceNet(threads, precision) if "face" in self.parts else None
        self.feet = FootNet(threads, precision) if "feet" in self.parts else None
        self.detector = FaceDetector(threads, precision) if face_detector == "detector" else None
        self.palms = PalmDetector(threads, precision) if hand_detector == "detector" else None
        self.timings: dict[str, float] = {"hands": 0.0, "face": 0.0, "feet": 0.0}

    def names(self) -> tuple[str, ...]:
        """The :attr:`Pose.parts` names this adds."""
        out: list[str] = []
        if self.face is not None:
            out.append("face")
        if self.hands is not None:
            out += ["hand_left", "hand_right"]
        if self.feet is not None:
            out.append("feet")
        return tuple(out)

    def __call__(self, image: np.ndarray, people: Sequence[Pose]) -> Poses:
        """The same people with their parts (and, with the detectors, faces and hands without a body as people)."""
        people = people if isinstance(people, Poses) else Poses(people)
        bodies = [body_points(p.keypoints, p.skeleton.keypoints, BODY_THRESHOLD) for p in people]
        found: dict[str, list[np.ndarray]] = {}
        t0 = time.perf_counter()
        own_hands: list[tuple[str, np.ndarray]] = []
        if self.hands is not None:
            hands = self.hands(image, [hand_crop(b, side) for side in ("left", "right") for b in bodies])  # one call
            found["hand_left"], found["hand_right"] = hands[:len(bodies)], hands[len(bodies):]
            if self.palms is not None:
                own_hands = self._detected_hands(image, found, bodies)
        t1 = time.perf_counter()
        extra: list[np.ndarray] = []
        if self.face is not None:
            crops: list[Crop | None] = [face_crop(b) for b in bodies]
            if self.detector is not None:
                extra_crops = self._detected_faces(image, crops, bodies)
                crops += extra_crops
            faces = self.face(image, crops)
            found["face"], extra = faces[:len(bodies)], faces[len(bodies):]
        t2 = time.perf_counter()
        if self.feet is not None:
            found["feet"] = self.feet(image, [person_crop(b) for b in bodies], bodies)
        t3 = time.perf_counter()
        for key, dt in zip(("hands", "face", "feet"), (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.timings[key] += dt
        out = [p.replace(parts={**p.parts, **{name: found[name][i] for name in self.names()}})
               for i, p in enumerate(people)]
        skeleton = people.skeleton or get_skeleton("coco18")  # no one found and no layout said: OpenPose's
        for face in extra:  # a face the detector found that no body explains: a person with a face only
            if not np.isfinite(face[:, 0]).any():
                continue
            parts = {name: _empty(name) for name in self.names()}
            parts["face"] = face
            out.append(Pose(np.tile([np.nan, np.nan, 0.0], (skeleton.num_keypoints, 1)), float(face[0, 2]),
                            skeleton, parts=parts))
        for side, hand in own_hands:  # likewise a hand no body takes: a person with that hand only
            parts = {name: _empty(name) for name in self.names()}
            parts[f"hand_{side}"] = hand
            out.append(Pose(np.tile([np.nan, np.nan, 0.0], (skeleton.num_keypoints, 1)), float(hand[0, 2]),
                            skeleton, parts=parts))
        return people.derive(out)

    def _detected_hands(self, image: np.ndarray, found: dict[str, list[np.ndarray]],
                        bodies: Sequence[dict[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
        """Detected palms' hands: each one the body did not find goes to the person whose wrist (or,
        for an arm without one, elbow) is nearest, among those missing that hand (``found`` is
        filled in); the others are returned with their side from the network's handedness."""
        from pafpose.wholebody.hands import palm_crop

        assert self.palms is not None and self.hands is not None
        known = [h for side in ("left", "right") for h in found[f"hand_{side}"] if np.isfinite(h[0, 0])]
        palms = [(palm, crop) for palm in self.palms(image) if (crop := palm_crop(palm)) is not None
                 and not any(_same_hand(palm.keypoints[[0, 2]], h[[0, 9], :2]) for h in known)]
        own: list[tuple[str, np.ndarray]] = []
        for (_, crop), hand_found in zip(palms, self.hands.find(image, [c for _, c in palms]), strict=True):
            if hand_found is None:
                continue
            hand, right = hand_found
            if any(_same_hand(hand[[0, 9], :2], h[[0, 9], :2]) for h in known):  # two palms, one hand
                continue
            known.append(hand)
            owner = _owner(hand[0, :2], crop.side, bodies, found)
            if owner is None:
                own.append(("right" if right >= 0.5 else "left", hand))
            else:
                found[f"hand_{owner[1]}"][owner[0]] = hand
        return own

    def _detected_faces(self, image: np.ndarray, crops: list[Crop | None],
                        bodies: Sequence[dict[str, np.ndarray]]) -> list[Crop | None]:
        """Detected faces: each gives a person's missing face crop when their head is in it,
        else a crop of its own (a face without a body)."""
        assert self.detector is not None
        own: list[Crop | None] = []
        for crop, _ in self.detector(image):
            inside = [i for i, b in enumerate(bodies) if any(
                (k in b and abs(b[k][0] - crop.cx) < crop.side / 2 and abs(b[k][1] - crop.cy) < crop.side / 2)
                for k in ("nose", "left_eye", "right_eye"))]
            if not inside:
                own.append(crop)
            elif crops[inside[0]] is None:
                crops[inside[0]] = crop
        return own


def _same_hand(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two hands' wrist and middle-finger base (``(2, 2)`` each) are one hand's: both
    within half the first's wrist-to-finger-base length of the other's."""
    reach = 0.5 * float(np.hypot(*(a[1] - a[0])))
    return bool((np.hypot(*(a - b).T) < reach).all())


def _owner(wrist: np.ndarray, side: float, bodies: Sequence[dict[str, np.ndarray]],
           found: dict[str, list[np.ndarray]]) -> tuple[int, str] | None:
    """The person and side a detected hand (its wrist; its crop's ``side``) belongs to: the nearest
    arm end, relative to its reach (:data:`WRIST_REACH`, :data:`ELBOW_REACH`), among the arms
    whose hand is missing; None when no arm reaches it."""
    best, owner = 1.0, None
    for i, body in enumerate(bodies):
        for arm in ("left", "right"):
            if np.isfinite(found[f"hand_{arm}"][i][0, 0]):
                continue
            end, reach = body.get(f"{arm}_wrist"), WRIST_REACH
            if end is None:
                end, reach = body.get(f"{arm}_elbow"), ELBOW_REACH
            if end is None:
                continue
            d = float(np.hypot(*(end[:2] - wrist))) / (reach * side)
            if d < best:
                best, owner = d, (i, arm)
    return owner
