"""Keypoint sets and limb graphs as plain data.

Keypoint coordinates follow the one convention of :mod:`pafpose.coords` (x right, y down,
pixel centres at integers), which also maps image pixels, network-input pixels and field
cells onto each other (:class:`pafpose.coords.Geometry`).

Limbs are pairs of keypoint *names*; indices are derived from names, so converting
between layouts (COCO-17, OpenPose COCO-18, BODY-25) never relies on positions.
The order of PAF channels is not a property of a skeleton but of a model's head: see
:class:`pafpose.fields.FieldSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pafpose.errors import PafposeError

RGB = tuple[int, int, int]

# OpenPose's rendering colours for the COCO-18 keypoints (RGB), also used per limb.
_OPENPOSE_COLORS: tuple[RGB, ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

# COCO OKS falloff constants (sigma per keypoint, from the COCO keypoint evaluation).
_COCO_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035,
    "right_ear": 0.035, "left_shoulder": 0.079, "right_shoulder": 0.079,
    "left_elbow": 0.072, "right_elbow": 0.072, "left_wrist": 0.062, "right_wrist": 0.062,
    "left_hip": 0.107, "right_hip": 0.107, "left_knee": 0.087, "right_knee": 0.087,
    "left_ankle": 0.089, "right_ankle": 0.089,
    # Not in COCO: borrowed from the nearest COCO keypoint, for synthetic OKS only.
    "neck": 0.079, "mid_hip": 0.107, "left_big_toe": 0.089, "left_small_toe": 0.089,
    "left_heel": 0.089, "right_big_toe": 0.089, "right_small_toe": 0.089, "right_heel": 0.089,
}


def _flip_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


@dataclass(frozen=True)
class Skeleton:
    """A keypoint set and its limb graph.

    Attributes:
        name: registry name, e.g. ``"coco18"``.
        keypoints: keypoint names in channel order.
        limbs: the limb graph as (parent, child) name pairs, root first.
        keypoint_colors: RGB drawing colour per keypoint.
        limb_colors: RGB drawing colour per limb.
    """

    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[str, str], ...]
    keypoint_colors: tuple[RGB, ...]
    limb_colors: tuple[RGB, ...]

    def __post_init__(self) -> None:
        names = set(self.keypoints)
        if len(names) != len(self.keypoints):
            raise ValueError(f"skeleton {self.name}: duplicate keypoint names")
        for a, b in self.limbs:
            if a not in names or b not in names:
                raise ValueError(f"skeleton {self.name}: limb ({a}, {b}) names unknown keypoints")
        if len(self.keypoint_colors) != len(self.keypoints) or len(self.limb_colors) != len(self.limbs):
            raise ValueError(f"skeleton {self.name}: one colour per keypoint and per limb")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, name: str) -> int:
        """Channel index of keypoint ``name``."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise PafposeError(
                f"skeleton {self.name} has no keypoint {name!r}; it has {', '.join(self.keypoints)}"
            ) from None

    def limb_indices(self, limbs: tuple[tuple[str, str], ...] | None = None) -> np.ndarray:
        """(L, 2) int array of keypoint indices for ``limbs`` (default: this skeleton's)."""
        limbs = self.limbs if limbs is None else limbs
        return np.array([(self.index(a), self.index(b)) for a, b in limbs], dtype=np.int64).reshape(-1, 2)

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Keypoint permutation for a horizontal flip: ``flipped[:, i] = kps[:, perm[i]]``."""
        return np.array([self.index(_flip_name(n)) for n in self.keypoints], dtype=np.int64)

    def limb_flip(self, limbs: tuple[tuple[str, str], ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Limb permutation for a horizontal flip, and which limbs it reverses.

        Limb ``i`` of the mirrored image is limb ``perm[i]`` of the original. Mirroring keeps
        a limb's direction (parent to child) when its mirror limb exists as such, so the PAF
        of limb ``i`` in the mirror is PAF ``perm[i]`` with its x component negated; where
        only the reversed limb exists (COCO-17's left_hip -> right_hip), ``reverse[i]`` is
        True and the y component is negated instead.
        """
        limbs = self.limbs if limbs is None else limbs
        pos = {limb: i for i, limb in enumerate(limbs)}
        perm, reverse = [], []
        for a, b in limbs:
            mirror = (_flip_name(a), _flip_name(b))
            if mirror in pos:
                perm.append(pos[mirror])
                reverse.append(False)
            elif mirror[::-1] in pos:
                perm.append(pos[mirror[::-1]])
                reverse.append(True)
            else:
                raise PafposeError(f"limb ({a}, {b}) has no mirror limb {mirror} in this layout")
        return np.array(perm, dtype=np.int64), np.array(reverse, dtype=bool)

    @cached_property
    def sigmas(self) -> np.ndarray:
        """COCO OKS sigma per keypoint (non-COCO keypoints borrow their neighbour's)."""
        return np.array([_COCO_SIGMAS.get(n, 0.089) for n in self.keypoints], dtype=np.float64)


def _colors_for(n: int) -> tuple[RGB, ...]:
    return tuple(_OPENPOSE_COLORS[i % len(_OPENPOSE_COLORS)] for i in range(n))


COCO18 = Skeleton(
    name="coco18",
    keypoints=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
    limbs=(
        ("neck", "right_shoulder"), ("neck", "left_shoulder"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("neck", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("neck", "nose"), ("nose", "right_eye"), ("right_eye", "right_ear"),
        ("nose", "left_eye"), ("left_eye", "left_ear"),
        # Redundant limbs of the original model: they close cycles in the graph.
        ("right_shoulder", "right_ear"), ("left_shoulder", "left_ear"),
    ),
    keypoint_colors=_OPENPOSE_COLORS,
    limb_colors=_colors_for(19),
)

BODY25 = Skeleton(
    name="body25",
    keypoints=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear",
        "left_ear", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
        "right_small_toe", "right_heel",
    ),
    limbs=(
        ("neck", "mid_hip"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("mid_hip", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("mid_hip", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("neck", "nose"), ("nose", "right_eye"), ("right_eye", "right_ear"),
        ("nose", "left_eye"), ("left_eye", "left_ear"),
        ("right_shoulder", "right_ear"), ("left_shoulder", "left_ear"),
        ("left_ankle", "left_big_toe"), ("left_big_toe", "left_small_toe"),
        ("left_ankle", "left_heel"), ("right_ankle", "right_big_toe"),
        ("right_big_toe", "right_small_toe"), ("right_ankle", "right_heel"),
    ),
    # OpenPose's BODY_25 render colours.
    keypoint_colors=(
        (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
        (85, 255, 0), (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
        (0, 170, 255), (0, 85, 255), (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255),
        (85, 0, 255), (0, 0, 255), (0, 0, 255), (0, 0, 255), (0, 255, 255), (0, 255, 255),
        (0, 255, 255),
    ),
    limb_colors=_colors_for(26),
)

COCO17 = Skeleton(
    name="coco17",
    keypoints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # The COCO annotation skeleton (it has no root: COCO-17 is an output format).
    limbs=(
        ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
        ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
        ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
    ),
    keypoint_colors=_colors_for(17),
    limb_colors=_colors_for(19),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO18, BODY25, COCO17)}


def get_skeleton(name: str | Skeleton) -> Skeleton:
    """Look a skeleton up by name (a :class:`Skeleton` passes through)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return SKELETONS[name]
    except KeyError:
        raise PafposeError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None


def keypoint_map(src: Skeleton | str, dst: Skeleton | str) -> np.ndarray:
    """Index map by name: ``dst[:, i] = src[:, m[i]]``, with ``m[i] = -1`` where ``src`` lacks it."""
    src, dst = get_skeleton(src), get_skeleton(dst)
    pos = {n: i for i, n in enumerate(src.keypoints)}
    return np.array([pos.get(n, -1) for n in dst.keypoints], dtype=np.int64)


def convert_keypoints(keypoints: np.ndarray, src: Skeleton | str, dst: Skeleton | str) -> np.ndarray:
    """Convert ``(..., K_src, C)`` keypoints to ``dst`` by name.

    Keypoints ``dst`` has and ``src`` lacks are filled with NaN coordinates and zero
    score/visibility, except the derived ones OpenPose defines: ``neck`` is the mid-point of
    the shoulders and ``mid_hip`` the mid-point of the hips, when both are present.
    """
    src, dst = get_skeleton(src), get_skeleton(dst)
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.shape[-2] != src.num_keypoints:
        raise PafposeError(
            f"keypoints have {kps.shape[-2]} entries but skeleton {src.name} has {src.num_keypoints}"
        )
    m = keypoint_map(src, dst)
    out = kps[..., np.maximum(m, 0), :].copy()
    out[..., m < 0, :] = 0.0
    out[..., m < 0, :2] = np.nan
    derived = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}
    for name, (a, b) in derived.items():
        if name in dst.keypoints and name not in src.keypoints and a in src.keypoints and b in src.keypoints:
            ka, kb = kps[..., src.index(a), :], kps[..., src.index(b), :]
            both = (ka[..., 2] > 0) & (kb[..., 2] > 0)
            mid = np.where(both[..., None], (ka + kb) / 2.0, np.nan)
            mid[..., 2] = np.where(both, np.minimum(ka[..., 2], kb[..., 2]), 0.0)
            out[..., dst.index(name), :] = mid
    return out


# ---------------------------------------------------------------------- whole body: the parts beside the body
#: OpenPose's (and MediaPipe's) 21 hand keypoints, in their order: the wrist, then each finger
#: from its base to its tip (thumb, index, middle, ring, little finger).
HAND_KEYPOINTS: tuple[str, ...] = ("wrist", *(
    f"{finger}_{joint}" for finger in ("thumb", "index", "middle", "ring", "little")
    for joint in (("cmc", "mcp", "ip", "tip") if finger == "thumb" else ("mcp", "pip", "dip", "tip"))))
#: OpenPose's face: the 68 iBUG (300-W) points, then the right and the left pupil.
FACE_KEYPOINTS: tuple[str, ...] = (*(f"face_{i}" for i in range(68)), "right_pupil", "left_pupil")
#: The six foot keypoints in BODY-25's (and COCO-WholeBody's) order.
FOOT_KEYPOINTS: tuple[str, ...] = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                                   "right_small_toe", "right_heel")
#: :attr:`pafpose.pose.Pose.parts`' names and their keypoint names: a person's face (70), hands
#: (21 each) and feet (6, filled into BODY-25's foot keypoints by a conversion).
PART_KEYPOINTS: dict[str, tuple[str, ...]] = {"face": FACE_KEYPOINTS, "hand_left": HAND_KEYPOINTS,
                                              "hand_right": HAND_KEYPOINTS, "feet": FOOT_KEYPOINTS}
#: COCO-WholeBody's keypoint arrays beside the 17 body ``keypoints``, in its order: ``(field,
#: the Pose.parts name written into it, points)``. Its face is OpenPose's first 68 points (no
#: pupils); its feet are ``Pose.feet()``'s (a BODY-25 layout's own, else the part).
COCO_WHOLEBODY_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("foot_kpts", "feet", 6), ("face_kpts", "face", 68), ("lefthand_kpts", "hand_left", 21),
    ("righthand_kpts", "hand_right", 21))
