"""What the API returns for people: the three JSON formats (the people come in the image's pixels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pafpose.pose import Pose, as_poses
from pafpose.skeleton import Skeleton

FORMATS = ("pafpose", "openpose", "coco")


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
    """Each person as :meth:`Pose.to_dict` gives them (the shape ``pafpose batch`` stores too):
    ``{"track_id", "score", "keypoints": [[x, y, score] or null, ...]}``; ``track_id`` is null
    outside a tracking session."""
    return [p.to_dict(decimals=2) for p in poses]


def poses_document(poses: Sequence[Pose], fmt: str, width: int, height: int, skeleton: Skeleton,
                   image_id: int = 0, extra: dict[str, Any] | None = None) -> Any:
    """The response body in ``fmt``: ``pafpose`` (ours), ``openpose`` (OpenPose 1.3 JSON) or ``coco`` (results list;
    COCO-WholeBody's when the people have hands, faces or feet).

    The foreign formats are exactly what :mod:`pafpose.formats` writes, so their readers
    work unchanged; ``extra`` (timings, batch size) goes into our own format only.
    """
    from pafpose.formats import coco_results, openpose_json

    if fmt == "openpose":
        return openpose_json(poses)
    if fmt == "coco":  # COCO-WholeBody's results where the server finds hands, faces or feet
        people = as_poses(poses)
        return people.to_coco_wholebody(image_id) if people.has_wholebody() else coco_results(poses, image_id)
    return {"width": width, "height": height, "people": people_json(poses), "skeleton": skeleton_json(skeleton),
            **(extra or {})}
