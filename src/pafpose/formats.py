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
from pafpose.pose import OPENPOSE_PARTS, POSETRACK_KEYPOINTS, Pose, Poses, as_poses
from pafpose.skeleton import SKELETONS, Skeleton, get_skeleton


def openpose_json(poses: Sequence[Pose], part_candidates: list[dict[str, list[float]]] | None = None,
                  missing: tuple[float, float] = (0.0, 0.0), decimals: int = 3) -> dict[str, Any]:
    """OpenPose's per-image JSON (version 1.3) of any people: :meth:`Poses.to_openpose`."""
    return as_poses(poses).to_openpose(part_candidates, missing, decimals)


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
        if not isinstance(person, dict):
            raise PafposeError(f"person {n}: not a JSON object")
        flat = _numbers(person.get("pose_keypoints_2d", []), f"person {n}: pose_keypoints_2d")
        if flat.ndim != 1 or len(flat) % 3:
            raise PafposeError(f"person {n}: pose_keypoints_2d must be x, y, c triples")
        sk = get_skeleton(skeleton) if skeleton is not None else _layout_of(len(flat) // 3)
        if len(flat) != 3 * sk.num_keypoints:
            raise PafposeError(f"person {n}: {len(flat) // 3} keypoints, but {sk.name} has {sk.num_keypoints}")
        kps = flat.reshape(-1, 3).copy()
        kps[kps[:, 2] <= 0, :2] = np.nan
        kps[kps[:, 2] <= 0, 2] = 0.0
        found = kps[:, 2] > 0
        if "score" in person:
            if not _is_number(person["score"]):
                raise PafposeError(f"person {n}: score must be a number, not {type(person['score']).__name__}")
            score = float(person["score"])
        else:
            score = float(kps[found, 2].mean()) if found.any() else 0.0
        out.append(Pose(kps, score, sk, _track_id(person.get("person_id", [-1]), n), parts=_parts(person, n)))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _numbers(value: Any, what: str) -> np.ndarray:
    """``value`` (a number or a flat list of them) as float64, or a one-line error naming the
    field: numpy would read ``"1.5"`` as 1.5 and ``null`` as NaN, or fail with its own message."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    if _is_number(value):
        return np.asarray(float(value))
    if isinstance(value, (list, tuple)) and all(_is_number(v) for v in value):
        return np.asarray(value, dtype=np.float64)
    raise PafposeError(f"{what} must be numbers, not {type(value).__name__}"
                       + ("" if not isinstance(value, (list, tuple)) else " of other values"))


def _track_id(pid: Any, n: int) -> int | None:
    """OpenPose's ``person_id`` (``[id]``, -1: none; a bare number accepted) as a track id."""
    first = pid[0] if isinstance(pid, list) and pid else pid if not isinstance(pid, list) else -1
    if not _is_number(first) or not float(first).is_integer():
        raise PafposeError(f"person {n}: person_id must be [a whole number], not {pid!r:.40}")
    return int(first) if first >= 0 else None


def _parts(person: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """A person's face and hands (OpenPose's 2-D arrays, where not empty), score 0 as missing."""
    out = {}
    for name, key in OPENPOSE_PARTS.items():
        flat = _numbers(person.get(key) or [], f"person {n}: {key}")
        if flat.ndim == 1 and len(flat) and len(flat) % 3 == 0:
            kps = flat.reshape(-1, 3).copy()
            kps[kps[:, 2] <= 0] = (np.nan, np.nan, 0.0)
            out[name] = kps
    return out


def _layout_of(count: int) -> Skeleton:
    for sk in SKELETONS.values():
        if sk.num_keypoints == count:
            return sk
    raise PafposeError(f"{count} keypoints per person match no known layout ({', '.join(SKELETONS)})")


def coco_results(poses: Sequence[Pose], image_id: int) -> list[dict[str, Any]]:
    """COCO keypoint results (category 1, 17 keypoints) for one image: :meth:`Poses.to_coco`."""
    return as_poses(poses).to_coco(image_id)


def posetrack_annotations(poses: Sequence[Pose], image_id: int, first_id: int = 0) -> list[dict[str, Any]]:
    """PoseTrack 2018 annotations of one frame's people: :meth:`Poses.to_posetrack`."""
    return as_poses(poses).to_posetrack(image_id, first_id)


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
