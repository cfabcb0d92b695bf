"""Whole body (issue 23): hands, faces and feet against real annotations, and what they cost.

    .venv/bin/python benchmarks/wholebody.py [--shared ../shared] [--only hands,faces,feet,coco,cost]
                                             [--repeats 15]

Sets: ../shared/wholebody (README there). Every figure is printed with the command above.
- Hands (mmpose's test sets, 25 hands; COCO-WholeBody's 3 hands): PCK@0.2 and EPE. PCK's
  threshold is 0.2 x max(w, h) of the hand's ground-truth box (mmpose's hand PCK normalises
  by the box the same way); points pooled over a set's hands; a hand the network drops
  (presence < 0.5) counts every point as wrong and is left out of EPE. Crops from the GT box
  (its centre, 1.5x its longer side, upright: the box says nothing of the hand's turn), then
  the network's own re-crop (``HandNet``'s second pass); crops from MediaPipe's palm detector
  (the close-up path); the same hands shrunk to a given size; and the normal pipeline (crops
  from the body's wrist and elbow) where a body is seen.
- Faces (300-W HELEN, 165 faces): NME normalised by the outer eye corners (36, 45), 68 points,
  jaw (0-16) and inner points (17-67) apart; first crop from the GT box (1.5x its longer
  side), level with the GT eye line or not, from MediaPipe's face detector, or from the body;
  then the mesh-to-68 table: this package's fitted one, cross-validated, against the commonly
  published one.
- Feet (12 people with CMU's foot annotations): heel and big-toe error through the normal
  pipeline, with and without the snap of each foot to the PAF ankle.
- COCO-WholeBody AP per part on its one image (``pafpose.evaluate``, as ``pafpose eval`` scores it).
- Cost on this CPU: ms per crop and per part, and a whole-body frame against body only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from pafpose.pose import Pose
    from pafpose.wholebody.crops import Crop
    from pafpose.wholebody.face import FaceDetector
    from pafpose.wholebody.hands import PalmDetector
    from pafpose.wholebody.nets import LandmarkNet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

REPO = Path(__file__).resolve().parents[1]
COMMAND = ".venv/bin/python benchmarks/wholebody.py"

#: The mesh-to-68 table commonly published (GeneFace++'s ``index_lm68_from_lm478``), to compare with ours.
PUBLISHED_TABLE = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356, 70, 63, 105, 66, 107, 336,
    296, 334, 293, 300, 168, 197, 5, 4, 75, 97, 2, 326, 305, 33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373,
    380, 61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178)
JAW, INNER = np.arange(17), np.arange(17, 68)
HAND_BINS = ((">= 50 px", 50.0, math.inf), ("25-50 px", 25.0, 50.0), ("< 25 px", 0.0, 25.0))
#: The issue's targets, as the sections measure them: (figure, target, measured, met), printed last.
TARGETS: list[tuple[str, str, str, bool]] = []


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A markdown table, as BENCHMARKS.md records it."""
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def fmt(x: float | None, digits: int = 3) -> str:
    """A figure for the tables; ``-`` where there is none (no hands of that size, say)."""
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


# ---------------------------------------------------------------------------------------------- hands
@dataclass
class Hand:
    """One annotated hand: 21 points in OpenPose's order (x, y, visible) and its box (x, y, w, h)."""

    set: str
    image: Path
    points: np.ndarray
    box: tuple[float, float, float, float]

    @property
    def size(self) -> float:
        return float(max(self.box[2], self.box[3]))


def _coco_hands(folder: Path, name: str) -> list[Hand]:
    data = json.loads(next(folder.glob("test_*.json")).read_text())
    files = {im["id"]: folder / im["file_name"] for im in data["images"]}
    out = []
    for a in data["annotations"]:
        k = np.asarray(a["keypoints"], dtype=np.float64).reshape(21, 3)
        if name == "rhd":  # RHD stores each finger tip to base: OpenPose's order is base to tip
            k = k[[0, *(f * 4 + j for f in range(5) for j in (4, 3, 2, 1))]]
        k[:, 2] = k[:, 2] > 0
        out.append(Hand(name, files[a["image_id"]], k, tuple(a["bbox"])))
    return out


def _interhand(folder: Path) -> list[Hand]:
    """InterHand2.6M: 3-D joints projected with each camera; right hand 0-20, left 21-41, each
    finger tip to base then the wrist. The box of each hand's valid points (the file's box
    holds both hands of an interacting pair)."""
    data = json.loads((folder / "test_interhand2.6m_data.json").read_text())
    cams = json.loads((folder / "test_interhand2.6m_camera.json").read_text())
    joints = json.loads((folder / "test_interhand2.6m_joint_3d.json").read_text())
    order = [20, *(f * 4 + 3 - j for f in range(5) for j in range(4))]
    out = []
    for im, a in zip(data["images"], data["annotations"], strict=True):
        cap, cam = str(im["capture"]), im["camera"]
        c = cams[cap]
        rot, pos = np.asarray(c["camrot"][cam]), np.asarray(c["campos"][cam])
        world = np.asarray(joints[cap][str(im["frame_idx"])]["world_coord"])
        xyz = (rot @ (world - pos).T).T
        uv = xyz[:, :2] / xyz[:, 2:] * np.asarray(c["focal"][cam]) + np.asarray(c["princpt"][cam])
        valid = np.asarray(a["joint_valid"])[:, 0] > 0
        for first in (0, 21):
            idx = [first + i for i in order]
            if valid[idx].sum() < 15:
                continue
            k = np.column_stack([uv[idx], valid[idx]])
            v = k[k[:, 2] > 0, :2]
            lo, hi = v.min(axis=0), v.max(axis=0)
            out.append(Hand("interhand2.6m", folder / im["file_name"], k, (*lo, *(hi - lo))))
    return out


def load_hands(root: Path) -> list[Hand]:
    """The hands of mmpose's test fixtures, every set in OpenPose's hand order."""
    hands = []
    for name in ("freihand", "onehand10k", "panoptic", "rhd"):
        hands += _coco_hands(root / name, name)
    return hands + _interhand(root / "interhand2.6m")


def box_crop(box: Sequence[float], scale: float, angle: float = 0.0) -> Crop:
    """The square on a box's centre, ``scale`` times its longer side, turned by ``angle``."""
    from pafpose.wholebody.crops import Crop

    x, y, w, h = box
    return Crop(x + w / 2, y + h / 2, scale * max(w, h), angle)


def hand_errors(pred: np.ndarray, hand: Hand) -> np.ndarray:
    """Pixel error of each visible GT point (inf where the hand was not found)."""
    vis = hand.points[:, 2] > 0
    err = np.hypot(*(pred[vis, :2] - hand.points[vis, :2]).T)
    return np.where(np.isfinite(err), err, np.inf)


def hand_scores(results: Sequence[tuple[Hand, np.ndarray]]) -> tuple[float, float, int]:
    """PCK@0.2 (box), EPE px (found hands), hands found."""
    hits = total = 0
    epe: list[float] = []
    found = 0
    for hand, err in results:
        hits += int((err <= 0.2 * hand.size).sum())
        total += len(err)
        if np.isfinite(err).all():
            found += 1
            epe += err.tolist()
    return hits / total if total else math.nan, float(np.mean(epe)) if epe else math.nan, found


def run_hands(shared: Path) -> None:
    """Hands from GT-box crops (as run, with fewer or more passes, turned by the GT), by size,
    shrunk, then through the body."""
    from pafpose.wholebody.crops import upright
    from pafpose.wholebody.hands import HandNet, PalmDetector

    hands = load_hands(shared / "wholebody" / "hands_mmpose_fixtures")
    images = {h.image: cv2.imread(str(h.image)) for h in hands}
    scale = 1.5

    def gt_upright(hand: Hand) -> float:
        p = hand.points
        return upright(p[9, :2] - p[0, :2]) if p[0, 2] > 0 and p[9, 2] > 0 else 0.0

    variants = {  # name: (network, the first crop's turn)
        "box only": (HandNet(passes=1), lambda h: 0.0),
        "box + re-crop (as run)": (HandNet(passes=2), lambda h: 0.0),
        "box + 2 re-crops": (HandNet(passes=3), lambda h: 0.0),
        "GT-upright box + re-crop (oracle)": (HandNet(passes=2), gt_upright),
    }
    print(f"## Hands: {len(hands)} annotated hands; first crop = the GT box's centre, {scale}x its longer side, "
          "upright (the oracle column turns it with the GT wrist -> middle finger base: no detector knows "
          "that, shown for reference)\n")
    res: dict[str, list[tuple[Hand, np.ndarray]]] = {k: [] for k in (*variants, "palm")}
    palms = PalmDetector()
    detected: list[bool] = []
    for hand in hands:
        for key, (net, turn) in variants.items():
            crop = box_crop(hand.box, scale, turn(hand))
            res[key].append((hand, hand_errors(net(images[hand.image], [crop])[0], hand)))
        palm = _palm(palms, images[hand.image], hand)  # the close-up path: no box, MediaPipe's own detector
        detected.append(palm is not None)
        pred = variants["box + re-crop (as run)"][0](images[hand.image], [palm])[0]
        res["palm"].append((hand, hand_errors(pred, hand)))
    rows = []
    for name in (*dict.fromkeys(h.set for h in hands), "all"):
        sizes = [h.size for h in hands if name in ("all", h.set)]
        row: list[object] = [name, len(sizes), f"{min(sizes):.0f}-{max(sizes):.0f}"]
        for key in res:
            pck, epe, found = hand_scores([r for r in res[key] if name in ("all", r[0].set)])
            row.append(fmt(pck))
            if key in ("box + re-crop (as run)", "palm"):
                row += [fmt(epe, 1), found]
        rows.append(row)
    table(["set", "hands", "box px", "PCK@0.2 box only", "PCK@0.2 box + re-crop (HandNet, as run)", "EPE px",
           "found", "PCK@0.2 box + 2 re-crops (passes=3)", "PCK@0.2 GT-upright + re-crop (oracle)",
           "PCK@0.2 palm detector + HandNet", "EPE px", "found"], rows)
    errors = [e for e in DETECTOR_ERRORS if e.startswith("PalmDetector")]
    print(f"(palm detector: PalmDetector on the whole image, the palm whose wrist lies in the hand's box grown by "
          f"a quarter each way; {sum(detected)}/{len(hands)} hands had one, PCK@0.2 "
          f"{fmt(hand_scores([r for r, d in zip(res['palm'], detected, strict=True) if d])[0])} on those"
          + (f"; the detector raised on {len(errors)} images with no palm: {errors[0]}" if errors else "") + ")\n")
    rows = []
    for label, lo, hi in HAND_BINS:
        row = [label]
        for key in res:
            pck, epe, found = hand_scores([r for r in res[key] if lo <= r[0].size < hi])
            row.append(fmt(pck))
            if key == "box + re-crop (as run)":
                row += [fmt(epe, 1), found]
                if lo == 50.0:
                    TARGETS.append(("hands >= 50 px: PCK@0.2 (GT box upright + re-crop)", ">= 0.90", fmt(pck),
                                    bool(pck >= 0.90)))
            if key == "palm" and lo == 50.0:
                TARGETS.append(("hands >= 50 px: PCK@0.2 (palm detector + HandNet)", ">= 0.90", fmt(pck),
                                bool(pck >= 0.90)))
        rows.append([row[0], sum(lo <= h.size < hi for h in hands), *row[1:]])
    print("By hand size (max side of the GT box):\n")
    table(["hand size", "hands", "PCK@0.2 box only", "PCK@0.2 as run", "EPE px", "found", "PCK@0.2 passes=3",
           "PCK@0.2 oracle", "PCK@0.2 palm detector"], rows)
    # the same hands made small: each image shrunk so that the hand's box is `side` pixels
    net = variants["box + re-crop (as run)"][0]
    rows = []
    for side in (96, 48, 32, 24, 16, 12):
        shrunk_res = []
        for hand in hands:
            f = side / hand.size
            if f > 1:
                continue
            small = cv2.resize(images[hand.image], None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            shrunk = Hand(hand.set, hand.image, hand.points * [f, f, 1], tuple(np.asarray(hand.box) * f))
            shrunk_res.append((shrunk, hand_errors(net(small, [box_crop(shrunk.box, scale)])[0], shrunk)))
        pck, epe, found = hand_scores(shrunk_res)
        rows.append([f"{side} px", len(shrunk_res), fmt(pck), fmt(epe, 1), f"{found}/{len(shrunk_res)}"])
    print("The same hands shrunk (INTER_AREA) until their box is N px; box + re-crop as run (hands "
          "smaller than N to begin with left out):\n")
    table(["hand size", "hands", "PCK@0.2", "EPE px", "found"], rows)
    run_body_hands(shared, hands)


#: Images on which a detector raised instead of finding nothing (counted and printed, scored as nothing found).
DETECTOR_ERRORS: list[str] = []


def _detect(detector: PalmDetector | FaceDetector, image: np.ndarray, what: str) -> list:
    """The detector's finds; none where it raises ValueError. At c97510f..7ba9c23 the SSD
    decoding (``pafpose.wholebody.nets.decode_ssd``) fails on an image where nothing scores above
    the threshold (an empty ``reshape(0, -1, 2)``): counted here so that the figures say so."""
    try:
        return detector(image)
    except ValueError as err:
        DETECTOR_ERRORS.append(f"{what}: {err}")
        return []


def _palm(palms: PalmDetector, image: np.ndarray, hand: Hand) -> Crop | None:
    """The hand crop of the detected palm whose wrist lies in the hand's box grown by a quarter
    each way, the nearest its centre (None: no such palm)."""
    from pafpose.wholebody.hands import palm_crop

    x, y, w, h = hand.box
    best, dist = None, math.inf
    for palm in _detect(palms, image, f"PalmDetector on {hand.image.name}"):
        wx, wy = palm.keypoints[0]
        d = math.hypot(wx - (x + w / 2), wy - (y + h / 2))
        if x - w / 4 <= wx <= x + 1.25 * w and y - h / 4 <= wy <= y + 1.25 * h and d < dist:
            best, dist = palm_crop(palm), d
    return best


def run_body_hands(shared: Path, hands: list[Hand]) -> None:
    """The normal pipeline on the hand images that show a body and on COCO-WholeBody's image:
    each GT hand is given to the body's wrist (either side, any person) that lies in its box
    grown by half its size each way, the nearest to the GT wrist (or the box centre)."""
    from pafpose.predict import Estimator

    gts = [h for h in hands if h.set in ("panoptic", "onehand10k")]
    cw = shared / "wholebody" / "coco_wholebody"
    data = json.loads((cw / "coco_wholebody_val.json").read_text())
    for a in data["annotations"]:
        for part in ("lefthand", "righthand"):
            if a[f"{part}_valid"]:
                k = np.asarray(a[f"{part}_kpts"], dtype=np.float64).reshape(21, 3)
                k[:, 2] = k[:, 2] > 0
                gts.append(Hand("coco-wholebody", cw / "images" / data["images"][0]["file_name"], k,
                                tuple(a[f"{part}_box"])))
    est = Estimator(parts=("hands",))
    assert est.wholebody is not None and est.wholebody.hands is not None
    rows = []
    for passes in (2, 3):
        est.wholebody.hands.passes = passes
        people = {p: est.predict(str(p)) for p in dict.fromkeys(h.image for h in gts)}
        res: dict[str, list[tuple[Hand, np.ndarray]]] = {}
        owned: dict[str, int] = {}
        for hand in gts:
            pred = _owner_hand(people[hand.image], hand)
            owned[hand.set] = owned.get(hand.set, 0) + (pred is not None)
            res.setdefault(hand.set, []).append((hand, hand_errors(pred if pred is not None else
                                                                   np.full((21, 3), np.nan), hand)))
        for name, r in res.items():
            pck, epe, found = hand_scores(r)
            sizes = [h.size for h, _ in r]
            rows.append([name, "as run (2)" if passes == 2 else passes, len(r), f"{min(sizes):.0f}-{max(sizes):.0f}",
                         owned[name], found, fmt(pck), fmt(epe, 1)])
    est.wholebody.hands.passes = 2
    print("The normal pipeline (Estimator(parts=('hands',)): crops from the body's wrist and elbow) on the "
          "images with bodies:\n")
    table(["set", "HandNet passes", "GT hands", "box px", "a body wrist at the hand", "hand found",
           "PCK@0.2 (all GT hands)", "EPE px (found)"], rows)


def _owner_hand(people: Sequence[Pose], hand: Hand) -> np.ndarray | None:
    """The hand of the body wrist nearest the GT wrist among those near the GT box (None: no such wrist)."""
    x, y, w, h = hand.box
    ref = hand.points[0, :2] if hand.points[0, 2] > 0 else np.array([x + w / 2, y + h / 2])
    best, dist = None, math.inf
    for person in people:
        for side in ("left", "right"):
            wrist = person.keypoints[person.skeleton.keypoints.index(f"{side}_wrist")]
            near = x - w / 2 <= wrist[0] <= x + 1.5 * w and y - h / 2 <= wrist[1] <= y + 1.5 * h
            d = float(np.hypot(*(wrist[:2] - ref)))
            if near and d < dist:
                best, dist = person.parts[f"hand_{side}"], d
    return best


# ---------------------------------------------------------------------------------------------- faces
def nme(points: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(F, 68)`` point errors over each face's inter-ocular distance (outer corners 36, 45)."""
    iod = np.hypot(*(gt[:, 36] - gt[:, 45]).T)
    return np.hypot(*(points - gt).transpose(2, 0, 1)) / iod[:, None]


def nme_row(err: np.ndarray) -> list[str]:
    """Mean NME, the median face's, the jaw's and the inner points' (``err``: faces x 68)."""
    return [fmt(err.mean()), fmt(float(np.median(err.mean(axis=1)))), fmt(err[:, JAW].mean()),
            fmt(err[:, INNER].mean())]


def fit_table(meshes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """For each of the 68 points, the mesh vertex of least mean normalised error on these faces."""
    iod = np.hypot(*(gt[:, 36] - gt[:, 45]).T)
    d = np.linalg.norm(meshes[:, None, :, :] - gt[:, :, None, :], axis=-1) / iod[:, None, None]  # F x 68 x 468
    return d.mean(axis=0).argmin(axis=1)


def run_faces(shared: Path) -> None:
    """Faces from each kind of first crop, then the mesh-to-68 tables compared."""
    from pafpose.predict import Estimator
    from pafpose.wholebody.face import MESH_TO_IBUG, FaceDetector, FaceNet

    root = shared / "wholebody" / "faces_300w_helen"
    data = json.loads((root / "face_landmarks_68.json").read_text())
    files = {im["id"]: root / "images" / im["file_name"] for im in data["images"]}
    anns = data["annotations"]
    gt = np.stack([np.asarray(a["keypoints"], dtype=np.float64).reshape(68, 3)[:, :2] for a in anns])
    images = [cv2.imread(str(files[a["image_id"]])) for a in anns]
    net = FaceNet(pupils=False)
    detector = FaceDetector()
    scale = 1.5
    print(f"## Faces: {len(anns)} faces of 300-W HELEN; NME by the outer eye corners (36, 45), mean over faces; "
          f"mesh -> 68 by MESH_TO_IBUG unless said; GT-box crops {scale}x the box's longer side; the detector's "
          "crop is MediaPipe's (1.5x its box, eyes level)\n")

    def meshes(crops: Sequence[Crop | None]) -> tuple[np.ndarray, np.ndarray]:
        """Each face's 468-point mesh (NaN where none) and whether it was found."""
        out = np.full((len(crops), 468, 2), np.nan)
        for i, (image, crop) in enumerate(zip(images, crops, strict=True)):
            if crop is not None:
                found = net.meshes(image, [crop])[0]
                if found is not None:
                    out[i] = found[0][:, :2]
        return out, np.isfinite(out[:, 0, 0])

    level = [math.atan2(*(g[45] - g[36])[::-1]) for g in gt]
    variants: dict[str, list[Crop | None]] = {
        "GT box, upright": [box_crop(a["bbox"], scale) for a in anns],
        "GT box, level with the GT eye line": [box_crop(a["bbox"], scale, t) for a, t in zip(anns, level, strict=True)],
        "MediaPipe's face detector (FaceDetector)": [_detected(detector, im, a["bbox"]) for im, a in
                                                     zip(images, anns, strict=True)],
    }
    table_ = list(MESH_TO_IBUG)
    rows = []
    found_meshes: dict[str, np.ndarray] = {}
    for name, crops in variants.items():
        m, ok = meshes(crops)
        found_meshes[name] = m
        rows.append([name, f"{ok.sum()}/{len(anns)}", *nme_row(nme(m[:, table_], gt)[ok])])
        if name == "GT box, level with the GT eye line":
            err = nme(m[:, table_], gt)[ok]
            jaw = float(err[:, JAW].mean())
            TARGETS.append(("faces: NME (GT box level + re-crop)", "<= 0.055", fmt(err.mean()),
                            bool(err.mean() <= 0.055)))
            TARGETS.append(("faces: jaw NME (same)", "~0.09", fmt(jaw), jaw <= 0.095))
    est = Estimator(parts=("face",))
    assert est.wholebody is not None and est.wholebody.face is not None
    default = est.wholebody.face.passes
    for passes in (default, 2):
        est.wholebody.face.passes = passes
        pts = np.stack([_body_face(est.predict(image), a["bbox"]) for image, a in zip(images, anns, strict=True)])
        ok = np.isfinite(pts[:, 0, 0])
        label = f"as run: {passes} passes" if passes == default else f"FaceNet passes={passes}"
        rows.append([f"the body's face box (Estimator(parts=('face',))), {label}",
                     f"{ok.sum()}/{len(anns)}", *nme_row(nme(pts, gt)[ok])])
        if passes == default:
            err = nme(pts, gt)[ok]
            TARGETS.append(("faces: NME through the body (the normal pipeline)", "<= 0.055", fmt(err.mean()),
                            bool(err.mean() <= 0.055)))
    est.wholebody.face.passes = default
    table(["first crop (then FaceNet's own level re-crop)", "faces found", "NME", "median", "jaw 0-16",
           "inner 17-67"], rows)

    # the table: published against fitted (two-fold cross-validated), on the meshes of the level GT-box crops
    m = found_meshes["GT box, level with the GT eye line"]
    ok = np.isfinite(m[:, 0, 0])
    m, g = m[ok], gt[ok]
    rng = np.random.default_rng(0)
    cv_err = []
    agree = []
    for _ in range(20):
        order = rng.permutation(len(m))
        halves = order[: len(m) // 2], order[len(m) // 2:]
        err = np.empty((len(m), 68))
        for fit, test in (halves, halves[::-1]):
            t = fit_table(m[fit], g[fit])
            agree.append(int((t == np.asarray(table_)).sum()))
            err[test] = nme(m[test][:, t], g[test])
        cv_err.append(err)
    cv = np.stack(cv_err)  # splits x faces x 68
    spread = cv.mean(axis=(1, 2))
    full_fit = fit_table(m, g)
    rows = [
        ["published (GeneFace++ index_lm68_from_lm478)", *nme_row(nme(m[:, list(PUBLISHED_TABLE)], g))],
        ["fitted per point, two-fold cross-validated (mean of 20 random splits; range "
         f"{spread.min():.4f}-{spread.max():.4f})", fmt(cv.mean()), fmt(float(np.median(cv.mean(axis=(0, 2))))),
         fmt(cv[:, :, JAW].mean()), fmt(cv[:, :, INNER].mean())],
        ["pafpose's MESH_TO_IBUG (fitted on all 165: in-sample)", *nme_row(nme(m[:, table_], g))],
    ]
    print(f"Mesh -> 68 tables on the {len(m)} meshes of the level GT-box crops:\n")
    table(["table", "NME", "median", "jaw 0-16", "inner 17-67"], rows)
    same = int((np.asarray(table_) == np.asarray(PUBLISHED_TABLE)).sum())
    print(f"MESH_TO_IBUG shares {same}/68 vertices with the published table; a table fitted on half the "
          f"faces shares {min(agree)}-{max(agree)}/68 with MESH_TO_IBUG, one fitted on all {len(m)} "
          f"{int((full_fit == np.asarray(table_)).sum())}/68.\n")


def _detected(detector: FaceDetector, image: np.ndarray, box: Sequence[float]) -> Crop | None:
    """The detected face whose centre lies in the GT box, nearest its centre (None: not detected)."""
    x, y, w, h = box
    best, dist = None, math.inf
    for crop, _ in _detect(detector, image, "FaceDetector"):
        d = math.hypot(crop.cx - (x + w / 2), crop.cy - (y + h / 2))
        if x <= crop.cx <= x + w and y <= crop.cy <= y + h and d < dist:
            best, dist = crop, d
    return best


def _body_face(people: Sequence[Pose], box: Sequence[float]) -> np.ndarray:
    """The 68 face points of the person whose nose lies in the GT box (NaN: no such person or face)."""
    x, y, w, h = box
    for p in people:
        nose = p.keypoints[p.skeleton.keypoints.index("nose")]
        if x <= nose[0] <= x + w and y <= nose[1] <= y + h and np.isfinite(p.parts["face"][:68, 0]).any():
            return p.parts["face"][:68, :2]
    return np.full((68, 2), np.nan)


# ---------------------------------------------------------------------------------------------- feet
def match_people(gt: Sequence[np.ndarray], areas: Sequence[float], people: Sequence[Pose]) -> list[int | None]:
    """Each GT person's predicted person (greedy on the body keypoints' mean distance over
    sqrt(area), at most 0.5; COCO-17 GT against the prediction's names)."""
    from pafpose.skeleton import COCO17

    names = COCO17.keypoints
    cost = np.full((len(gt), len(people)), np.inf)
    for i, (g, area) in enumerate(zip(gt, areas, strict=True)):
        for j, p in enumerate(people):
            d = []
            for k, name in enumerate(names):
                if g[k, 2] > 0 and name in p.skeleton.keypoints:
                    q = p.keypoints[p.skeleton.keypoints.index(name)]
                    if np.isfinite(q[0]):
                        d.append(math.hypot(q[0] - g[k, 0], q[1] - g[k, 1]))
            if len(d) >= 3:
                cost[i, j] = float(np.mean(d)) / math.sqrt(area)
    out: list[int | None] = [None] * len(gt)
    while np.isfinite(cost).any():
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        if cost[i, j] > 0.5:
            break
        out[i] = int(j)
        cost[i, :], cost[:, j] = np.inf, np.inf
    return out


def run_feet(shared: Path) -> None:
    """Heels and big toes through the normal pipeline, and the same crops without the ankle snap."""
    from pafpose.predict import Estimator
    from pafpose.wholebody import BODY_THRESHOLD
    from pafpose.wholebody.crops import body_points, person_crop

    root = shared / "wholebody" / "feet"
    data = json.loads((root / "person_keypoints_foot.json").read_text())
    files = {im["id"]: root / "images" / im["file_name"] for im in data["images"]}
    est = Estimator(parts=("feet",))
    feet_net = est.wholebody.feet
    kinds = {"heel": (2, 5), "big toe": (0, 3)}
    res: dict[str, dict[str, list[tuple[float, float]]]] = {v: {k: [] for k in kinds} for v in ("snap", "no snap")}
    matched = 0
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for image_id, anns in by_image.items():
        image = cv2.imread(str(files[image_id]))
        people = est.predict(image)
        gts = [np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3) for a in anns]
        match = match_people(gts, [a["bbox"][2] * a["bbox"][3] for a in anns], people)
        bodies = [body_points(p.keypoints, p.skeleton.keypoints, BODY_THRESHOLD) for p in people]
        free = [{k: v for k, v in b.items() if not k.endswith("_ankle")} for b in bodies]
        unsnapped = feet_net(image, [person_crop(b) for b in bodies], free)
        for a, j in zip(anns, match, strict=True):
            matched += j is not None
            foot = np.asarray(a["foot_kpts"], dtype=np.float64).reshape(6, 3)
            norm = math.sqrt(a["bbox"][2] * a["bbox"][3])
            for variant, pred in (("snap", people[j].parts["feet"] if j is not None else None),
                                  ("no snap", unsnapped[j] if j is not None else None)):
                for kind, idx in kinds.items():
                    for k in idx:
                        if foot[k, 2] > 0:
                            e = math.inf if pred is None or not np.isfinite(pred[k, 0]) else \
                                math.hypot(*(pred[k, :2] - foot[k, :2]))
                            res[variant][kind].append((e, e / norm))
    print(f"## Feet: {len(data['annotations'])} people on {len(by_image)} COCO images, "
          f"{matched} matched to a found person (body keypoints)\n")
    rows = []
    for variant in ("snap", "no snap"):
        for kind in kinds:
            px, n = np.asarray(res[variant][kind]).T
            fin = np.isfinite(n)
            rows.append([variant, kind, len(n), int(fin.sum()), fmt(np.median(px[fin]), 1), fmt(px[fin].mean(), 1),
                         fmt(n[fin].mean()), fmt(float((n <= 0.1).mean()))])
        n = np.asarray([e for k in kinds for _, e in res[variant][k]])
        rows.append([variant, "**both**", len(n), int(np.isfinite(n).sum()), "", "", fmt(n[np.isfinite(n)].mean()),
                     f"**{fmt(float((n <= 0.1).mean()))}**"])
        if variant == "snap":
            pck = float((n <= 0.1).mean())
            TARGETS.append(("feet: heels + big toes PCK@0.1 sqrt(box area) (the normal pipeline)", ">= 0.80",
                            fmt(pck), bool(pck >= 0.80)))
    table(["ankle snap", "point", "GT points", "found", "median px", "mean px", "mean / sqrt(box area)",
           "PCK@0.1 sqrt(box area)"], rows)


# ---------------------------------------------------------------------------------------------- COCO-WholeBody
def run_coco(shared: Path) -> None:
    """``pafpose eval``'s figures on COCO-WholeBody's one image: each part by its official
    evaluation's rules (:func:`pafpose.evaluate.wholebody_eval`)."""
    from pafpose.evaluate import evaluate
    from pafpose.predict import Estimator

    root = shared / "wholebody" / "coco_wholebody"
    data = json.loads((root / "coco_wholebody_val.json").read_text())
    people = len(data["annotations"])
    labelled = {part: sum(bool(a.get(f"{part}_valid", True)) and any(v > 0 for v in a[f"{part}_kpts"][2::3])
                          for a in data["annotations"]) for part in ("foot", "face", "lefthand", "righthand")}
    print(f"## COCO-WholeBody AP per part: {len(data['images'])} image, {people} people (labelled: "
          + ", ".join(f"{n} {k}" for k, n in labelled.items()) + "); pafpose.evaluate.wholebody_eval\n")
    est = Estimator(parts=("hands", "face", "feet"))
    result = evaluate(est.predict, root / "coco_wholebody_val.json", root / "images", progress=False)
    rows = [[part, *("-" if f[m] < 0 else fmt(f[m]) for m in ("AP", "AP50", "AP75", "AR"))]
            for part, f in result.parts.items()]
    table(["part", "AP", "AP50", "AP75", "AR"], rows)
    print("(-: no ground truth of that part; one image: these figures move by whole people, a check that "
          "the parts are scored, not a measure of accuracy)\n")


# ---------------------------------------------------------------------------------------------- cost
def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run_cost(shared: Path, repeats: int) -> None:
    """Each part network's time per crop, and a whole-body frame against body only (taking turns)."""
    from pafpose.predict import Estimator
    from pafpose.wholebody import BODY_THRESHOLD
    from pafpose.wholebody.crops import body_points, face_crop, hand_crop, person_crop
    from pafpose.wholebody.face import RIGHT_EYE, FaceNet, eye_crop
    from pafpose.wholebody.feet import FootNet
    from pafpose.wholebody.hands import HandNet
    from pafpose.wholebody.nets import to_input

    image = cv2.imread(str(shared / "images" / "p3_dance.png"))
    body, whole = Estimator(), Estimator(parts=("hands", "face", "feet"))
    people = body.predict(image)
    bodies = [body_points(p.keypoints, p.skeleton.keypoints, BODY_THRESHOLD) for p in people]
    hand = next(c for b in bodies for c in (hand_crop(b, "left"), hand_crop(b, "right")) if c is not None)
    i = next(i for i, b in enumerate(bodies) if person_crop(b) is not None)
    person = person_crop(bodies[i])
    # min_presence 0: every face counts as found, so that "as run" includes the iris runs (the
    # dancers' faces, in profile, are all rejected at the default 0.5)
    hand_net, face_net, foot_net = HandNet(), FaceNet(min_presence=0.0), FootNet()
    assert face_net.iris is not None
    face = next(c for c in map(face_crop, bodies) if c is not None)
    found = face_net.meshes(image, [face])[0]
    assert found is not None
    eye = eye_crop(found[0], RIGHT_EYE)

    def alone(net: LandmarkNet, crop: Crop) -> Callable[[], object]:
        x = to_input([crop.cut(image, net.side)])
        return lambda: net(x)

    rows = [
        ["hand", fmt(median_ms(alone(hand_net.net, hand), repeats), 2),
         fmt(median_ms(lambda: HandNet(passes=1)(image, [hand]), repeats), 2),
         fmt(median_ms(lambda: hand_net(image, [hand]), repeats), 2), "box + re-crop: 2 network runs"],
        ["face mesh", fmt(median_ms(alone(face_net.net, face), repeats), 2),
         fmt(median_ms(lambda: FaceNet(passes=1, min_presence=0.0, pupils=False)(image, [face]), repeats), 2),
         fmt(median_ms(lambda: face_net(image, [face]), repeats), 2),
         f"{face_net.passes} mesh runs + 1 iris run (both eyes in one call)"],
        ["iris (one eye)", fmt(median_ms(alone(face_net.iris, eye), repeats), 2), "", "", ""],
        ["feet (BlazePose lite)", fmt(median_ms(alone(foot_net.net, person), repeats), 2),
         fmt(median_ms(lambda: foot_net(image, [person], [bodies[i]]), repeats), 2),
         fmt(median_ms(lambda: foot_net(image, [person], [bodies[i]]), repeats), 2), "1 network run"],
    ]
    print(f"## Cost on this CPU ({os.cpu_count()} cores), {image.shape[1]}x{image.shape[0]} p3_dance.png, "
          f"{len(people)} people; part networks in {hand_net.net.precision} (OpenVINO); medians of {repeats} runs\n")
    table(["part, one crop at a time", "network alone ms", "one pass (warp + network + points back) ms",
           "as run ms", "as run"], rows)
    # a frame: body only and whole body taking turns, so that a drifting machine moves both alike
    for est in (body, whole):
        est.predict(image)
    t_body, t_whole = [], []
    parts: dict[str, list[float]] = {k: [] for k in whole.wholebody.timings}
    for _ in range(repeats):
        t0 = time.perf_counter()
        body.predict(image)
        t_body.append(time.perf_counter() - t0)
        whole.wholebody.timings = dict.fromkeys(whole.wholebody.timings, 0.0)
        t0 = time.perf_counter()
        whole.predict(image)
        t_whole.append(time.perf_counter() - t0)
        for k, v in whole.wholebody.timings.items():
            parts[k].append(v)
    b, w = 1e3 * statistics.median(t_body), 1e3 * statistics.median(t_whole)
    found = whole.predict(image)
    seen = {name: sum(bool(np.isfinite(p.parts[name][:, 0]).any()) for p in found)
            for name in ("hand_left", "hand_right", "face", "feet")}
    rows = [["body only (Estimator())", fmt(b, 1), "1.00x", ""],
            ["whole body (Estimator(parts=('hands', 'face', 'feet')))", fmt(w, 1), f"**{w / b:.2f}x**", ""]]
    for k, v in parts.items():
        ms = 1e3 * statistics.median(v)
        rows.append([f"  of which {k} (WholeBody.timings)", fmt(ms, 1), "", f"{100 * ms / w:.0f} %"])
    print(f"A frame, body network {body.config.backend} {body.config.precision} (the default); {len(people)} people, "
          f"found: {seen['hand_left'] + seen['hand_right']} hands, {seen['face']} faces, {seen['feet']} people's "
          "feet (a face not found skips its iris runs); target: whole body at most 2x body only\n")
    table(["frame", "ms (median)", "vs body only", "share of the frame"], rows)
    TARGETS.append(("whole-body frame / body-only frame (p3_dance, this CPU)", "<= 2x", f"{w / b:.2f}x", w / b <= 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared")))
    parser.add_argument("--only", default="hands,faces,feet,coco,cost",
                        help="comma-separated sections (default: all)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per figure of the cost section")
    args = parser.parse_args(argv)
    if not (args.shared / "wholebody").is_dir():
        print(f"no {args.shared}/wholebody: nothing to measure (set PAFPOSE_SHARED)")
        return 0
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    print(f"Command: {COMMAND}{'' if args.only == parser.get_default('only') else ' --only ' + args.only}\n")
    sections: dict[str, Callable[[], None]] = {
        "hands": lambda: run_hands(args.shared), "faces": lambda: run_faces(args.shared),
        "feet": lambda: run_feet(args.shared), "coco": lambda: run_coco(args.shared),
        "cost": lambda: run_cost(args.shared, args.repeats)}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        sections[name.strip()]()
        print(f"({name.strip()}: {time.perf_counter() - t0:.0f} s)\n")
    if TARGETS:
        print("## Against the issue's targets\n")
        table(["figure", "target", "measured", "met"], [(*t[:3], "yes" if t[3] else "**no**") for t in TARGETS])
    return 0


if __name__ == "__main__":
    sys.exit(main())
