"""What the API returns for people: original-image pixels, thresholds, the three JSON formats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pafpose.coords import Geometry
from pafpose.pose import Pose
from pafpose.skeleton import Skeleton

FORMATS = ("pafpose", "openpose", "coco")


def to_original(poses: Sequence[Pose], scale: tuple[float, float], threshold: float = 0.0) -> list[Pose]:
    """People found in a shrunk image -> the same people in the original image's pixels.

    ``scale`` is ``(sx, sy)``, shrunk pixels per original pixel: the shrink is a
    :class:`~pafpose.coords.Geometry` from the original to the shrunk image, undone here.
    Keypoints scoring below ``threshold`` become missing.
    """
    sx, sy = scale
    shrink = Geometry(sx, sy) if (sx, sy) != (1.0, 1.0) else None
    out = []
    for p in poses:
        k = p.keypoints.copy() if shrink is None else shrink.input_to_image(p.keypoints)
        low = k[:, 2] < threshold
        k[low] = (np.nan, np.nan, 0.0)
        out.append(Pose(k, p.score, p.skeleton, p.track_id))
    return out


def skeleton_json(skeleton: Skeleton) -> dict[str, Any]:
    """The keypoint names, limbs (index pairs) and OpenPose colours (RGB) a client draws with."""
    return {
        "name": skeleton.name,
        "keypoints": list(skeleton.keypoints),
        "limbs": skeleton.limb_indices().tolist(),
        "keypoint_colors": [list(c) for c in skeleton.keypoint_colors],
        "limb_colors": [list(c) for c in skeleton.limb_colors],
    }


def people_json(poses: Sequence[Pose]) -> list[dict[str, Any]]:
    """``[{"score", "keypoints": [[x, y, score] or null, ...], "track_id"?}]``: a missing keypoint is
    ``null``; ``track_id`` only for requests of a tracking session."""
    people = []
    for p in poses:
        kps = [[round(float(x), 2), round(float(y), 2), round(float(c), 4)] if np.isfinite(x) and np.isfinite(y)
               else None for x, y, c in p.keypoints]
        person = {"score": round(float(p.score), 5), "keypoints": kps}
        if p.track_id is not None:
            person["track_id"] = int(p.track_id)
        people.append(person)
    return people


def poses_document(poses: Sequence[Pose], fmt: str, width: int, height: int, skeleton: Skeleton,
                   image_id: int = 0, extra: dict[str, Any] | None = None) -> Any:
    """The response body in ``fmt``: ``pafpose`` (ours), ``openpose`` (OpenPose 1.3 JSON) or ``coco`` (results list).

    The foreign formats are exactly what :mod:`pafpose.formats` writes, so their readers
    work unchanged; ``extra`` (timings, batch size) goes into our own format only.
    """
    from pafpose.formats import coco_results, openpose_json

    if fmt == "openpose":
        return openpose_json(poses)
    if fmt == "coco":
        return coco_results(poses, image_id)
    return {"width": width, "height": height, "people": people_json(poses), "skeleton": skeleton_json(skeleton),
            **(extra or {})}
