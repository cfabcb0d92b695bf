"""Result formats: OpenPose JSON (written and read by layout), COCO keypoint results,
PoseTrack; atomic JSON writing."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pafpose.errors import PafposeError
from pafpose.io import write_bytes_atomic
from pafpose.pose import Pose, Poses
from pafpose.skeleton import SKELETONS, Skeleton, get_skeleton


def _flat(kps: np.ndarray, missing: tuple[float, float] = (0.0, 0.0), decimals: int = 3) -> list[float]:
    out = np.where(np.isfinite(kps), kps, 0.0)
    lost = ~np.isfinite(kps[:, 0]) | ~np.isfinite(kps[:, 1])
    out[lost, 0], out[lost, 1], out[lost, 2] = missing[0], missing[1], 0.0
    return [round(float(v), decimals) for v in out.ravel()]


_OPENPOSE_EMPTY = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                   "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")


def openpose_json(poses: Sequence[Pose], part_candidates: list[dict[str, list[float]]] | None = None,
                  missing: tuple[float, float] = (0.0, 0.0), decimals: int = 3) -> dict[str, Any]:
    """OpenPose's per-image JSON (version 1.3): keypoints in the poses' order, missing = 0, 0, 0.

    The face, hand and 3-D arrays OpenPose always writes are present and empty, so readers
    of OpenPose output work unchanged; ``score`` (the person's confidence) is an addition.
    ``person_id`` is ``[track id]`` for a tracked person, else OpenPose's ``[-1]``.
    ``part_candidates`` (:func:`pafpose.openpose.candidates_block`) follows ``people`` as
    OpenPose writes it with ``--part_candidates``; ``missing`` is the ``x, y`` written for a
    keypoint not found (OpenPose's ``-1, -1`` with ``--keypoint_scale 4``); ``decimals``
    rounds the numbers (more for the [0, 1] and [-1, 1] scales).
    """
    doc: dict[str, Any] = {"version": 1.3, "people": [
        {"person_id": [-1 if p.track_id is None else int(p.track_id)],
         "pose_keypoints_2d": _flat(p.keypoints, missing, decimals),
         **{k: [] for k in _OPENPOSE_EMPTY}, "score": round(float(p.score), 5)}
        for p in poses]}
    if part_candidates is not None:
        doc["part_candidates"] = part_candidates
    return doc


def poses_from_openpose(doc: dict[str, Any], skeleton: Skeleton | str | None = None) -> Poses:
    """The people of an OpenPose JSON document (OpenPose's or pafpose's), read by layout.

    ``skeleton``: the keypoint layout of ``pose_keypoints_2d`` (``"coco18"``, ``"body25"``,
    ``"coco17"``); by default the one whose keypoint count matches. A keypoint whose score is
    0 is missing (NaN), as OpenPose marks it; ``person_id`` becomes the track id (-1: none);
    a person's ``score`` is read where the file has one, else the mean of its found keypoints'.
    """
    people = doc.get("people") if isinstance(doc, dict) else None
    if not isinstance(people, list):
        raise PafposeError("not an OpenPose JSON document: no 'people' list")
    out = Poses()
    for n, person in enumerate(people):
        flat = np.asarray(person.get("pose_keypoints_2d", []), dtype=np.float64)
        if flat.ndim != 1 or len(flat) % 3:
            raise PafposeError(f"person {n}: pose_keypoints_2d must be x, y, c triples")
        sk = get_skeleton(skeleton) if skeleton is not None else _layout_of(len(flat) // 3)
        if len(flat) != 3 * sk.num_keypoints:
            raise PafposeError(f"person {n}: {len(flat) // 3} keypoints, but {sk.name} has {sk.num_keypoints}")
        kps = flat.reshape(-1, 3).copy()
        kps[kps[:, 2] <= 0, :2] = np.nan
        kps[kps[:, 2] <= 0, 2] = 0.0
        found = kps[:, 2] > 0
        score = float(person["score"]) if "score" in person else float(kps[found, 2].mean()) if found.any() else 0.0
        pid = person.get("person_id", [-1])
        track = int(pid[0]) if isinstance(pid, list) and pid and int(pid[0]) >= 0 else None
        out.append(Pose(kps, score, sk, track))
    return out


def _layout_of(count: int) -> Skeleton:
    for sk in SKELETONS.values():
        if sk.num_keypoints == count:
            return sk
    raise PafposeError(f"{count} keypoints per person match no known layout ({', '.join(SKELETONS)})")


def coco_results(poses: Sequence[Pose], image_id: int) -> list[dict[str, Any]]:
    """COCO keypoint results (category 1, 17 keypoints) for one image."""
    return [{"image_id": int(image_id), "category_id": 1, "keypoints": p.to_coco_keypoints(),
             "score": float(p.score)} for p in poses]


#: PoseTrack 2018's keypoints, in its order.
POSETRACK_KEYPOINTS = ("nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                       "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                       "right_knee", "left_ankle", "right_ankle")
# PoseTrack's head_bottom (the neck's top) is closest to COCO-18's neck; head_top has no counterpart.
_POSETRACK_SOURCE = {"head_bottom": "neck"}


def posetrack_annotations(poses: Sequence[Pose], image_id: int, first_id: int = 0) -> list[dict[str, Any]]:
    """PoseTrack 2018 annotations of one frame's tracked people (``track_id`` -1 if untracked).

    Keypoints are matched by name (``head_bottom`` from the neck, ``head_top`` missing);
    a missing keypoint is ``0, 0, 0``; ``scores`` holds each keypoint's confidence.
    """
    out = []
    for n, p in enumerate(poses):
        names = p.skeleton.keypoints
        kps, scores = [], []
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


def posetrack_document(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    """A PoseTrack 2018 file for one sequence: ``images`` (``file_name``, ``id``, ``frame_id``...),
    ``annotations`` (:func:`posetrack_annotations`) and the person category."""
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(POSETRACK_KEYPOINTS)}]}


def coco_image_id(path: str | Path) -> int | None:
    """The image id of a COCO-style file name (``000000000139.jpg``, ``COCO_val2014_000000000357.jpg``).

    Only COCO's own pattern (12 digits, optionally after ``COCO_<split>_``) counts, so that
    names such as camera timestamps are not mistaken for ids.
    """
    m = re.fullmatch(r"(?:COCO_[A-Za-z0-9]+_)?(\d{12})", Path(path).stem)
    return int(m.group(1)) if m else None


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as JSON via a temporary file and a rename: never a half-written file."""
    return write_bytes_atomic(json.dumps(obj).encode(), path)
