"""Drawing skeletons with the OpenPose colour scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pafpose.errors import PafposeError
from pafpose.skeleton import BODY25, FACE_KEYPOINTS, FOOT_KEYPOINTS, HAND_KEYPOINTS

if TYPE_CHECKING:  # drawing needs only each person's keypoints, skeleton and id: no import of the result type
    from pafpose.pose import Pose

#: OpenPose's 20 hand bones (its ``HAND_PAIRS_RENDER``), as :data:`~pafpose.skeleton.HAND_KEYPOINTS`
#: names: each finger from the wrist to its tip, thumb first.
HAND_LIMBS: tuple[tuple[str, str], ...] = tuple(
    (HAND_KEYPOINTS[0 if j == 0 else 4 * f + j], HAND_KEYPOINTS[4 * f + j + 1]) for f in range(5) for j in range(4))
#: OpenPose's hand colours (RGB, its ``HAND_COLORS_RENDER``), one per keypoint: grey wrist, then each
#: finger darker at its base; a bone has its tip's colour, as OpenPose renders it.
HAND_COLORS: tuple[tuple[int, int, int], ...] = (
    (100, 100, 100), (100, 0, 0), (150, 0, 0), (200, 0, 0), (255, 0, 0), (100, 100, 0), (150, 150, 0),
    (200, 200, 0), (255, 255, 0), (0, 100, 50), (0, 150, 75), (0, 200, 100), (0, 255, 125), (0, 50, 100),
    (0, 75, 150), (0, 100, 200), (0, 125, 255), (100, 0, 100), (150, 0, 150), (200, 0, 200), (255, 0, 255),
)
FACE_COLOR = (255, 255, 255)  #: OpenPose's face colour (RGB)
_HAND_INDEX = [(HAND_KEYPOINTS.index(a), HAND_KEYPOINTS.index(b)) for a, b in HAND_LIMBS]
#: BODY-25's foot bones and their colours, for a person whose layout lacks feet but who has ``parts["feet"]``.
_FOOT_LIMBS = [(limb, color) for limb, color in zip(BODY25.limbs, BODY25.limb_colors, strict=True)
               if limb[0] in FOOT_KEYPOINTS or limb[1] in FOOT_KEYPOINTS]
_FOOT_COLORS = [BODY25.keypoint_colors[BODY25.index(n)] for n in FOOT_KEYPOINTS]
_PART_SIZES = {"hand_left": len(HAND_KEYPOINTS), "hand_right": len(HAND_KEYPOINTS), "face": len(FACE_KEYPOINTS),
               "feet": len(FOOT_KEYPOINTS)}


def poses(image: np.ndarray, people: Sequence[Pose], threshold: float = 0.1) -> np.ndarray:
    """A copy of ``image`` (HxWx3 BGR uint8) with every person's limbs and joints drawn, and
    their whole-body parts where they have them: the hands as OpenPose draws them (its 20 bones
    in its hand colours, the joints as discs), the face as small white dots, the feet as
    BODY-25's foot bones (when the layout has no feet of its own).

    Line widths scale with the image size (hands and face at half the body's); keypoints
    scoring below ``threshold`` are left out. The skeleton comes from each pose, never from
    guessing by keypoint count. Untracked people have OpenPose's colours; a tracked person
    (``track_id``) is drawn in the colour of their id, with the id in a label above them, so
    one follows them from frame to frame.
    """
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 250))
    radius = thick + 1
    fine = max(1, thick // 2)  # hands' and face's lines and dots: small parts, finer strokes
    labels: list[tuple[int, int, int, int]] = []  # boxes already placed: a crowd's labels never cover each other
    for pose in people:
        sk = pose.skeleton
        k = pose.keypoints
        ok = _found(k, threshold)
        own = None if pose.track_id is None else id_color(pose.track_id)
        for (a, b), (r, g, bl) in zip(sk.limb_indices().tolist(), sk.limb_colors, strict=True):
            if ok[a] and ok[b]:
                _line(out, k[a], k[b], own or (bl, g, r), thick)
        for i in np.flatnonzero(ok).tolist():
            r, g, bl = sk.keypoint_colors[i]
            _dot(out, k[i], radius, own or (bl, g, r))
        parts = _checked_parts(pose)
        if "feet" in parts and not all(n in sk.keypoints for n in FOOT_KEYPOINTS):
            _feet(out, pose, parts["feet"], threshold, thick, radius, own)
        for name in ("hand_left", "hand_right"):
            if name in parts:
                _hand(out, parts[name], threshold, fine, own)
        if "face" in parts:
            face = parts["face"]
            for i in np.flatnonzero(_found(face, threshold)).tolist():
                _dot(out, face[i], fine, own or FACE_COLOR[::-1])
        if pose.track_id is not None and ok.any():
            _label(out, str(pose.track_id), k[ok, :2], thick, labels)
    return out


#: a keypoint further than this many pixels from the origin is left out, as NaN and inf are: OpenCV
#: can't place it (int32 pixels), and no image it could be drawn on reaches it
FAR_PIXELS = 2**24


def _found(k: np.ndarray, threshold: float) -> np.ndarray:
    """Which of ``(n, 3)`` keypoints are drawn: found, within :data:`FAR_PIXELS`, and scoring at
    least ``threshold``."""
    with np.errstate(invalid="ignore"):  # NaN compares False: missing
        return (np.abs(k[:, :2]) < FAR_PIXELS).all(axis=1) & (k[:, 2] >= threshold)


def _line(out: np.ndarray, a: np.ndarray, b: np.ndarray, color: tuple[int, int, int], thick: int) -> None:
    import cv2

    cv2.line(out, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), color, thick, cv2.LINE_AA)


def _dot(out: np.ndarray, p: np.ndarray, radius: int, color: tuple[int, int, int]) -> None:
    import cv2

    cv2.circle(out, (round(p[0]), round(p[1])), radius, color, -1, cv2.LINE_AA)


def _checked_parts(pose: Pose) -> dict[str, np.ndarray]:
    """The person's drawable parts, each of the size its drawing indexes (a wrong size is a
    one-line error, not a wrong bone)."""
    for name, n in _PART_SIZES.items():
        if name in pose.parts and len(pose.parts[name]) != n:
            raise PafposeError(f"part {name!r} has {len(pose.parts[name])} points, not {n}")
    return {name: pose.parts[name] for name in _PART_SIZES if name in pose.parts}


def _hand(out: np.ndarray, hand: np.ndarray, threshold: float, fine: int, own: tuple[int, int, int] | None) -> None:
    """One hand as OpenPose renders it: the bones (each in its tip's colour), then the joints."""
    seen = _found(hand, threshold)
    for a, b in _HAND_INDEX:
        if seen[a] and seen[b]:
            r, g, bl = HAND_COLORS[b]
            _line(out, hand[a], hand[b], own or (bl, g, r), fine)
    for i in np.flatnonzero(seen).tolist():
        r, g, bl = HAND_COLORS[i]
        _dot(out, hand[i], fine, own or (bl, g, r))


def _feet(out: np.ndarray, pose: Pose, feet: np.ndarray, threshold: float, thick: int, radius: int,
          own: tuple[int, int, int] | None) -> None:
    """BODY-25's foot bones (ankle to big toe and heel, big toe to small toe) and foot joints,
    from the layout's ankles and the person's ``parts["feet"]``."""
    sk = pose.skeleton
    named = {n: pose.keypoints[sk.index(n)] for n in ("left_ankle", "right_ankle") if n in sk.keypoints}
    named.update(zip(FOOT_KEYPOINTS, feet, strict=True))
    drawn = {n: bool(_found(p[None], threshold)[0]) for n, p in named.items()}
    for (a, b), (r, g, bl) in _FOOT_LIMBS:
        if drawn.get(a) and drawn.get(b):
            _line(out, named[a], named[b], own or (bl, g, r), thick)
    for name, (r, g, bl) in zip(FOOT_KEYPOINTS, _FOOT_COLORS, strict=True):
        if drawn[name]:
            _dot(out, named[name], radius, own or (bl, g, r))


def id_color(track_id: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour for a person id (golden-ratio steps around the hue circle)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 1.0)
    return round(b * 255), round(g * 255), round(r * 255)


def _label(out: np.ndarray, text: str, points: np.ndarray, thick: int,
           placed: list[tuple[int, int, int, int]]) -> None:
    """The person's id in a box of the id's colour, above the highest keypoint; moved up (or
    down) past the boxes already ``placed``."""
    import cv2

    scale = max(0.4, thick / 2.5)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick // 2))
    x = int(np.clip(points[:, 0].mean() - tw / 2, 0, max(0, out.shape[1] - tw - 4)))
    y0 = int(np.clip(points[:, 1].min() - 4 * thick, th + 4, out.shape[0] - 1))
    step = th + base + 6
    for y in [y0 - n * step for n in range(8)] + [y0 + n * step for n in range(1, 8)]:
        if th + 4 <= y <= out.shape[0] - 1 and not any(
                x < bx1 and bx0 < x + tw + 4 and y - th - 4 < by1 and by0 < y + base for bx0, by0, bx1, by1 in placed):
            break
    else:
        y = y0  # nowhere free: over the others
    placed.append((x, y - th - 4, x + tw + 4, y + base))
    cv2.rectangle(out, (x, y - th - 4), (x + tw + 4, y + base), id_color(int(text)), -1)
    cv2.putText(out, text, (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, thick // 2),
                cv2.LINE_AA)
