"""What a run writes: one options object for ``pafpose predict``, ``pafpose batch`` and the API.

The command-line flags (pafpose's and OpenPose's spellings) are parsed into it by the CLI;
a batch run ships it to its workers as plain values (:meth:`OutputOptions.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pafpose.checks import check_number
from pafpose.errors import PafposeError

#: ``--json``: the keypoint files a run writes.
JSON_FORMATS = ("openpose", "coco", "posetrack", "none")
#: Drawn images' formats (OpenPose's ``--write_images_format``): what OpenCV encodes everywhere.
IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")
#: OpenPose's heatmap file formats and scales (``--write_heatmaps_format``, ``--heatmaps_scale``).
HEATMAP_FORMATS = ("png", "float")
HEATMAP_SCALES = (0, 1, 2, 3)


@dataclass(frozen=True)
class HeatmapOptions:
    """``--write-heatmaps``: where, which channels, how scaled, in which format (OpenPose's)."""

    folder: Path
    parts: bool = True
    background: bool = True
    pafs: bool = True
    scale: int = 2
    format: str = "png"

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        if self.format not in HEATMAP_FORMATS:
            raise PafposeError(f"heatmap format must be one of {', '.join(HEATMAP_FORMATS)}, got {self.format!r}")
        if isinstance(self.scale, bool) or self.scale not in HEATMAP_SCALES:
            raise PafposeError(f"heatmap scale must be one of 0, 1, 2, 3, got {self.scale!r}")


@dataclass(frozen=True)
class OutputOptions:
    """Every output of a run, per image or video frame.

    Attributes:
        out: the output folder.
        json: keypoint files (:data:`JSON_FORMATS`): OpenPose JSON per image or frame, one
            COCO results file, one PoseTrack file per sequence, or none.
        save_images: the drawn images (``NAME_rendered.png``, ``.jpg`` for JPEG input and frames).
        save_video: the drawn video of each video source (``NAME_rendered.mp4``).
        threshold: keypoint score below which nothing is drawn.
        controlnet: ``(detect, image)`` resolution: ControlNet's pose image and JSON of every
            image and frame (``NAME_controlnet.png/.json``); None: not written.
        controlnet_mode: which of ControlNet's OpenPose preprocessors draws them
            (:data:`pafpose.controlnet.MODES`: ``openpose``, the body; ``openpose_hand``,
            ``openpose_face``, ``openpose_faceonly``, ``openpose_full`` with the people's hands
            and faces); only with ``controlnet``.
        number_people_max: OpenPose's ``--number_people_max`` (None: everyone).
        keypoint_scale: OpenPose's ``--keypoint_scale`` 0..4 for the OpenPose JSON.
        keypoints: the OpenPose JSON's layout (``"body25"``, ``"coco17"``...; None: the model's).
        part_candidates: OpenPose's ``part_candidates`` block in the JSON.
        heatmaps: OpenPose's heatmap files, or None.
        render: draw the skeletons (OpenPose's ``--render_pose 0``: False).
        disable_blending: draw on black, not on the image.
        write_video: one video of every drawn image and frame of the run (OpenPose's
            ``--write_video``), at ``write_video_fps`` (None: 30).
        json_dir: where keypoint files go (None: ``out``; OpenPose's ``--write_json DIR``);
            :attr:`json_folder` says which.
        images_dir: where drawn images go (None: ``out``; ``--write_images DIR``); :attr:`images_folder`.
        images_format: the drawn images' format (``--write_images_format``; default by input).
    """

    out: Path = Path("pafpose-out")
    json: str = "openpose"
    save_images: bool = False
    save_video: bool = False
    threshold: float = 0.1
    controlnet: tuple[int, int] | None = None
    controlnet_mode: str = "openpose"
    number_people_max: int | None = None
    keypoint_scale: int = 0
    keypoints: str | None = None
    part_candidates: bool = False
    heatmaps: HeatmapOptions | None = None
    render: bool = True
    disable_blending: bool = False
    write_video: Path | None = None
    write_video_fps: float | None = None
    json_dir: Path | None = field(default=None)
    images_dir: Path | None = field(default=None)
    images_format: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        for name in ("json_dir", "images_dir", "write_video"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.json not in JSON_FORMATS:
            raise PafposeError(f"json must be one of {', '.join(JSON_FORMATS)}, got {self.json!r}")
        check_number("threshold", self.threshold, 0, 1)
        if self.write_video_fps is not None:
            from pafpose.video import MIN_VIDEO_FPS

            check_number("write_video_fps", self.write_video_fps, MIN_VIDEO_FPS, 1000, hi_open=True)
        if not isinstance(self.keypoint_scale, int) or isinstance(self.keypoint_scale, bool) \
                or self.keypoint_scale not in range(5):
            raise PafposeError(f"keypoint scale must be 0, 1, 2, 3 or 4, got {self.keypoint_scale!r}")
        if self.number_people_max == -1:  # OpenPose's "everyone"
            object.__setattr__(self, "number_people_max", None)
        if self.number_people_max is not None:
            check_number("number_people_max", self.number_people_max, 1, None, integer=True)
        if self.controlnet_mode != "openpose" or self.controlnet is not None:
            from pafpose.controlnet import MODES

            if not isinstance(self.controlnet_mode, str) or self.controlnet_mode not in MODES:
                raise PafposeError(f"controlnet mode must be one of {', '.join(MODES)}, got {self.controlnet_mode!r}")
            if self.controlnet is None:
                raise PafposeError(f"controlnet mode {self.controlnet_mode} is for ControlNet's files, but controlnet "
                                   "is None")
        if self.controlnet is not None:
            from pafpose.controlnet import RESOLUTION_RANGE

            if not isinstance(self.controlnet, (tuple, list)) or len(self.controlnet) != 2:
                raise PafposeError(f"controlnet must be (detect, image) resolutions, got {self.controlnet!r}")
            for what, value in zip(("detect resolution", "image resolution"), self.controlnet, strict=True):
                check_number(what, value, *RESOLUTION_RANGE, integer=True)
            object.__setattr__(self, "controlnet", tuple(int(v) for v in self.controlnet))
        if self.images_format is not None and self.images_format not in IMAGE_FORMATS:
            raise PafposeError(f"images format must be one of {', '.join(IMAGE_FORMATS)}, got {self.images_format!r}")
        if isinstance(self.heatmaps, dict):
            object.__setattr__(self, "heatmaps", HeatmapOptions(**self.heatmaps))
        shaping = [n for n, on in (("keypoints", self.keypoints is not None), ("keypoint_scale", self.keypoint_scale),
                                   ("part_candidates", self.part_candidates)) if on]
        if shaping and self.json != "openpose":
            raise PafposeError(f"{shaping[0]} shapes the OpenPose JSON, but json is {self.json}")

    @property
    def json_folder(self) -> Path:
        """Where the keypoint files go."""
        return self.out if self.json_dir is None else self.json_dir

    @property
    def images_folder(self) -> Path:
        """Where the drawn images go."""
        return self.out if self.images_dir is None else self.images_dir

    @property
    def keep_fields(self) -> bool:
        """Whether each image's fields are needed (heatmap files, part candidates)."""
        return self.part_candidates or self.heatmaps is not None

    @property
    def drawing(self) -> bool:
        """Whether anything drawn is written."""
        return self.save_images or self.save_video or self.write_video is not None

    def replace(self, **changes: Any) -> OutputOptions:
        return replace(self, **changes)

    def absolute(self) -> OutputOptions:
        """The same options with every folder absolute (for workers whose working folder differs)."""
        def resolve(p: Path | None) -> Path | None:
            return None if p is None else p.resolve()

        heatmaps = None if self.heatmaps is None else replace(self.heatmaps, folder=self.heatmaps.folder.resolve())
        return replace(self, out=self.out.resolve(), json_dir=resolve(self.json_dir),
                       images_dir=resolve(self.images_dir), write_video=resolve(self.write_video), heatmaps=heatmaps)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings): what a batch run ships to its workers."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["heatmaps"] = None if self.heatmaps is None else {k: str(v) if isinstance(v, Path) else v
                                                               for k, v in asdict(self.heatmaps).items()}
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OutputOptions:
        values = dict(values)
        if values.get("heatmaps") is not None:
            h = dict(values["heatmaps"])
            values["heatmaps"] = HeatmapOptions(**{**h, "folder": Path(h["folder"])})
        if values.get("controlnet") is not None:
            values["controlnet"] = tuple(values["controlnet"])
        return cls(**values)
