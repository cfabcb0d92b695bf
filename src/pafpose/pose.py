"""The result types: :class:`Pose`, one person, and :class:`Poses`, the people of one image
or video frame.

Every command and API returns :class:`Poses` and every writer reads it, so what a result
carries (keypoints in the original image's pixels, scores, track ids, the image's size and
source, where it lay on the network, the fields when kept, more keypoint groups per person)
is said once here, and so are its standard shapes: OpenPose JSON, COCO results, PoseTrack
annotations and :meth:`Poses.to_dict` (the one person shape of ``pafpose serve`` and
``pafpose batch``). Files, naming and drawing of whole runs are :mod:`pafpose.outputs`'.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pafpose.checks import check_number
from pafpose.coords import Geometry
from pafpose.errors import PafposeError
from pafpose.skeleton import COCO17, COCO_WHOLEBODY_FIELDS, FOOT_KEYPOINTS, Skeleton, convert_keypoints, get_skeleton

if TYPE_CHECKING:
    from pafpose.fields import Fields

#: OpenPose JSON's arrays for a person's other keypoint groups, by :attr:`Pose.parts` name.
OPENPOSE_PARTS = {"face": "face_keypoints_2d", "hand_left": "hand_left_keypoints_2d",
                  "hand_right": "hand_right_keypoints_2d"}
_OPENPOSE_3D = ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")


@dataclass
class Pose:
    """One person.

    Attributes:
        keypoints: ``(K, 3)`` float array of ``(x, y, score)`` in input-image pixels. A
            missing keypoint has ``x = y = NaN`` and ``score = 0``, never a fake ``(0, 0)``.
        score: person confidence in ``[0, 1]`` (mean confidence of its keypoints and limbs).
        skeleton: the keypoint layout of ``keypoints``.
        track_id: the person's id across a video's frames (:mod:`pafpose.tracking`), never
            reused within a sequence; None for a single image or with tracking off.
        interpolated: the person was not detected in this frame but put back by offline
            tracking from the frames on both sides.
        parts: more keypoint groups of this person, each ``(n, 3)`` in the same pixels and
            convention (``"face"``, ``"hand_left"``, ``"hand_right"``...): every mapping,
            conversion and output carries them along (OpenPose JSON writes
            :data:`OPENPOSE_PARTS` into its face and hand arrays).
    """

    keypoints: np.ndarray
    score: float
    skeleton: Skeleton = field(repr=False)
    track_id: int | None = None
    interpolated: bool = False
    parts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.skeleton = get_skeleton(self.skeleton)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64)
        if self.keypoints.shape != (self.skeleton.num_keypoints, 3):
            raise ValueError(
                f"keypoints must be ({self.skeleton.num_keypoints}, 3) for {self.skeleton.name}, "
                f"got {self.keypoints.shape}"
            )
        if self.parts:
            self.parts = {name: _part(name, kps) for name, kps in self.parts.items()}

    @property
    def present(self) -> np.ndarray:
        """``(K,)`` bool: which keypoints were found."""
        return np.isfinite(self.keypoints[:, 0]) & np.isfinite(self.keypoints[:, 1])

    @property
    def num_keypoints(self) -> int:
        """How many keypoints were found."""
        return int(self.present.sum())

    def to_array(self) -> np.ndarray:
        """A copy of ``keypoints`` (for vectorised code)."""
        return self.keypoints.copy()

    def replace(self, keypoints: np.ndarray | None = None, **changes: Any) -> Pose:
        """A copy with ``keypoints`` (and any other attribute) changed; the parts are kept."""
        values = {"score": self.score, "skeleton": self.skeleton, "track_id": self.track_id,
                  "interpolated": self.interpolated, **changes}
        if "parts" not in values:  # copies: a result never shares arrays with the one it came from
            values["parts"] = {n: k.copy() for n, k in self.parts.items()} if self.parts else {}
        return Pose(self.keypoints.copy() if keypoints is None else keypoints, **values)

    def moved(self, points: Callable[[np.ndarray], np.ndarray]) -> Pose:
        """The same person with every keypoint, parts included, moved by ``points`` (a
        :class:`~pafpose.coords.Geometry` point method: x and y mapped, scores kept)."""
        return self.replace(points(self.keypoints), parts={n: points(k) for n, k in self.parts.items()})

    def convert(self, skeleton: Skeleton | str) -> Pose:
        """The same person in another keypoint layout (``"coco18"``, ``"body25"``, ``"coco17"``),
        keypoints matched by name: BODY-25's ``mid_hip`` is the mid-point of the hips and
        COCO-18's ``neck`` that of the shoulders when both are found; keypoints the source
        lacks (BODY-25's feet) are missing (see :func:`~pafpose.skeleton.convert_keypoints`)
        unless the person has whole-body ``parts["feet"]``, which fill them."""
        skeleton = get_skeleton(skeleton)
        if skeleton is self.skeleton:
            return self.replace()
        kps = convert_keypoints(self.keypoints, self.skeleton, skeleton)
        feet = self.parts.get("feet")
        if feet is not None:  # the whole-body feet fill the layout's foot keypoints (BODY-25's)
            for i, name in enumerate(FOOT_KEYPOINTS):
                if name in skeleton.keypoints and name not in self.skeleton.keypoints:
                    kps[skeleton.index(name)] = feet[i]
        return self.replace(kps, skeleton=skeleton)

    def feet(self) -> np.ndarray:
        """``(6, 3)`` foot keypoints in :data:`~pafpose.skeleton.FOOT_KEYPOINTS`' order: the
        layout's own (BODY-25's), else the whole-body ``parts["feet"]``, else all missing."""
        if all(n in self.skeleton.keypoints for n in FOOT_KEYPOINTS):
            return self.keypoints[[self.skeleton.index(n) for n in FOOT_KEYPOINTS]].copy()
        if "feet" in self.parts:
            return self.parts["feet"].copy()
        return np.tile([np.nan, np.nan, 0.0], (len(FOOT_KEYPOINTS), 1))

    def to_coco17(self) -> Pose:
        """The same person in COCO-17 order (OpenPose's neck is dropped)."""
        return self.convert(COCO17)

    def to_coco_keypoints(self) -> list[float]:
        """COCO results ``keypoints``: flat ``[x, y, v] * 17``; missing ones are ``0, 0, 0``."""
        return _coco_flat(self.to_coco17().keypoints)

    def to_coco_wholebody_keypoints(self) -> dict[str, list[float]]:
        """COCO-WholeBody's ``foot_kpts``, ``face_kpts``, ``lefthand_kpts`` and ``righthand_kpts``
        (:data:`COCO_WHOLEBODY_FIELDS`), flat ``[x, y, v]`` like :meth:`to_coco_keypoints`.

        A missing point is ``0, 0, 0`` and a part the person lacks is all zeros: the official
        evaluation (xtcocotools) leaves a result out of a part's scoring when none of that
        part's ``v`` is above 0, so a hand not found is no false positive, while its OKS
        takes the coordinates whatever ``v`` says, so a missing point of a found part scores
        as a miss (NaN would poison it, and is not JSON).
        """
        out = {}
        for key, name, count in COCO_WHOLEBODY_FIELDS:
            kps = self.feet() if name == "feet" else self.parts.get(name)
            if kps is None:
                out[key] = [0.0] * (3 * count)
                continue
            if len(kps) < count:
                raise PafposeError(f"part {name!r} has {len(kps)} points; COCO-WholeBody's {key} needs {count}")
            out[key] = _coco_flat(kps[:count])
        return out

    def to_dict(self, decimals: int | None = 3) -> dict[str, Any]:
        """The person as JSON-ready values, the one shape of ``pafpose serve`` and ``pafpose batch``:
        ``{"track_id": int or None, "score", "keypoints": [[x, y, score] or None, ...]}``, plus
        ``"parts": {name: [...]}`` when the person has more keypoint groups. Missing keypoints
        are None; x and y are rounded to ``decimals`` (None: unrounded), scores to 5 decimals."""
        out: dict[str, Any] = {"track_id": None if self.track_id is None else int(self.track_id),
                               "score": _round(self.score, 5 if decimals is not None else None),
                               "keypoints": _points(self.keypoints, decimals)}
        if self.parts:
            out["parts"] = {name: _points(k, decimals) for name, k in self.parts.items()}
        return out

    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the found keypoints (NaNs when none)."""
        pts = self.keypoints[self.present, :2]
        if len(pts) == 0:
            return (np.nan,) * 4
        return (*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist())


def _part(name: str, keypoints: Any) -> np.ndarray:
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim != 2 or kps.shape[1] != 3:
        raise ValueError(f"part {name!r} must be (n, 3) keypoints, got {kps.shape}")
    return kps


def _round(value: float, decimals: int | None) -> float:
    return float(value) if decimals is None else round(float(value), decimals)


def _points(kps: np.ndarray, decimals: int | None) -> list[list[float] | None]:
    """``[[x, y, score] or None, ...]``: None where x or y is missing."""
    score = None if decimals is None else 5
    return [[_round(x, decimals), _round(y, decimals), _round(c, score)]
            if math.isfinite(x) and math.isfinite(y) else None for x, y, c in kps.tolist()]


def _coco_flat(kps: np.ndarray) -> list[float]:
    """COCO results' flat ``[x, y, v]``: ``v`` 1 for a found point (COCO reads no confidence
    there), ``0, 0, 0`` for a missing one."""
    out = np.zeros_like(kps)
    ok = np.isfinite(kps[:, 0]) & np.isfinite(kps[:, 1])
    out[ok, :2] = kps[ok, :2]
    out[ok, 2] = 1.0
    return [float(v) for v in out.ravel()]


def _flat(kps: np.ndarray, missing: tuple[float, float] = (0.0, 0.0), decimals: int = 3) -> list[float]:
    """OpenPose's flat ``x, y, c`` list: a missing keypoint is ``missing`` with score 0."""
    out = np.where(np.isfinite(kps), kps, 0.0)
    lost = ~np.isfinite(kps[:, 0]) | ~np.isfinite(kps[:, 1])
    out[lost, 0], out[lost, 1], out[lost, 2] = missing[0], missing[1], 0.0
    return [round(float(v), decimals) for v in out.ravel()]


def _area(pose: Pose, threshold: float = 0.05) -> float:
    """Area of the box around the keypoints scoring above ``threshold`` (OpenPose's ``getKeypointsArea``)."""
    k = pose.keypoints
    ok = np.isfinite(k[:, 0]) & np.isfinite(k[:, 1]) & (k[:, 2] > threshold)
    if not ok.any():
        return 0.0
    (x0, y0), (x1, y1) = k[ok, :2].min(axis=0), k[ok, :2].max(axis=0)
    return float((x1 - x0) * (y1 - y0))


#: PoseTrack 2018's keypoints, in its order.
POSETRACK_KEYPOINTS = ("nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                       "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                       "right_knee", "left_ankle", "right_ankle")
# PoseTrack's head_bottom (the neck's top) is closest to COCO-18's neck; head_top has no counterpart.
_POSETRACK_SOURCE = {"head_bottom": "neck"}


class Poses(list):
    """The people found in one image or video frame: a ``list`` of :class:`Pose`, best first,
    with what the image was and array views over the people.

    Keypoints are in the pixels of the image as given (a file's own pixels, also when it was
    decoded reduced or resized before the network): the Estimator maps them back once.

    Attributes:
        image_size: ``(width, height)`` of that image, when known.
        source: where it came from (a path or URL; None for an array).
        geometry: where the image lay on the network input (:class:`~pafpose.coords.Geometry`,
            from these pixels; OpenPose's ``--keypoint_scale 1``), when the Estimator made it.
        truncated: True when some keypoint type had more candidate peaks than
            ``DecoderConfig.max_peaks_per_part`` and only the strongest were kept.
        fields: the heatmaps and PAFs these people were decoded from, and where the image
            lies on them (:class:`~pafpose.fields.Fields`), when the Estimator was asked to
            keep them (``keep_fields=True``: OpenPose's heatmap files and part candidates
            are made from them); None otherwise. Resizing (:meth:`scaled`) and tracking keep
            them; :meth:`moved`, which may move points any way, drops them.

    Example:
        >>> people = est.predict("photo.jpg")
        >>> people.keypoints.shape, people.track_ids  # (N, K, 3) in photo.jpg's pixels
        >>> people.to_openpose(); people.plot("photo.jpg")
    """

    truncated: bool = False
    fields: Fields | None = None
    image_size: tuple[int, int] | None = None
    source: str | None = None
    geometry: Geometry | None = None
    _skeleton: Skeleton | None = None

    # ------------------------------------------------------------------ what it holds
    def __getitem__(self, index: Any) -> Any:
        """A person, or for a slice (``people[:3]``) a result of the same image."""
        if isinstance(index, slice):
            return self.derive(super().__getitem__(index))
        return super().__getitem__(index)

    @property
    def skeleton(self) -> Skeleton | None:
        """The keypoint layout (the people's; set for an empty result by the Estimator)."""
        return self[0].skeleton if self else self._skeleton

    @skeleton.setter
    def skeleton(self, value: Skeleton | str | None) -> None:
        self._skeleton = None if value is None else get_skeleton(value)

    @property
    def keypoints(self) -> np.ndarray:
        """``(N, K, 3)`` ``x, y, score`` of every person (NaN where missing): a new array."""
        if self:
            return np.stack([p.keypoints for p in self])
        return np.zeros((0, self.skeleton.num_keypoints if self.skeleton else 0, 3))

    @property
    def xy(self) -> np.ndarray:
        """``(N, K, 2)`` keypoint positions."""
        return self.keypoints[..., :2]

    @property
    def scores(self) -> np.ndarray:
        """``(N,)`` person scores."""
        return np.array([p.score for p in self], dtype=np.float64)

    @property
    def track_ids(self) -> np.ndarray:
        """``(N,)`` track ids, -1 for an untracked person."""
        return np.array([-1 if p.track_id is None else p.track_id for p in self], dtype=np.int64)

    @property
    def boxes(self) -> np.ndarray:
        """``(N, 4)`` ``x0, y0, x1, y1`` around each person's found keypoints (NaN when none)."""
        return np.array([p.bbox() for p in self], dtype=np.float64).reshape(-1, 4)

    # ------------------------------------------------------------------ the same image, other people
    def derive(self, people: Iterable[Pose], keep_fields: bool = True) -> Poses:
        """Other people of the same image: a result with this one's image, source and flags."""
        out = Poses(people)
        out.truncated, out.image_size, out.source, out.geometry = (self.truncated, self.image_size, self.source,
                                                                   self.geometry)
        out._skeleton = self.skeleton
        out.fields = self.fields if keep_fields else None
        return out

    def moved(self, points: Callable[[np.ndarray], np.ndarray]) -> Poses:
        """Every person moved by ``points`` (see :meth:`Pose.moved`). The fields are dropped, as
        the points may move any way; the image size and geometry stay as they were."""
        return self.derive((p.moved(points) for p in self), keep_fields=False)

    def scaled(self, fx: float, fy: float, size: tuple[int, int] | None = None) -> Poses:
        """The same people in the image resized by ``fx`` x ``fy`` (new pixels per old pixel; see
        :mod:`pafpose.coords`: ``x' = (x + 0.5) * fx - 0.5``), whose size is ``size`` (default:
        the old size times the factors, rounded). The fields and geometry follow the resize."""
        out = self.moved(Geometry(fx, fy).image_to_input)
        if self.fields is not None:
            out.fields = self.fields.for_resized(fx, fy)
        if self.geometry is not None:
            out.geometry = self.geometry.for_resized(fx, fy)
        if size is not None:
            out.image_size = (int(size[0]), int(size[1]))
        elif self.image_size is not None:
            out.image_size = (max(1, round(self.image_size[0] * fx)), max(1, round(self.image_size[1] * fy)))
        return out

    def convert(self, skeleton: Skeleton | str) -> Poses:
        """The people in another keypoint layout, by name (:meth:`Pose.convert`)."""
        out = self.derive(p.convert(skeleton) for p in self)
        out.skeleton = skeleton
        return out

    def top(self, n: int | None) -> Poses:
        """The ``n`` people OpenPose's ``--number_people_max n`` keeps, in their order.

        OpenPose ranks people by their score times the square root of the area of the box
        around their keypoints scoring above 0.05, so that small or faint false positives go
        first, and keeps the order of those it keeps; on a tie at the threshold it keeps the
        first ones. ``n`` None or -1 keeps everyone.
        """
        if n is not None and n != -1:
            check_number("number of people", n, 1, None, integer=True)
        if n is None or n == -1 or len(self) <= n:
            return self.derive(self)
        final = [p.score * math.sqrt(_area(p)) for p in self]
        threshold = sorted(final, reverse=True)[n - 1]
        ties = n - sum(f > threshold for f in final)
        kept = []
        for p, f in zip(self, final, strict=True):
            if f > threshold or (f == threshold and ties > 0):
                ties -= f == threshold
                kept.append(p)
        return self.derive(kept)

    def thresholded(self, threshold: float) -> Poses:
        """The people with keypoints (their parts' too) scoring below ``threshold`` made missing."""
        def cut(k: np.ndarray) -> np.ndarray:
            k = k.copy()
            k[k[:, 2] < threshold] = (np.nan, np.nan, 0.0)
            return k

        def low(p: Pose) -> Pose:
            return p.replace(cut(p.keypoints), parts={n: cut(k) for n, k in p.parts.items()})

        return self.derive(low(p) for p in self)

    # ------------------------------------------------------------------ standard shapes
    def to_openpose(self, part_candidates: list[dict[str, list[float]]] | None = None,
                    missing: tuple[float, float] = (0.0, 0.0), decimals: int = 3) -> dict[str, Any]:
        """OpenPose's per-image JSON (version 1.3): keypoints in the people's order, missing = 0, 0, 0.

        The face, hand and 3-D arrays OpenPose always writes are present (the face and hands
        from :attr:`Pose.parts` where a person has them, else empty), so readers of OpenPose
        output work unchanged; ``score`` (the person's confidence) is an addition.
        ``person_id`` is ``[track id]`` for a tracked person, else OpenPose's ``[-1]``.
        ``part_candidates`` (:func:`pafpose.openpose.candidates_block`) follows ``people`` as
        OpenPose writes it with ``--part_candidates``; ``missing`` is the ``x, y`` written for a
        keypoint not found (OpenPose's ``-1, -1`` with ``--keypoint_scale 4``); ``decimals``
        rounds the numbers (more for the [0, 1] and [-1, 1] scales).
        """
        def person(p: Pose) -> dict[str, Any]:
            parts = {key: _flat(p.parts[name], missing, decimals) if name in p.parts else []
                     for name, key in OPENPOSE_PARTS.items()}
            return {"person_id": [-1 if p.track_id is None else int(p.track_id)],
                    "pose_keypoints_2d": _flat(p.keypoints, missing, decimals), **parts,
                    **{k: [] for k in _OPENPOSE_3D}, "score": round(float(p.score), 5)}

        doc: dict[str, Any] = {"version": 1.3, "people": [person(p) for p in self]}
        if part_candidates is not None:
            doc["part_candidates"] = part_candidates
        return doc

    def to_coco(self, image_id: int) -> list[dict[str, Any]]:
        """COCO keypoint results (category 1, 17 keypoints) for this image."""
        return [{"image_id": int(image_id), "category_id": 1, "keypoints": p.to_coco_keypoints(),
                 "score": float(p.score)} for p in self]

    def has_wholebody(self) -> bool:
        """Whether some person has a whole-body part COCO-WholeBody scores (feet, face, hands)."""
        names = {name for _, name, _ in COCO_WHOLEBODY_FIELDS}
        return any(names.intersection(p.parts) for p in self)

    def to_coco_wholebody(self, image_id: int) -> list[dict[str, Any]]:
        """COCO-WholeBody results for this image, as its official evaluation (xtcocotools'
        COCOeval, ``keypoints_wholebody``; mmpose's) reads them: :meth:`to_coco`'s fields plus
        :meth:`Pose.to_coco_wholebody_keypoints`' four arrays."""
        return [{"image_id": int(image_id), "category_id": 1, "keypoints": p.to_coco_keypoints(),
                 **p.to_coco_wholebody_keypoints(), "score": float(p.score)} for p in self]

    def to_posetrack(self, image_id: int, first_id: int = 0) -> list[dict[str, Any]]:
        """PoseTrack 2018 annotations of this frame's people (``track_id`` -1 if untracked).

        Keypoints are matched by name (``head_bottom`` from the neck, ``head_top`` missing);
        a missing keypoint is ``0, 0, 0``; ``scores`` holds each keypoint's confidence.
        """
        out = []
        for n, p in enumerate(self):
            names = p.skeleton.keypoints
            kps: list[float] = []
            scores = []
            for name in POSETRACK_KEYPOINTS:
                source = _POSETRACK_SOURCE.get(name, name)
                k = p.keypoints[names.index(source)] if source in names else None
                if k is None or not np.isfinite(k[:2]).all():
                    kps += [0.0, 0.0, 0]
                    scores.append(0.0)
                else:
                    kps += [round(float(k[0]), 3), round(float(k[1]), 3), 1]
                    scores.append(round(float(k[2]), 5))
            out.append({"id": first_id + n, "image_id": int(image_id), "category_id": 1, "keypoints": kps,
                        "scores": scores, "score": round(float(p.score), 5),
                        "track_id": -1 if p.track_id is None else int(p.track_id)})
        return out

    def to_dict(self, decimals: int | None = 3) -> dict[str, Any]:
        """``{"source", "width", "height", "skeleton", "people": [Pose.to_dict(), ...]}``."""
        w, h = self.image_size if self.image_size is not None else (None, None)
        return {"source": self.source, "width": w, "height": h,
                "skeleton": self.skeleton.name if self.skeleton else None,
                "people": [p.to_dict(decimals) for p in self]}

    def to_json(self, decimals: int | None = 3) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(decimals))

    # ------------------------------------------------------------------ pictures
    def plot(self, image: Any = None, threshold: float = 0.1) -> np.ndarray:
        """The image (BGR array, or a path; default: :attr:`source`) with every person drawn
        (:func:`pafpose.draw.poses`; keypoints scoring below ``threshold`` left out). An image
        of another size than :attr:`image_size` (a reduced decode, a thumbnail) is drawn on in
        its own pixels."""
        from pafpose.draw import poses as draw_poses

        if image is None:
            if self.source is None:
                raise PafposeError("plot: give the image (this result has no source file)")
            image = self.source
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            from pafpose.images import open_image

            image = open_image(image).image
        return draw_poses(image, self.on(image), threshold=threshold)

    def on(self, image: np.ndarray) -> Poses:
        """The people in the pixels of ``image``, a resized copy of theirs (itself when the sizes agree)."""
        h, w = image.shape[:2]
        if self.image_size is None or self.image_size == (w, h):
            return self
        return self.scaled(w / self.image_size[0], h / self.image_size[1], (w, h))


# ---------------------------------------------------------------------- functions (the methods' old names)
def map_poses(poses: Sequence[Pose], points: Callable[[np.ndarray], np.ndarray]) -> Poses:
    """:meth:`Poses.moved` for any sequence of people."""
    return as_poses(poses).moved(points)


def convert_poses(poses: Sequence[Pose], skeleton: Skeleton | str) -> Poses:
    """:meth:`Poses.convert` for any sequence of people."""
    return as_poses(poses).convert(skeleton)


def scale_poses(poses: Sequence[Pose], fx: float, fy: float) -> Poses:
    """:meth:`Poses.scaled` for any sequence of people."""
    return as_poses(poses).scaled(fx, fy)


def as_poses(people: Iterable[Pose]) -> Poses:
    """``people`` as a :class:`Poses` (itself when it is one)."""
    return people if isinstance(people, Poses) else Poses(people)
