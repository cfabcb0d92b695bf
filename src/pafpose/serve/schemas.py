"""The API's response bodies as pydantic models: they document the OpenAPI spec (``/docs``).

Handlers build plain dicts (no validation on the hot path); tests check them against this spec.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every error: one sentence that says what was wrong."""

    detail: str = Field(description="what was wrong and how to fix it")


class SkeletonBody(BaseModel):
    name: str = Field(description="keypoint set, e.g. coco18")
    keypoints: list[str] = Field(description="keypoint names, in the order of each person's keypoints")
    limbs: list[tuple[int, int]] = Field(description="pairs of keypoint indices joined when drawing")
    keypoint_colors: list[tuple[int, int, int]] = Field(description="RGB per keypoint (OpenPose colours)")
    limb_colors: list[tuple[int, int, int]] = Field(description="RGB per limb")


class PersonBody(BaseModel):
    score: float = Field(description="the person's confidence, 0..1")
    keypoints: list[tuple[float, float, float] | None] = Field(
        description="[x, y, score] per keypoint in image pixels (x right, y down, pixel centres at integers); "
                    "null when the keypoint was not found or scored below the threshold")
    track_id: int | None = Field(default=None, description="the person's id across the frames of a `session` "
                                                           "(null for requests that name none)")


class PosesBody(BaseModel):
    width: int = Field(description="image width in pixels (after EXIF orientation)")
    height: int = Field(description="image height in pixels")
    people: list[PersonBody] = Field(description="people, best first")
    skeleton: SkeletonBody
    model: str
    batch_size: int = Field(description="how many requests shared this network call")
    timing_ms: dict[str, float] = Field(
        description="read (receiving the upload), decode (image), queue (waiting for the network), "
                    "inference (network + decoder for the whole batch), total (in the server)")


class OpenPosePersonBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    person_id: list[int]
    pose_keypoints_2d: list[float] = Field(description="x, y, score per keypoint; a missing one is 0, 0, 0")
    score: float


class OpenPoseBody(BaseModel):
    """OpenPose's per-image JSON (format=openpose), as ``pafpose predict`` writes it."""

    version: float
    people: list[OpenPosePersonBody]


class CocoResultBody(BaseModel):
    """One COCO keypoint result (format=coco): 17 keypoints as x, y, v."""

    image_id: int
    category_id: int
    keypoints: list[float]
    score: float


class ModelBody(BaseModel):
    name: str
    skeleton: str
    num_keypoints: int
    input_height: int
    stride: int
    device: str
    backend: str = Field(description="where the network runs (--backend auto resolved)")
    precision: str
    scales: list[float] = Field(description="default test-time scales (a request may choose others)")
    flip: bool = Field(description="default test-time flip")
    max_batch: int = Field(description="most requests per network call (1: no batching)")
    parameters: int
    license: str | None = Field(description="the weights' license, for zoo models")


class ModelsBody(BaseModel):
    models: list[ModelBody]


class HealthBody(BaseModel):
    status: str
    model: str
    queued: int = Field(description="requests waiting for the network now")
    batches: int = Field(description="network calls made since start-up")
    requests: int = Field(description="requests answered through them")


class ControlNetPersonBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    pose_keypoints_2d: list[float] = Field(description="x, y (0..1 of the canvas), 1.0 per keypoint in ControlNet's "
                                                       "COCO-18 order; a missing one is 0, 0, 0")


class ControlNetBody(BaseModel):
    """sd-webui-controlnet's pose JSON (format=controlnet): what its OpenPose editor and reader take."""

    people: list[ControlNetPersonBody]
    canvas_height: int = Field(description="height of ControlNet's detection canvas, pixels")
    canvas_width: int = Field(description="its width")
