"""Tracking (issue 16): pafpose's Tracker against no tracking and two reference rules, on
generated sequences with exact identity ground truth and on a real video without any.

    .venv/bin/python benchmarks/tracking.py [--seed 0] [--sequences 4] [--frames 80]
        [--annotations A.json --images DIR] [--video V.avi] [--json OUT]
        [--posetrack GT.json|DIR ... [--posetrack-root DIR]] [--detections CACHE.pkl]

Real annotated video: ``--posetrack`` scores the same trackers on PoseTrack 2018 ground-truth
files (their frames read from ``--posetrack-root``), on the keypoints PoseTrack shares with
COCO-17; ``posetrack_poses`` reads ``pafpose predict --json posetrack`` results back.

Sequences: people cut out of COCO photos along their segmentation polygons are pasted onto
a background (a photo of the set with its people inpainted away, slightly blurred) and
moved along independent smooth trajectories (random waypoints, cubic interpolation), so
they cross and occlude each other. Paste order is depth (lower in the frame = nearer); a
labelled keypoint covered by a person pasted later, or outside the frame, is unlabelled in
the ground truth. The whole frame and its keypoints follow a slow camera pan and zoom, and
a few frames are dropped (the scene jumps two frames on). Deterministic from ``--seed``;
frames are made one at a time and only the detections are kept.

The detector runs once per frame; every tracker then sees the same detections:

* none: a new id for every detection in every frame;
* lwop: Lightweight OpenPose's greedy rule, re-implemented from its description: current
  poses by confidence, each takes the unclaimed previous-frame pose with the most keypoints
  whose OKS-like similarity exceeds 0.5, if at least 3 do; otherwise a new id;
* hungarian: optimal assignment (scipy) on the mean keypoint distance to the previous
  frame's poses, gated at half the square root of the previous pose's box area;
* pafpose / pafpose-raw: ``pafpose.tracking.Tracker`` with ``smooth`` on / off.

Metrics (motmetrics): a ground-truth person and a hypothesis may match when their OKS over
the COCO-17 labelled keypoints is at least 0.5 (distance ``1 - OKS``). "oracle IDF1" is
the IDF1 of the same detections given perfect ids (each takes the id of the person it
matches), the bound that tracking alone can reach. Jitter: mean magnitude of a matched
keypoint's frame-to-frame acceleration (px/frame²), beside the ground truth's own over the
same keypoints; keypoint error: mean pixel distance to the ground truth.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("PAFPOSE_SRC") or str(REPO / "src"))  # PAFPOSE_SRC: another checkout's src/

from pafpose.pose import Pose  # noqa: E402
from pafpose.skeleton import COCO17, COCO18  # noqa: E402
from pafpose.tracking import OfflineTracker, Tracker, TrackerConfig  # noqa: E402

SHARED = REPO.parent / "shared"
SIGMAS17 = np.asarray(COCO17.sigmas, dtype=np.float64)
OKS_THRESHOLD = 0.5


# ============================================================================ generation
@dataclass
class Sprite:
    image: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    keypoints: np.ndarray  # (17, 3) in sprite pixels, v as in COCO
    area: float  # segmentation area in sprite pixels


@dataclass
class Truth:
    """Ground truth of one frame: the people with enough labelled keypoints."""

    ids: np.ndarray  # (P,)
    keypoints: np.ndarray  # (P, 17, 3)
    areas: np.ndarray  # (P,)
    still: np.ndarray  # (P,) bool: the person stands still (only the camera moves them)


def load_set(annotations: Path, images: Path, min_keypoints: int = 10, min_height: float = 120.0):
    """``(coco, usable person annotations, background image ids)``."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(annotations))
    people, backgrounds = [], []
    for img_id in sorted(coco.getImgIds()):
        info = coco.imgs[img_id]
        if not (images / info["file_name"]).is_file():
            continue
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None))
        covered = sum(a["area"] for a in anns) / (info["width"] * info["height"])
        if covered < 0.15:
            backgrounds.append(img_id)
        for a in anns:
            x, y, w, h = a["bbox"]
            if (a.get("iscrowd", 0) or not isinstance(a.get("segmentation"), list) or a["num_keypoints"] < min_keypoints
                    or h < min_height or x < 2 or y < 2 or x + w > info["width"] - 2 or y + h > info["height"] - 2):
                continue
            people.append(a)
    if not people or not backgrounds:
        raise SystemExit(f"{annotations}: no usable people or backgrounds")
    return coco, people, backgrounds


def cut_out(coco, ann: dict, images: Path, height: float) -> Sprite:
    info = coco.imgs[ann["image_id"]]
    image = cv2.imread(str(images / info["file_name"]))
    mask = coco.annToMask(ann).astype(np.float32)
    x, y, w, h = ann["bbox"]
    x0, y0, x1, y1 = int(x), int(y), math.ceil(x + w), math.ceil(y + h)
    s = height / (y1 - y0)
    size = (max(round((x1 - x0) * s), 1), max(round((y1 - y0) * s), 1))
    crop = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)  # feathered edge
    kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
    kp[:, 0] = (kp[:, 0] - x0) * s
    kp[:, 1] = (kp[:, 1] - y0) * s
    return Sprite(crop, alpha, kp, float(ann["area"]) * s * s)


def background(coco, img_id: int, images: Path, size: tuple[int, int]) -> np.ndarray:
    """The photo with every person inpainted away, resized (cropped) to ``size``, blurred a little."""
    info = coco.imgs[img_id]
    image = cv2.imread(str(images / info["file_name"]))
    mask = np.zeros(image.shape[:2], np.uint8)
    for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None)):
        mask |= coco.annToMask(a).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((15, 15), np.uint8))
    w, h = size
    s = max(w / image.shape[1], h / image.shape[0])
    dsize = (max(math.ceil(image.shape[1] * s), w), max(math.ceil(image.shape[0] * s), h))
    image = cv2.resize(image, dsize, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, dsize, interpolation=cv2.INTER_NEAREST)
    image = cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)
    ox, oy = (dsize[0] - w) // 2, (dsize[1] - h) // 2
    return cv2.GaussianBlur(image[oy:oy + h, ox:ox + w], (0, 0), 1.5)


def smooth_path(rng: np.random.Generator, frames: int, lo: np.ndarray, hi: np.ndarray, every: float) -> np.ndarray:
    """``(frames + 2, 2)`` positions: random waypoints about every ``every`` frames, cubic spline."""
    from scipy.interpolate import CubicSpline

    n = math.ceil((frames + 2) / every) + 3
    t = (np.arange(n) - 1) * every
    pts = rng.uniform(lo, hi, size=(n, 2))
    return CubicSpline(t, pts, axis=0)(np.arange(frames + 2))


def generate(coco, people: list[dict], backgrounds: list[int], images: Path, rng: np.random.Generator,
             frames: int = 80, n_people: tuple[int, int] = (3, 6), size: tuple[int, int] = (640, 480),
             camera: bool = True, drop: float = 0.03, still: float = 0.25,
             light: float = 0.0) -> Iterator[tuple[np.ndarray, Truth]]:
    """One sequence, frame by frame: ``(BGR image, ground truth)``; each person stands still
    with probability ``still`` (where jitter is measured). ``light`` > 0: the light on each
    person drifts, their pixels taken a gain that wanders smoothly within ``1 +- light`` (a
    cut-out's colours otherwise never change, and a tracker's colour rules would be seen only
    where they help); drawn from a child of ``rng``'s seed, so the sequence is otherwise the
    same as without it."""
    fw, fh = size
    bg = background(coco, backgrounds[rng.integers(len(backgrounds))], images, size)
    count = int(rng.integers(n_people[0], n_people[1] + 1))
    chosen = rng.choice(len(people), size=count, replace=False)
    sprites = [cut_out(coco, people[i], images, float(rng.uniform(0.4, 0.65) * fh)) for i in chosen]
    span = frames * 2 + 2  # room for dropped frames
    paths, standing = [], []
    for sp in sprites:
        h = sp.image.shape[0]
        lo = np.array([0.1 * fw, max(0.72 * fh, 0.95 * h)])
        hi = np.array([0.9 * fw, 1.05 * fh])
        path = smooth_path(rng, span, lo, np.maximum(hi, lo + 1), float(rng.uniform(25, 45)))
        standing.append(bool(rng.random() < still))
        paths.append(np.repeat(path[:1], len(path), axis=0) if standing[-1] else path)
    if camera:
        zoom = smooth_path(rng, span, np.array([1.0, 1.0]), np.array([1.15, 1.15]), 60.0)[:, 0]
        pan = smooth_path(rng, span, np.array([-25.0, -15.0]), np.array([25.0, 15.0]), 50.0)
    gains = np.ones((count, span + 2))
    if light > 0:
        lit = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])  # (rng itself is not advanced)
        for i in range(count):  # a change over one to two seconds
            gains[i] = smooth_path(lit, span, np.full(2, 1.0 - light), np.full(2, 1.0 + light),
                                   float(lit.uniform(30, 60)))[:, 0]
        gains = np.clip(gains, 0.1, 3.0)
    t = 0
    for _ in range(frames):
        canvas = bg.copy()
        owner = np.full((fh, fw), -1, np.int16)
        order = sorted(range(count), key=lambda i: paths[i][t, 1])  # farther (higher up) first
        placed = []
        for depth, i in enumerate(order):
            sp = sprites[i]
            h, w = sp.alpha.shape
            x0 = round(paths[i][t, 0] - w / 2)
            y0 = round(paths[i][t, 1] - h)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, fw), min(y0 + h, fh)
            if cx1 > cx0 and cy1 > cy0:
                a = sp.alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
                region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
                pixels = sp.image[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
                if light > 0:
                    pixels = np.minimum(pixels * gains[i, t], 255.0)
                canvas[cy0:cy1, cx0:cx1] = (region * (1 - a) + pixels * a).astype(np.uint8)
                owner[cy0:cy1, cx0:cx1][a[..., 0] > 0.5] = depth
            kp = sp.keypoints.copy()
            kp[:, 0] += x0
            kp[:, 1] += y0
            placed.append((i, depth, kp))
        truth_kp, truth_area, truth_ids = [], [], []
        for i, depth, kp in placed:
            v = kp[:, 2] > 0
            xi = np.clip(np.round(kp[:, 0]).astype(int), 0, fw - 1)
            yi = np.clip(np.round(kp[:, 1]).astype(int), 0, fh - 1)
            inside = (kp[:, 0] >= 0) & (kp[:, 0] < fw) & (kp[:, 1] >= 0) & (kp[:, 1] < fh)
            covered = owner[yi, xi] > depth
            kp[~(v & inside & ~covered), 2] = 0
            truth_kp.append(kp)
            truth_area.append(sprites[i].area)
            truth_ids.append(i)
        kps, areas = np.array(truth_kp), np.array(truth_area)
        if camera:
            z, (px, py) = zoom[t], pan[t]
            m = np.array([[z, 0, (1 - z) * fw / 2 + px], [0, z, (1 - z) * fh / 2 + py]])
            canvas = cv2.warpAffine(canvas, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            kps[..., :2] = kps[..., :2] @ m[:, :2].T + m[:, 2]
            out = (kps[..., 0] < 0) | (kps[..., 0] >= fw) | (kps[..., 1] < 0) | (kps[..., 1] >= fh)
            kps[out, 2] = 0
            areas = areas * z * z
        keep = (kps[..., 2] > 0).sum(axis=1) >= 3
        order_ids = np.array(truth_ids)[keep]
        yield canvas, Truth(order_ids, kps[keep], areas[keep], np.array([standing[i] for i in truth_ids])[keep])
        t += 2 if rng.random() < drop else 1


# ============================================================================ PoseTrack files
def _coco17_from(names: list[str], flat: list[float]) -> np.ndarray:
    """``(17, 3)`` COCO-17 keypoints (x, y, v) of one annotation whose keypoints are ``names``;
    keypoints without a COCO-17 name (PoseTrack's head_bottom, head_top) are left out."""
    kp = np.asarray(flat, dtype=np.float64).reshape(len(names), 3)
    out = np.zeros((17, 3))
    for j, name in enumerate(COCO17.keypoints):
        if name in names:
            out[j] = kp[names.index(name)]
    return out


def load_posetrack(path: Path, root: Path | None = None) -> tuple[list[Path], list[Truth | None]]:
    """One PoseTrack 2018 ground-truth file: each frame's image path (in frame order) and its
    :class:`Truth` (None for a frame that is not labelled). People are scored on the
    keypoints they share with COCO-17; the OKS area is ``area`` when the file has it, else the
    person box's (PoseTrack's ``bbox``), else the labelled keypoints' box. ``root``: the folder
    the ``file_name``s are relative to (default: the first folder above ``path`` where they exist)."""
    doc = json.loads(path.read_text())
    names = list(doc["categories"][0]["keypoints"])
    images = sorted(doc["images"], key=lambda im: (im.get("frame_id", im["id"]), im["id"]))
    if root is None:
        first = images[0]["file_name"]
        root = next((d for d in path.resolve().parents if (d / first).exists()), path.parent)
    by_image: dict[int, list[dict]] = {}
    for a in doc.get("annotations", []):
        if a.get("keypoints") and a.get("track_id") is not None:
            by_image.setdefault(a["image_id"], []).append(a)
    files, truths = [], []
    for im in images:
        files.append(root / im["file_name"])
        if not im.get("is_labeled", True):
            truths.append(None)
            continue
        ids, kps, areas = [], [], []
        for a in by_image.get(im["id"], []):
            kp = _coco17_from(names, a["keypoints"])
            labelled = kp[:, 2] > 0
            if labelled.sum() < 1:
                continue
            if a.get("area"):
                area = float(a["area"])
            elif a.get("bbox") and a["bbox"][2] > 0 and a["bbox"][3] > 0:
                area = float(a["bbox"][2] * a["bbox"][3])
            else:
                span = kp[labelled, :2].max(axis=0) - kp[labelled, :2].min(axis=0)
                area = max(float(span[0] * span[1]), 32.0 * 32.0)
            ids.append(int(a["track_id"]))
            kps.append(kp)
            areas.append(area)
        truths.append(Truth(np.array(ids, dtype=np.int64), np.array(kps).reshape(-1, 17, 3), np.array(areas),
                            np.zeros(len(ids), bool)))
    return files, truths


def write_posetrack(truths: list[Truth], files: list[str], path: Path) -> None:
    """A generated sequence's ground truth as a PoseTrack 2018 file (COCO-17 names; ``area``)."""
    images, annotations = [], []
    for f, (truth, name) in enumerate(zip(truths, files, strict=True)):
        images.append({"id": f + 1, "file_name": name, "frame_id": f, "is_labeled": True, "nframes": len(files)})
        for gid, kp, area in zip(truth.ids, truth.keypoints, truth.areas, strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": f + 1, "category_id": 1,
                                "track_id": int(gid), "keypoints": [float(v) for v in kp.ravel()],
                                "area": float(area)})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints)}]}
    path.write_text(json.dumps(doc))


def posetrack_poses(path: Path) -> list[list[Pose]]:
    """The people of each frame (in frame order) of a PoseTrack file of results, such as
    ``pafpose predict --json posetrack`` writes, as COCO-17 poses with their track ids."""
    doc = json.loads(path.read_text())
    names = list(doc["categories"][0]["keypoints"])
    images = sorted(doc["images"], key=lambda im: (im.get("frame_id", im["id"]), im["id"]))
    by_image: dict[int, list[Pose]] = {im["id"]: [] for im in images}
    for a in doc["annotations"]:
        kp = _coco17_from(names, a["keypoints"])
        scores = np.zeros(17)
        if "scores" in a:
            scores = _coco17_from(names, [v for s in a["scores"] for v in (0.0, 0.0, s)])[:, 2]
        out = np.concatenate([kp[:, :2], scores[:, None]], axis=1)
        out[kp[:, 2] <= 0] = (np.nan, np.nan, 0.0)
        by_image[a["image_id"]].append(Pose(out, float(a.get("score", 1.0)), COCO17, int(a["track_id"])))
    return [by_image[im["id"]] for im in images]


# ============================================================================ trackers
class NoTracking:
    name = "none"

    def __init__(self) -> None:
        self.next = 0

    def __call__(self, poses: list[Pose]) -> list[Pose]:
        out = []
        for p in poses:
            out.append(Pose(p.keypoints, p.score, p.skeleton, self.next))
            self.next += 1
        return out


def _bbox_area(k: np.ndarray) -> float:
    ok = np.isfinite(k[:, 0])
    if ok.sum() < 2:
        return 0.0
    span = k[ok, :2].max(axis=0) - k[ok, :2].min(axis=0)
    return float(span[0] * span[1])


class LwopGreedy:
    """Lightweight OpenPose's rule: previous frame only, greedy by confidence, match =
    the most keypoints with per-keypoint similarity > 0.5, at least ``min_keypoints``."""

    name = "lwop"

    def __init__(self, min_keypoints: int = 3, keypoint_threshold: float = 0.5) -> None:
        self.prev: list[Pose] = []
        self.next = 0
        self.min_keypoints, self.kp_threshold = min_keypoints, keypoint_threshold

    def __call__(self, poses: list[Pose]) -> list[Pose]:
        variances = (2.0 * np.asarray(poses[0].skeleton.sigmas)) ** 2 if poses else None
        free = [True] * len(self.prev)
        ids: list[int | None] = [None] * len(poses)
        for i in sorted(range(len(poses)), key=lambda j: -poses[j].score):
            a = poses[i].keypoints[:, :2]
            best, best_n = None, 0
            for j, prev in enumerate(self.prev):
                if not free[j]:
                    continue
                b = prev.keypoints[:, :2]
                area = max(_bbox_area(a), _bbox_area(b))
                d2 = ((a - b) ** 2).sum(axis=1)
                sim = np.exp(-d2 / (2.0 * (area + np.spacing(1)) * variances))
                n = int((np.isfinite(d2) & (sim > self.kp_threshold)).sum())
                if n > best_n:
                    best, best_n = j, n
            if best is not None and best_n >= self.min_keypoints:
                free[best] = False
                ids[i] = self.prev[best].track_id
        return _carry(self, poses, ids)


def _carry(rule: Any, poses: list[Pose], ids: list[int | None]) -> list[Pose]:
    """The people with the ids a reference rule chose, new ids for the others; kept as its previous frame."""
    out = []
    for p, tid in zip(poses, ids, strict=True):
        if tid is None:
            tid, rule.next = rule.next, rule.next + 1
        out.append(Pose(p.keypoints, p.score, p.skeleton, tid))
    rule.prev = out
    return out


class HungarianDistance:
    """Optimal assignment on the mean keypoint distance to the previous frame's poses,
    gated at ``gate`` x sqrt(previous pose's box area) (at least 32 px squared)."""

    name = "hungarian"

    def __init__(self, gate: float = 0.5) -> None:
        self.prev: list[Pose] = []
        self.next = 0
        self.gate = gate

    def __call__(self, poses: list[Pose]) -> list[Pose]:
        from scipy.optimize import linear_sum_assignment

        ids: list[int | None] = [None] * len(poses)
        if poses and self.prev:
            a = np.stack([p.keypoints[:, :2] for p in poses])
            b = np.stack([p.keypoints[:, :2] for p in self.prev])
            d = np.hypot(*(a[:, None] - b[None]).transpose(3, 0, 1, 2))  # (D, T, K)
            with np.errstate(invalid="ignore"):
                n = np.isfinite(d).sum(axis=2)
                mean = np.where(n > 0, np.where(np.isfinite(d), d, 0.0).sum(axis=2) / np.maximum(n, 1), np.inf)
            limit = self.gate * np.sqrt([max(_bbox_area(p.keypoints), 32.0 * 32.0) for p in self.prev])
            ok = np.isfinite(mean) & (mean <= limit[None, :])
            cost = np.where(ok, mean, 1e9)
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if ok[r, c]:
                    ids[r] = self.prev[c].track_id
        return _carry(self, poses, ids)


def _cached(looks: np.ndarray, points: np.ndarray, skeleton: Any) -> np.ndarray:
    """The trackers' ``describe`` here: the looks were read from each generated frame when it
    was made (``collect``; the frames are not kept) and come in place of the image."""
    return looks


class Pafpose:
    """The online tracker, given each frame's looks (what people wear, read from the frame)
    unless ``keypoints_only``."""

    takes_looks = True

    def __init__(self, smooth: bool, fps: float = 30.0, keypoints_only: bool = False) -> None:
        self.name = ("pafpose" if smooth else "pafpose-raw") + ("-keypoints" if keypoints_only else "")
        self.keypoints_only = keypoints_only
        self.tracker = Tracker(TrackerConfig(smooth=smooth, fps=fps), _cached)

    def __call__(self, poses: list[Pose], looks: np.ndarray | None = None) -> list[Pose]:
        # the people as given, less the pieces merged into their person (a head found apart from its body)
        return list(self.tracker.update(poses, None, None if self.keypoints_only or not poses else looks))


class PafposeOffline:
    """Offline mode: the whole sequence is known; whole sequences only (not per frame)."""

    def __init__(self, fps: float = 30.0, keypoints_only: bool = False) -> None:
        self.name = "pafpose-offline" + ("-keypoints" if keypoints_only else "")
        self.keypoints_only = keypoints_only
        self.config = TrackerConfig(fps=fps)

    def sequence(self, frames: list[list[Pose]], looks: list[np.ndarray] | None = None) -> list[list[Pose]]:
        tracker, out = OfflineTracker(self.config, _cached), []
        for i, poses in enumerate(frames):
            look = None if self.keypoints_only or looks is None or not poses else looks[i]
            out += [list(p) for _, p in tracker.push(poses, None, None, look)]
        return out + [list(p) for _, p in tracker.flush()]


def trackers(fps: float = 30.0) -> list[Callable[[], Any]]:
    """Factories, one fresh tracker per sequence."""
    return [NoTracking, LwopGreedy, HungarianDistance, lambda: Pafpose(True, fps), lambda: Pafpose(False, fps),
            lambda: PafposeOffline(fps), lambda: Pafpose(False, fps, keypoints_only=True),
            lambda: PafposeOffline(fps, keypoints_only=True)]


NAMES = ["none", "lwop", "hungarian", "pafpose", "pafpose-raw", "pafpose-offline", "pafpose-raw-keypoints",
         "pafpose-offline-keypoints"]


# ============================================================================ scoring
def coco17(poses: list[Pose]) -> np.ndarray:
    if not poses:
        return np.zeros((0, 17, 2))
    return np.stack([(p if p.skeleton.name == "coco17" else p.to_coco17()).keypoints[:, :2] for p in poses])


def oks_matrix(truth: Truth, points: np.ndarray) -> np.ndarray:
    """``(G, H)`` OKS of each hypothesis (COCO-17 points) to each ground-truth person."""
    if len(truth.ids) == 0 or len(points) == 0:
        return np.zeros((len(truth.ids), len(points)))
    d2 = ((points[None] - truth.keypoints[:, None, :, :2]) ** 2).sum(axis=3)  # (G, H, 17)
    e = d2 / (2.0 * truth.areas[:, None, None] * (2.0 * SIGMAS17) ** 2 + np.finfo(float).eps)
    vis = truth.keypoints[:, None, :, 2] > 0
    sim = np.where(np.isfinite(e) & vis, np.exp(-np.where(np.isfinite(e), e, 0.0)), 0.0)
    return sim.sum(axis=2) / np.maximum(vis.sum(axis=2), 1)


def matches(oks: np.ndarray) -> list[tuple[int, int]]:
    from scipy.optimize import linear_sum_assignment

    if oks.size == 0:
        return []
    cost = np.where(oks >= OKS_THRESHOLD, 1.0 - oks, 1e6)
    return [(int(r), int(c)) for r, c in zip(*linear_sum_assignment(cost), strict=True) if cost[r, c] < 1e6]


def switch_causes(sequences: list[list[Truth]], hyps: list[list[list[Pose]]]) -> dict[str, int]:
    """Each identity switch by its cause (issue 25's loss classes), from the ground truth's side:
    a person matched (OKS >= 0.5) to hypothesis id ``b`` after id ``a``.

    * takeover: ``b`` last covered another person (a track took someone else's person);
    * fragment: ``b`` never covered anyone and the person was seen in the frame before (a new
      track, born on a partial or split pose, won a person who never left);
    * re-entry: ``b`` never covered anyone and the person was unmatched for a while (a
      returning person got a new id: the lost track coasted away or died);
    * recovered: ``b`` is the person's own earlier id (a switch back after a swap: also where
      ``b`` covered someone else since, as when two people who had swapped ids swap back).

    ``brief takeover`` counts the takeovers undone within 3 frames (the person back on ``a``):
    mostly a person with a few visible keypoints behind another, whom the OKS matching of the
    score gives the front person's detection for a frame or two (the oracle bound counts those
    frames as right, so no tracker can reach it there). ``shared takeover`` counts the
    takeovers on a pose that another person of the frame fits at least half as well (OKS): two
    people found as one pose, or one half hidden in front of the other, which the score's
    matching may give to either.
    """
    out = {"takeover": 0, "fragment": 0, "re-entry": 0, "recovered": 0, "brief takeover": 0, "shared takeover": 0}
    for truths, frames in zip(sequences, hyps, strict=True):
        last_id: dict[int, int] = {}  # gt -> hypothesis id of its last match
        last_frame: dict[int, int] = {}  # gt -> frame of its last match
        covered: dict[int, int] = {}  # hypothesis id -> gt it last covered
        taken: dict[int, tuple[int, int]] = {}  # gt -> (frame, id before) of its last takeover
        had: dict[int, set[int]] = {}  # gt -> every hypothesis id it was matched to
        for f, (truth, poses) in enumerate(zip(truths, frames, strict=True)):
            if truth is None:
                continue
            oks = oks_matrix(truth, coco17(poses))
            pairs = matches(oks)
            now = [(int(truth.ids[g]), int(poses[h].track_id)) for g, h in pairs]
            for (g, b), (row, h) in zip(now, pairs, strict=True):
                a = last_id.get(g)
                if a is not None and a != b:
                    owner = covered.get(b)
                    if owner is None:
                        out["fragment" if last_frame[g] == f - 1 else "re-entry"] += 1
                    elif b in had[g]:
                        out["recovered"] += 1
                    else:
                        out["takeover"] += 1
                        taken[g] = (f, a)
                        others = np.delete(oks[:, h], row)
                        out["shared takeover"] += int(others.size > 0 and others.max() >= 0.5 * oks[row, h])
                    if g in taken and taken[g][1] == b and 0 < f - taken[g][0] <= 3:
                        out["brief takeover"] += 1
                        del taken[g]
            for g, b in now:
                last_id[g], last_frame[g], covered[b] = b, f, g
                had.setdefault(g, set()).add(b)
    return out


def hota(sequences: list[list[Truth]], hyps: list[list[list[Pose]]]) -> float | None:
    """HOTA (Luiten et al. 2021, TrackEval's implementation) with OKS as the similarity; None
    without trackeval (``make bench`` installs it with ``--no-deps``: it asks for opencv-python,
    which would replace opencv-python-headless)."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from trackeval.metrics import HOTA
    except ImportError:
        return None
    metric, results = HOTA(), {}
    for s, (truths, frames) in enumerate(zip(sequences, hyps, strict=True)):
        gt_ids, hyp_ids, sims = [], [], []
        for truth, poses in zip(truths, frames, strict=True):
            if truth is None:
                continue
            gt_ids.append(np.asarray(truth.ids, dtype=int))
            hyp_ids.append(np.array([int(p.track_id) for p in poses], dtype=int))
            sims.append(oks_matrix(truth, coco17(poses)))
        # TrackEval wants ids 0..n-1 per sequence
        gmap = {g: i for i, g in enumerate(sorted({int(g) for a in gt_ids for g in a}))}
        hmap = {h: i for i, h in enumerate(sorted({int(h) for a in hyp_ids for h in a}))}
        data = {"num_timesteps": len(gt_ids), "num_gt_ids": len(gmap), "num_tracker_ids": len(hmap),
                "num_gt_dets": sum(len(a) for a in gt_ids), "num_tracker_dets": sum(len(a) for a in hyp_ids),
                "gt_ids": [np.array([gmap[int(g)] for g in a], dtype=int) for a in gt_ids],
                "tracker_ids": [np.array([hmap[int(h)] for h in a], dtype=int) for a in hyp_ids],
                "similarity_scores": sims}
        results[str(s)] = metric.eval_sequence(data)
    return float(np.mean(metric.combine_sequences(results)["HOTA"])) if results else None


def score(sequences: list[list[Truth]], hyps: list[list[list[Pose]]]) -> dict:
    """MOT metrics, ID switches per 100 GT track-frames, jitter and keypoint error."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    acc_jerk, gt_jerk, still_jerk, still_gt_jerk, errors = [], [], [], [], []
    gt_frames = 0
    for s, (truths, frames) in enumerate(zip(sequences, hyps, strict=True)):
        tracks: dict[int, dict[int, np.ndarray]] = {}  # gt id -> frame -> matched points
        still = {int(i) for t in truths if t is not None for i, st in zip(t.ids, t.still, strict=True) if st}
        for f, (truth, poses) in enumerate(zip(truths, frames, strict=True)):
            if truth is None:  # a frame without labels (PoseTrack labels some frames only)
                continue
            points = coco17(poses)
            oks = oks_matrix(truth, points)
            dist = np.where(oks >= OKS_THRESHOLD, 1.0 - oks, np.nan)
            acc.update([s * 1000 + int(g) for g in truth.ids], [s * 10**9 + int(p.track_id) for p in poses], dist)
            gt_frames += len(truth.ids)
            for g, h in matches(oks):
                tracks.setdefault(int(truth.ids[g]), {})[f] = np.concatenate(
                    [points[h], truth.keypoints[g]], axis=1)  # (17, 5): x, y, gx, gy, v
                vis = truth.keypoints[g, :, 2] > 0
                d = np.hypot(*(points[h] - truth.keypoints[g, :, :2]).T)[vis]
                errors.extend(d[np.isfinite(d)].tolist())
        for gid, per_frame in tracks.items():
            for f, cur in per_frame.items():
                if f - 1 in per_frame and f + 1 in per_frame:
                    a, b = per_frame[f - 1], per_frame[f + 1]
                    ok = (a[:, 4] > 0) & (cur[:, 4] > 0) & (b[:, 4] > 0) & np.isfinite(a[:, 0] + cur[:, 0] + b[:, 0])
                    if ok.any():
                        hyp = np.hypot(*(b[ok, :2] - 2 * cur[ok, :2] + a[ok, :2]).T).tolist()
                        gt = np.hypot(*(b[ok, 2:4] - 2 * cur[ok, 2:4] + a[ok, 2:4]).T).tolist()
                        acc_jerk.extend(hyp)
                        gt_jerk.extend(gt)
                        if gid in still:
                            still_jerk.extend(hyp)
                            still_gt_jerk.extend(gt)
    mh = mm.metrics.create()
    m = mh.compute(acc, metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"], name="all")
    row = m.loc["all"]
    return {
        "mota": float(row["mota"]), "idf1": float(row["idf1"]), "id_switches": int(row["num_switches"]),
        "false_positives": int(row["num_false_positives"]), "misses": int(row["num_misses"]),
        "gt_track_frames": gt_frames,
        "switches_per_100": 100.0 * int(row["num_switches"]) / max(gt_frames, 1),
        "jitter": float(np.mean(acc_jerk)) if acc_jerk else float("nan"),
        "gt_jitter": float(np.mean(gt_jerk)) if gt_jerk else float("nan"),
        "jitter_still": float(np.mean(still_jerk)) if still_jerk else float("nan"),
        "gt_jitter_still": float(np.mean(still_gt_jerk)) if still_gt_jerk else float("nan"),
        "keypoint_error": float(np.mean(errors)) if errors else float("nan"),
    }


def oracle(sequences: list[list[Truth]], detections: list[list[list[Pose]]]) -> list[list[list[Pose]]]:
    """The detections with perfect ids: the id of the matched person, else a fresh one."""
    out, fresh = [], 10**6
    for truths, frames in zip(sequences, detections, strict=True):
        seq = []
        for truth, poses in zip(truths, frames, strict=True):
            ids: list[int] = [-1] * len(poses)
            if truth is None:
                seq.append([Pose(p.keypoints, p.score, p.skeleton, -1 - i) for i, p in enumerate(poses)])
                continue
            for g, h in matches(oks_matrix(truth, coco17(poses))):
                ids[h] = int(truth.ids[g])
            labelled = []
            for p, i in zip(poses, ids, strict=True):
                if i < 0:
                    i, fresh = fresh, fresh + 1
                labelled.append(Pose(p.keypoints, p.score, p.skeleton, i))
            seq.append(labelled)
        out.append(seq)
    return out


def untracked_apart(frames: list[list[Pose]]) -> list[list[Pose]]:
    """The frames with each untracked person (``track_id`` None: a fragment the tracker kept
    out of its tracks) given an id of its own, used once: scored as a detection without
    identity, as the ``none`` tracker's."""
    fresh = -1
    out = []
    for poses in frames:
        row = []
        for p in poses:
            if p.track_id is None:
                p, fresh = p.replace(track_id=fresh), fresh - 1
            row.append(p)
        out.append(row)
    return out


def run_trackers(detections: list[list[list[Pose]]], fps: float = 30.0, names: list[str] | None = None,
                 looks: list[list[np.ndarray]] | None = None) -> dict[str, list[list[list[Pose]]]]:
    """Each tracker over each sequence; ``looks``: what each detection wears, per frame (pafpose's
    trackers read it; None: keypoints only)."""
    out: dict[str, list[list[list[Pose]]]] = {}
    for name, make in zip(NAMES, trackers(fps), strict=True):
        if names is not None and name not in names:
            continue
        out[name] = []
        for s, frames in enumerate(detections):
            tracker = make()
            seq_looks = looks[s] if looks is not None else [None] * len(frames)
            if hasattr(tracker, "sequence"):
                hyp = tracker.sequence(frames, seq_looks)
            elif getattr(tracker, "takes_looks", False):
                hyp = [tracker(poses, look) for poses, look in zip(frames, seq_looks, strict=True)]
            else:
                hyp = [tracker(poses) for poses in frames]
            out[name].append(untracked_apart(hyp))
    return out


def video_stats(frames: list[list[Pose]], fps: float) -> dict:
    """Distinct ids, fragments shorter than 1 s, jitter over each id's consecutive frames; the
    people left untracked (a negative id from :func:`untracked_apart`: fragments of a tracked
    person) are counted apart, not as ids."""
    spans: dict[int, list[int]] = {}
    last: dict[int, list[np.ndarray]] = {}
    jerk = []
    untracked = 0
    for f, poses in enumerate(frames):
        for p in poses:
            if p.track_id is None or p.track_id < 0:
                untracked += 1
                continue
            spans.setdefault(p.track_id, [f, f])[1] = f
            hist = last.setdefault(p.track_id, [])
            if hist and hist[-1][0] != f - 1:
                hist.clear()
            hist.append((f, p.keypoints[:, :2]))
            if len(hist) >= 3:
                a, b, c = hist[-3][1], hist[-2][1], hist[-1][1]
                acc = np.hypot(*(c - 2 * b + a).T)
                jerk.extend(acc[np.isfinite(acc)].tolist())
                del hist[0]
    short = sum(1 for a, b in spans.values() if b - a + 1 < fps)
    return {"ids": len(spans), "short_fragments": short, "untracked": untracked,
            "jitter": float(np.mean(jerk)) if jerk else float("nan")}


# ============================================================================ timing
def fake_people(rng: np.random.Generator, count: int, frames: int) -> list[list[Pose]]:
    base = rng.uniform([50, 50], [1800, 1000], size=(count, 1, 2)) + rng.normal(0, 40, size=(count, 18, 2))
    vel = rng.normal(0, 3, size=(count, 1, 2))
    out = []
    for f in range(frames):
        pts = base + vel * f + rng.normal(0, 2, size=base.shape)
        kp = np.concatenate([pts, np.full((count, 18, 1), 0.8)], axis=2)
        kp[rng.random((count, 18)) < 0.1] = [np.nan, np.nan, 0.0]
        out.append([Pose(k, 0.8, COCO18) for k in kp])
    return out


def time_trackers(counts: tuple[int, ...] = (10, 50, 200), frames: int = 300, seed: int = 0,
                  repeats: int = 3) -> dict:
    """Per-frame time of each tracker: the median over the frames after 20 warm-up (offline:
    the whole sequence's time per frame), the best of ``repeats`` runs (as ``timeit``: the
    others measure the machine's other jobs). ``mean_ms``: the whole sequence's time per
    frame for every tracker, the like-for-like figure to set offline against online."""
    out: dict = {}
    for n in counts:
        seq = fake_people(np.random.default_rng(seed), n, frames if n <= 50 else 120)
        for name, make in zip(NAMES, trackers(), strict=True):
            if name == "lwop" and n > 50:  # its pure-Python loops: about half a second a frame at 200
                continue
            best: dict | None = None
            for _ in range(repeats if name != "lwop" else 1):
                tracker = make()
                if hasattr(tracker, "sequence"):  # offline: the whole sequence at once, per frame
                    t0 = time.perf_counter()
                    tracker.sequence(seq)
                    per = 1e3 * (time.perf_counter() - t0) / len(seq)
                    got = {"median_ms": per, "p10_ms": per, "mean_ms": per, "mean": True}
                else:
                    got = _per_frame(tracker, seq)
                if best is None or got["median_ms"] < best["median_ms"]:
                    best = got
            out.setdefault(name, {})[n] = best
        # the online tracker given the frame too: what people wear read from a 1920 x 1080 image at each update
        frame = np.random.default_rng(seed).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
        Tracker(TrackerConfig()).update(seq[0], None, frame)  # untimed: the process's first read costs ~0.5 s once
        runs = [_per_frame(partial(Tracker(TrackerConfig()).update, time_s=None, image=frame), seq)
                for _ in range(repeats)]
        out.setdefault("pafpose, frame given", {})[n] = min(runs, key=lambda got: got["median_ms"])
        # ... and the offline one given it too (the whole sequence's time per frame, as offline above)
        out.setdefault("pafpose-offline, frame given", {})[n] = _offline_time(seq, repeats, frame)
        # a crowd whose people the detector misses now and then (a fifth of them in each frame, seeded): the offline
        # hindsight (a person back after a gap on their id, a free track beside them) works in most frames
        pick = np.random.default_rng(seed + 1)
        missed = [[p for p in poses if pick.random() >= 0.2] for poses in seq]
        runs = [_per_frame(partial(Tracker(TrackerConfig()).update, time_s=None), missed) for _ in range(repeats)]
        out.setdefault("pafpose, a fifth missed", {})[n] = min(runs, key=lambda got: got["median_ms"])
        out.setdefault("pafpose-offline, a fifth missed", {})[n] = _offline_time(missed, repeats)
        # ... and the same people with their hips and legs never found (cut off by the frame's bottom edge, behind a
        # counter): every pose a part of its person, which no frame held can make whole (the offline bridging
        # fills only each pose's random holes)
        legless = [[p.replace(np.where(np.isin(np.arange(len(p.keypoints)), _LEGS)[:, None], [np.nan, np.nan, 0.0],
                                       p.keypoints)) for p in poses] for poses in missed]
        runs = [_per_frame(partial(Tracker(TrackerConfig()).update, time_s=None), legless) for _ in range(repeats)]
        out.setdefault("pafpose, a fifth missed, no legs", {})[n] = min(runs, key=lambda got: got["median_ms"])
        out.setdefault("pafpose-offline, a fifth missed, no legs", {})[n] = _offline_time(legless, repeats)
    return out


_LEGS = [COCO18.index(name) for name in ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
                                         "left_ankle")]


def _offline_time(seq: list[list[Pose]], repeats: int, image: np.ndarray | None = None) -> dict:
    """The offline tracker's whole-sequence time per frame over ``seq`` (``image``: given
    with every frame), the best of ``repeats`` runs, as :func:`_per_frame`'s figures."""
    per = []
    for _ in range(repeats):
        tracker = OfflineTracker(TrackerConfig())
        t0 = time.perf_counter()
        for poses in seq:
            tracker.push(poses, None, None, image)
        tracker.flush()
        per.append(1e3 * (time.perf_counter() - t0) / len(seq))
    return {"median_ms": min(per), "p10_ms": min(per), "mean_ms": min(per), "mean": True}


def _per_frame(step: Callable[[list[Pose]], Any], seq: list[list[Pose]]) -> dict:
    """``step`` over each frame of ``seq``: the median and p10 ms after 20 warm-up frames, and
    the whole sequence's mean."""
    times = []
    for poses in seq:
        t0 = time.perf_counter()
        step(poses)
        times.append(time.perf_counter() - t0)
    mean = 1e3 * sum(times) / len(times)
    times = sorted(times[20:])
    return {"median_ms": 1e3 * statistics.median(times), "p10_ms": 1e3 * times[len(times) // 10], "mean_ms": mean}


def print_timing(timing: dict, repeats: int) -> dict:
    """:func:`time_trackers`' figures as a table, and offline against online; ``timing`` back."""
    print(f"\n## Tracker time per frame (fake detections, 300 frames, 120 for 200 people, after 20 warm-up; "
          f"best of {repeats} runs)\n")
    print("| tracker | 10 people median ms | p10 | 50 people median ms | p10 | 200 people median ms | p10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t in timing.items():
        print(f"| {name} | " + " | ".join(f"{t[n]['median_ms']:.3f} | {t[n]['p10_ms']:.3f}" if n in t else "- | -"
                                          for n in (10, 50, 200)) + " |")
    for what, online, offline in (("", "pafpose", "pafpose-offline"),
                                  (", frame given", "pafpose, frame given", "pafpose-offline, frame given"),
                                  (", a fifth missed", "pafpose, a fifth missed", "pafpose-offline, a fifth missed"),
                                  (", a fifth missed, no legs", "pafpose, a fifth missed, no legs",
                                   "pafpose-offline, a fifth missed, no legs")):
        on, off = timing.get(online, {}), timing.get(offline, {})
        both = [n for n in (10, 50, 200) if n in on and n in off]
        if not both:
            continue
        print(f"\noffline / online{what}, whole-sequence ms per frame (best of {repeats} each): "
              + ", ".join(f"{n} people {off[n]['mean_ms']:.3f} / {on[n]['mean_ms']:.3f} = "
                          f"{off[n]['mean_ms'] / on[n]['mean_ms']:.2f}x" for n in both))
    return timing


# ============================================================================ main
LOOKS_VERSION = "limb colours 1"


def looks_of(image: np.ndarray, poses: list[Pose]) -> np.ndarray | None:
    """What each detected person wears, as the trackers read it from the frame (None: nobody)."""
    from pafpose.tracking.appearance import read_looks

    if not poses:
        return None
    return read_looks(image, np.stack([p.keypoints[:, :2] for p in poses]), poses[0].skeleton)


def separability(sequences: list[list[Truth]], detections: list[list[list[Pose]]],
                 looks: list[list[np.ndarray | None]], gaps: tuple[int, ...] = (1, 10),
                 within: tuple[float, ...] = (10.0, 20.0)) -> dict:
    """How well the looks tell people apart: the colour distance (``appearance.distance``)
    between two detections ``gaps`` frames apart that the oracle gives the same person, and
    that it gives two people; the counts of each, and how many lie within each of ``within``."""
    from pafpose.tracking.appearance import distance

    out = {kind: {"pairs": 0, **{str(w): 0 for w in within}} for kind in ("same", "other")}
    for frames, seq_looks in zip(oracle(sequences, detections), looks, strict=True):
        ids = [np.array([p.track_id for p in poses]) for poses in frames]
        for f in range(len(frames)):
            for g in gaps:
                if f + g >= len(frames) or seq_looks[f] is None or seq_looks[f + g] is None:
                    continue
                a, b = np.divmod(np.arange(len(ids[f]) * len(ids[f + g])), len(ids[f + g]))
                d = distance(seq_looks[f], seq_looks[f + g], a, b)
                person = (ids[f][a] < 10**6) & (ids[f + g][b] < 10**6) & ~np.isnan(d)  # both matched a person
                for kind, pick in (("same", person & (ids[f][a] == ids[f + g][b])),
                                   ("other", person & (ids[f][a] != ids[f + g][b]))):
                    out[kind]["pairs"] += int(pick.sum())
                    for w in within:
                        out[kind][str(w)] += int((d[pick] <= w).sum())
    return out


def collect(args: argparse.Namespace) -> dict:
    """Ground truth and detections of the generated sequences and the video (from the cache
    ``args.detections`` when it matches the options)."""
    import pickle

    key = {k: str(getattr(args, k)) for k in ("annotations", "images", "video", "seed", "sequences", "frames",
                                              "people", "drop", "no_camera", "posetrack", "posetrack_root")}
    key["looks"] = LOOKS_VERSION  # a cache made before the looks were kept (or read otherwise) is made again
    if args.light:  # (only then: the caches made before the option stay valid)
        key["light"] = str(args.light)
    if args.detections and args.detections.is_file():
        with args.detections.open("rb") as f:
            cached = pickle.load(f)
        if cached.get("key") == key:
            return cached
    estimator, backend = detector()
    data: dict = {"key": key, "backend": backend}
    if args.annotations.is_file():
        t0 = time.perf_counter()
        coco, people, backgrounds = load_set(args.annotations, args.images)
        rng = np.random.default_rng(args.seed)
        truths, detections, looks, det_time = [], [], [], 0.0
        for _ in range(args.sequences):
            seq_truth, seq_det = [], []
            seq_looks = []
            for image, truth in generate(coco, people, backgrounds, args.images, rng, args.frames,
                                         tuple(args.people), camera=not args.no_camera, drop=args.drop,
                                         light=args.light):
                t1 = time.perf_counter()
                seq_det.append(finite(estimator.predict(image)))
                det_time += time.perf_counter() - t1
                seq_truth.append(truth)
                seq_looks.append(looks_of(image, seq_det[-1]))
            truths.append(seq_truth)
            detections.append(seq_det)
            looks.append(seq_looks)
        n_frames = sum(len(s) for s in truths)
        data.update(truths=truths, detections=detections, looks=looks, generated={
            "sequences": args.sequences, "frames": n_frames,
            "people": [len({int(i) for t in s for i in t.ids}) for s in truths],
            "detections": sum(len(f) for s in detections for f in s),
            "detector_ms_per_frame": 1e3 * det_time / max(n_frames, 1),
            "seconds": time.perf_counter() - t0})
    files = sorted(f for x in args.posetrack for f in ([x] if x.is_file() else x.glob("*.json")))
    if files:
        truths, detections, looks, names = [], [], [], []
        for path in files:
            images, seq_truth = load_posetrack(path, args.posetrack_root)
            seq_det, seq_looks = [], []
            for image_path in images:
                image = cv2.imread(str(image_path))
                if image is None:
                    raise SystemExit(f"{path}: cannot read its frame {image_path} (--posetrack-root?)")
                seq_det.append(finite(estimator.predict(image)))
                seq_looks.append(looks_of(image, seq_det[-1]))
            names.append(path.stem)
            truths.append(seq_truth)
            detections.append(seq_det)
            looks.append(seq_looks)
        data.update(posetrack={"names": names, "truths": truths, "detections": detections, "looks": looks})
    if args.video.is_file():
        cap = cv2.VideoCapture(str(args.video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        frames, looks = [], []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(finite(estimator.predict(image)))
            looks.append(looks_of(image, frames[-1]))
        cap.release()
        data.update(video=frames, video_looks=looks, fps=fps)
    if args.detections:
        tmp = args.detections.with_name(args.detections.name + ".tmp")
        with tmp.open("wb") as f:
            pickle.dump(data, f)
        os.replace(tmp, args.detections)
    return data


def _span(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


CAUSES = ("takeover", "fragment", "re-entry", "recovered", "brief takeover", "shared takeover")


def perturbed(detections: list[list[list[Pose]]], sigma: float, rng: np.random.Generator) -> list[list[list[Pose]]]:
    """The detections with every keypoint moved by Gaussian noise of ``sigma`` pixels (the
    same people, found a little differently): how much the trackers' figures hang on the
    detector's exact output (another CPU's INT8 kernels, another backend, another version)."""
    out = []
    for frames in detections:
        seq = []
        for poses in frames:
            moved = []
            for p in poses:
                k = p.keypoints.copy()
                k[:, :2] += rng.normal(0.0, sigma, (len(k), 2))
                moved.append(p.replace(k))
            seq.append(moved)
        out.append(seq)
    return out


def shuffled(detections: list[list[list[Pose]]], looks: list[list[np.ndarray | None]] | None,
             rng: np.random.Generator) -> tuple[list[list[list[Pose]]], list[list[np.ndarray | None]] | None]:
    """Each frame's people (and their looks, row by row) in a random order: the order a
    detector lists people in says nothing about them, and the trackers' figures should not
    change with it."""
    people, worn = [], None if looks is None else []
    for s, frames in enumerate(detections):
        seq, seq_looks = [], []
        for f, poses in enumerate(frames):
            order = rng.permutation(len(poses))
            seq.append([poses[i] for i in order])
            if looks is not None:
                seq_looks.append(None if looks[s][f] is None else looks[s][f][order])
        people.append(seq)
        if worn is not None:
            worn.append(seq_looks)
    return people, worn


def same_answer(first: list[list[Pose]], second: list[list[Pose]]) -> bool:
    """Whether a tracker gave the same answer for a sequence twice (each frame's people the
    same poses, to the last bit, under ids that map one to one): its ids numbered apart,
    as a new track's number follows the order its people came in."""
    ids: dict = {}
    back: dict = {}
    for a, b in zip(first, second, strict=True):
        there = {p.keypoints.tobytes(): p.track_id for p in b}
        if len(there) != len(b) or set(there) != {p.keypoints.tobytes() for p in a}:
            return False
        for p in a:
            q = there[p.keypoints.tobytes()]
            if ids.setdefault(p.track_id, q) != q or back.setdefault(q, p.track_id) != p.track_id:
                return False
    return True


def many_seeds(args: argparse.Namespace) -> int:
    """Issue 25's measurement: every tracker on ``args.sequences`` generated sequences for each
    seed and photo set; IDF1 / bound per run, HOTA, switches and their causes per 1,000 GT
    track-frames, pooled over the runs."""
    seeds, tuned = _span(args.seeds), set(_span(args.tuned))
    command = (f".venv/bin/python benchmarks/tracking.py --seeds {args.seeds} --sets {' '.join(args.sets)} "
               f"--sequences {args.sequences} --frames {args.frames}"
               + (f" --perturb {args.perturb:g}" if args.perturb else "")
               + (f" --light {args.light:g}" if args.light else "")
               + (f" --shuffle {args.shuffle}" if args.shuffle else ""))
    print(f"# {command}\n# settings tuned on seeds {args.tuned} (marked *), the others held out")
    cache = args.detections
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    names = [n for n in NAMES if n != "none"]
    pooled = {n: {"gtf": 0, "switches": 0, **dict.fromkeys(CAUSES, 0), "ratios": [], "held": [], "hota": []}
              for n in names}
    rows, report = [], {"command": command, "runs": []}
    looks_apart: dict = {}  # separability, pooled over the runs
    order_changed, order_tried = dict.fromkeys(names, 0), dict.fromkeys(names, 0)  # --shuffle
    for set_name in args.sets:
        folder = SHARED / "coco" / set_name
        for seed in seeds:
            run = argparse.Namespace(**{**vars(args), "annotations": folder / "person_keypoints.json",
                                        "images": folder / "images", "video": Path("/nonexistent"), "seed": seed,
                                        "posetrack": [], "posetrack_root": None,
                                        "detections": cache / f"{set_name}_{seed}.pkl" if cache else None})
            data = collect(run)
            truths, detections = data["truths"], data["detections"]
            if args.perturb:
                detections = perturbed(detections, args.perturb, np.random.default_rng(seed))
            looks = data["looks"]
            bound = score(truths, oracle(truths, detections))
            row = {"set": set_name, "seed": seed, "oracle_idf1": bound["idf1"], "trackers": {}}
            hyps = run_trackers(detections, names=names, looks=looks)
            for k in range(args.shuffle):  # the same frames, each frame's people in another order
                people, worn = shuffled(detections, looks, np.random.default_rng([seed, k]))
                for name, again in run_trackers(people, names=names, looks=worn).items():
                    order_changed[name] += sum(not same_answer(a, b) for a, b in zip(hyps[name], again, strict=True))
                    order_tried[name] += len(again)
            for name, hyp in hyps.items():
                s, causes, h = score(truths, hyp), switch_causes(truths, hyp), hota(truths, hyp)
                ratio = s["idf1"] / bound["idf1"]
                row["trackers"][name] = {"idf1_ratio": ratio, "hota": h, "switches": s["id_switches"], **causes}
                q = pooled[name]
                q["gtf"] += s["gt_track_frames"]
                q["switches"] += s["id_switches"]
                for c in CAUSES:
                    q[c] += causes[c]
                q["ratios"].append(ratio)
                if seed not in tuned:
                    q["held"].append(ratio)
                if h is not None:
                    q["hota"].append(h)
            rows.append(row)
            report["runs"].append(row)
            for kind, counts in separability(truths, detections, looks).items():
                for k, v in counts.items():
                    looks_apart.setdefault(kind, {}).setdefault(k, 0)
                    looks_apart[kind][k] += v
            print(f"{set_name} seed {seed}: " + ", ".join(f"{n} {t['idf1_ratio']:.3f}"
                                                        for n, t in row["trackers"].items()), flush=True)
    print("\n## IDF1 / bound per run (bound: the same detections with perfect ids)\n")
    print("| set | seed | oracle IDF1 % | " + " | ".join(names) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for row in rows:
        mark = "*" if row["seed"] in tuned else ""
        print(f"| {row['set']} | {row['seed']}{mark} | {100 * row['oracle_idf1']:.1f} | "
              + " | ".join(f"{row['trackers'][n]['idf1_ratio']:.3f}" for n in names) + " |")
    print("\n## Pooled over the runs (causes per 1,000 GT track-frames; see switch_causes)\n")
    print("| tracker | mean IDF1 / bound | held-out mean | worst run | runs >= 0.97 | HOTA % | switches "
          "| takeover | fragment | re-entry | recovered | of the takeovers: undone within 3 frames "
          "| of the takeovers: on a pose another person fits half as well |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = {}
    for n, q in pooled.items():
        per = q["gtf"] / 1000.0
        summary[n] = {"mean": float(np.mean(q["ratios"])), "held_out": float(np.mean(q["held"])) if q["held"] else None,
                      "worst": min(q["ratios"]), "at_least_0.97": sum(r >= 0.97 for r in q["ratios"]),
                      "hota": float(np.mean(q["hota"])) if q["hota"] else None,
                      **{k: q[k] / per for k in ("switches", *CAUSES)}}
        m = summary[n]
        print(f"| {n} | {m['mean']:.3f} | {fmt(m['held_out'], 3)} | {m['worst']:.3f} | {m['at_least_0.97']} of "
              f"{len(q['ratios'])} | {fmt(None if m['hota'] is None else 100 * m['hota'])} | {m['switches']:.2f} | "
              + " | ".join(f"{m[c]:.2f}" for c in CAUSES) + " |")
    report["pooled"] = summary
    if args.shuffle:
        print(f"\n## The order people are listed in: each frame's people given in {args.shuffle} random orders "
              "(--shuffle)\n\n| tracker | sequences whose ids or poses changed |\n| --- | --- |")
        for n in names:
            print(f"| {n} | {order_changed[n]} of {order_tried[n]} |")
        report["order_changed"] = {n: [order_changed[n], order_tried[n]] for n in names}
    report["looks_apart"] = looks_apart
    same, other = looks_apart.get("same", {}), looks_apart.get("other", {})
    if same.get("pairs") and other.get("pairs"):
        print("\nwhat people wear (the limbs' colours the trackers read), detections 1 or 10 frames apart: "
              + ", ".join(f"within {float(w):g} units: the same person {same[w] / same['pairs']:.1%}, two people "
                          f"{other[w] / other['pairs']:.1%}" for w in same if w != "pairs")
              + f" ({same['pairs']} and {other['pairs']} pairs)")
    report["gt_track_frames"] = next(iter(pooled.values()))["gtf"]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


def detector():
    from pafpose import Estimator

    try:
        return Estimator(backend="openvino", device="cpu"), "openvino"
    except Exception:
        return Estimator(backend="torch", device="cpu"), "torch"


def finite(poses) -> list[Pose]:
    return [p for p in poses if np.isfinite(p.keypoints[:, :2]).any()]


def fmt(x: float, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    default = SHARED / "coco" / "val2017-dev"
    p.add_argument("--annotations", type=Path, default=default / "person_keypoints.json")
    p.add_argument("--images", type=Path, default=default / "images")
    p.add_argument("--video", type=Path, default=SHARED / "videos" / "street.avi")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--frames", type=int, default=80)
    p.add_argument("--people", type=int, nargs=2, default=(3, 6), metavar=("MIN", "MAX"))
    p.add_argument("--drop", type=float, default=0.03, help="chance a frame is dropped")
    p.add_argument("--no-camera", action="store_true", help="no pan / zoom")
    p.add_argument("--light", type=float, default=0.0, metavar="A",
                   help="the light on each generated person drifts: their pixels' gain wanders within 1 +- A over "
                        "one to two seconds (0 to 0.9; 0: off, cut-outs whose colours never change)")
    p.add_argument("--posetrack", type=Path, nargs="*", default=[], metavar="FILE_OR_DIR",
                   help="real annotated videos: PoseTrack 2018 ground-truth files (or folders of them), scored "
                   "like the generated sequences")
    p.add_argument("--posetrack-root", type=Path,
                   help="the folder their images' file_names are relative to (default: found above each file)")
    p.add_argument("--seeds", type=str, default=None, metavar="A-B",
                   help="issue 25's table: generated sequences for each seed of A..B (e.g. 0-9) on each --sets, "
                        "the trackers' IDF1 / bound per run and the identity losses by cause (the detections kept "
                        "per set and seed in --detections, a folder then)")
    p.add_argument("--sets", nargs="*", default=["val2017-dev", "train2017-mini"],
                   help="with --seeds: ../shared/coco/<set> folders (person_keypoints.json, images/)")
    p.add_argument("--perturb", type=float, default=0.0, metavar="PX",
                   help="with --seeds: move every detected keypoint by Gaussian noise of PX pixels (seeded per run), "
                        "to see how much the figures hang on the detector's exact output")
    p.add_argument("--shuffle", type=int, default=0, metavar="N",
                   help="with --seeds: also give each frame's people to the trackers in N random orders (seeded per "
                        "run) and count the sequences whose answer changed (the order a detector lists people in "
                        "says nothing about them)")
    p.add_argument("--tuned", type=str, default="0-4", metavar="A-B",
                   help="with --seeds: the seeds the settings were tuned on (marked in the table)")
    p.add_argument("--json", type=Path)
    p.add_argument("--time-only", action="store_true",
                   help="only the trackers' time per frame (fake detections, no detector, about half a minute): to set "
                        "two checkouts side by side, PAFPOSE_SRC=<other checkout>/src times the other, runs in turn")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing, the best kept")
    p.add_argument("--detections", type=Path,
                   help="cache of the generated ground truth and the detections (pickle): read when it exists "
                        "and was made with the same options, else written; to compare trackers without the detector")
    args = p.parse_args()
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(SHARED / "weights"))
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if not (math.isfinite(args.perturb) and 0.0 <= args.perturb <= 100.0):
        p.error("--perturb must be a number of pixels from 0 to 100")
    if not (math.isfinite(args.light) and 0.0 <= args.light <= 0.9):
        p.error("--light must be a number from 0 to 0.9")
    if args.perturb and not args.seeds:
        p.error("--perturb moves the detections of --seeds runs: give --seeds too")
    if not 0 <= args.shuffle <= 100:
        p.error("--shuffle must be a number of orders from 0 to 100")
    if args.shuffle and not args.seeds:
        p.error("--shuffle reorders the detections of --seeds runs: give --seeds too")
    if args.seeds:
        return many_seeds(args)
    if args.time_only:
        import pafpose

        print(f"# .venv/bin/python benchmarks/tracking.py --time-only --repeats {args.repeats}  "
              f"(pafpose from {Path(pafpose.__file__).parent})")
        report = {"timing": print_timing(time_trackers(seed=args.seed, repeats=args.repeats), args.repeats)}
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))
        return 0
    command = (f".venv/bin/python benchmarks/tracking.py --seed {args.seed} --sequences {args.sequences} "
               f"--frames {args.frames} --people {args.people[0]} {args.people[1]} --drop {args.drop}"
               + (" --no-camera" if args.no_camera else "") + (f" --light {args.light:g}" if args.light else "")
               + (" --posetrack " + " ".join(map(str, args.posetrack)) if args.posetrack else ""))
    report: dict = {"command": command}
    data = collect(args)
    report["backend"] = data["backend"]
    print(f"# {command}\n# detector: default model, backend {data['backend']}")

    if "truths" in data:
        truths, detections, gen = data["truths"], data["detections"], data["generated"]
        tracked = run_trackers(detections, looks=data["looks"])
        scores = {name: score(truths, hyp) for name, hyp in tracked.items()}
        bound = score(truths, oracle(truths, detections))
        report["synthetic"] = {**gen, "oracle": bound, "trackers": scores}
        print(f"\n## Generated sequences: {gen['sequences']} x {args.frames} frames, people per sequence "
              f"{gen['people']}, {gen['detections']} detections ({gen['detector_ms_per_frame']:.0f} ms/frame)")
        print(f"oracle IDF1 (these detections, perfect ids): {100 * bound['idf1']:.1f} %, MOTA "
              f"{100 * bound['mota']:.1f} %; ground truth's own acceleration {bound['gt_jitter']:.2f} px/frame² "
              f"(people standing still: {bound['gt_jitter_still']:.2f})\n")
        print("| tracker | MOTA % | IDF1 % | IDF1 / oracle | ID switches | per 100 GT track-frames "
              "| jitter px/frame² | still people's jitter | keypoint error px |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, s in scores.items():
            print(f"| {name} | {100 * s['mota']:.1f} | {100 * s['idf1']:.1f} | {s['idf1'] / bound['idf1']:.3f} "
                  f"| {s['id_switches']} | {s['switches_per_100']:.2f} | {fmt(s['jitter'], 2)} "
                  f"| {fmt(s['jitter_still'], 2)} | {fmt(s['keypoint_error'], 2)} |")
    else:
        print(f"no {args.annotations}: no generated sequences")

    if "posetrack" in data:
        pt = data["posetrack"]
        tracked = run_trackers(pt["detections"], looks=pt["looks"])
        scores = {name: score(pt["truths"], hyp) for name, hyp in tracked.items()}
        bound = score(pt["truths"], oracle(pt["truths"], pt["detections"]))
        report["posetrack"] = {"sequences": pt["names"], "oracle": bound, "trackers": scores}
        labelled = sum(t is not None for s in pt["truths"] for t in s)
        print(f"\n## PoseTrack ground truth: {len(pt['names'])} sequences, {labelled} labelled frames, "
              f"{bound['gt_track_frames']} GT track-frames")
        print(f"oracle IDF1 {100 * bound['idf1']:.1f} %, MOTA {100 * bound['mota']:.1f} %\n")
        print("| tracker | MOTA % | IDF1 % | IDF1 / oracle | ID switches | per 100 GT track-frames "
              "| jitter px/frame² | keypoint error px |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, s in scores.items():
            print(f"| {name} | {100 * s['mota']:.1f} | {100 * s['idf1']:.1f} | {s['idf1'] / bound['idf1']:.3f} "
                  f"| {s['id_switches']} | {s['switches_per_100']:.2f} | {fmt(s['jitter'], 2)} "
                  f"| {fmt(s['keypoint_error'], 2)} |")

    if "video" in data:
        frames, fps = data["video"], data["fps"]
        tracked = run_trackers([frames], fps, looks=[data["video_looks"]])
        stats = {name: video_stats(hyp[0], fps) for name, hyp in tracked.items()}
        report["video"] = {"path": str(args.video), "frames": len(frames), "fps": fps,
                           "detections": sum(len(f) for f in frames), "trackers": stats}
        print(f"\n## {args.video.name}: {len(frames)} frames at {fps:g} fps, "
              f"{report['video']['detections']} detections (no ground truth)\n")
        print("| tracker | distinct ids | fragments < 1 s | detections left untracked | jitter px/frame² |")
        print("| --- | --- | --- | --- | --- |")
        for name, s in stats.items():
            print(f"| {name} | {s['ids']} | {s['short_fragments']} | {s['untracked']} | {fmt(s['jitter'], 2)} |")
    else:
        print(f"no {args.video}: no video")

    report["timing"] = print_timing(time_trackers(seed=args.seed, repeats=args.repeats), args.repeats)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
