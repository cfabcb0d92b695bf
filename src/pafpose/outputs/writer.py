"""The one writer of a run's files: every output of every image and video frame, named once.

``pafpose predict`` and ``pafpose batch`` both drive a :class:`Writer`, so that for the same
inputs and options they write the same files: OpenPose JSON (shaped by OpenPose's options:
layout, keypoint scale, part candidates, at most N people), the COCO journal and file,
PoseTrack files, drawn images and videos, OpenPose's heatmap files and ControlNet's pose
images. People arrive as :class:`~pafpose.pose.Poses` in their image's own pixels; a
picture drawn at another size (a JPEG decoded reduced) is drawn in its own pixels. Every
file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pafpose.errors import PafposeError
from pafpose.outputs.coco import CocoIds, CocoJournal
from pafpose.outputs.options import OutputOptions
from pafpose.outputs.posetrack import PoseTrackFiles
from pafpose.pose import Poses

_log = logging.getLogger("pafpose")


def frame_name(video: str, index: int) -> str:
    """A video frame's output name: OpenPose's ``NAME_000000000012`` (its position in the video)."""
    return f"{video}_{index:012d}"


def picture_suffix(location: str | None) -> str:
    """A drawn image's suffix: ``.jpg`` for JPEG input (MPO too) and video frames, else ``.png``."""
    from pafpose.images import JPEG_EXTENSIONS

    if location is None:
        return ".jpg"
    return ".jpg" if Path(location.split("?")[0]).suffix.lower() in JPEG_EXTENSIONS else ".png"


class Written(NamedTuple):
    """What :meth:`Writer.image` did: the people written (after ``number_people_max``) and
    the drawn picture (None when nothing draws)."""

    people: Poses
    drawn: np.ndarray | None


class Writer:
    """Everything a run writes, and the list of what it wrote (:attr:`written`).

    Args:
        options: what to write.
        spec: the model's field layout (part candidates and heatmap channels).
        decoder: the decoder's settings (part candidates start from its peak threshold).
        locations: the run's image files, in order (COCO ids come from their names).
        warn: where notices go (a journal left by a killed run; a video whose frame size changed).
        guard: a context manager around one image's outputs (the CLI's: Ctrl-C waits for its end).
        draw: draw every image even when no drawing is written (a window shows them).
    """

    def __init__(self, options: OutputOptions, spec: Any, decoder: Any = None, locations: Iterable[str] = (),
                 warn: Callable[[str], None] | None = None,
                 guard: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 draw: bool = False) -> None:
        from pafpose.io import UniqueNames

        self.options = options
        self.spec = spec
        self.decoder = decoder
        self.warn = warn or _log.warning
        self.guard = guard or contextlib.nullcontext
        self.draws = draw or options.drawing
        self.written: list[Path] = []
        self._names = UniqueNames()
        self._sequence_names = UniqueNames()  # videos' and folders' sequences never share a file
        self._posetrack = PoseTrackFiles(options.json_folder, self.warn) if options.json == "posetrack" else None
        self._coco = CocoJournal(options.json_folder, CocoIds(locations), self.warn) if options.json == "coco" else None
        self._video: Any = None  # --write-video: one video of every drawn image and frame

    # ------------------------------------------------------------------ names
    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... if an output of this run already has it."""
        return self._names.take(name)

    def sequence(self, name: str) -> str:
        """A sequence's output name (``NAME_posetrack.json``), unique among the run's sequences."""
        return self._sequence_names.take(name)

    # ------------------------------------------------------------------ one image or frame
    def image(self, people: Poses, image: np.ndarray | None, name: str, *, location: str | None = None,
              sequence: str | None = None, suffix: str = ".jpg", video: Any = None) -> Written:
        """Every output of one image or frame: ``people`` in its pixels, ``image`` as drawn on
        (any size: drawings are in its own pixels), ``name`` the output name, ``location`` the
        file (COCO ids, PoseTrack's ``file_name``), ``sequence`` its PoseTrack sequence,
        ``suffix`` the drawn image's, ``video`` the source's drawn video (:meth:`open_video`)."""
        o = self.options
        people = people.top(o.number_people_max)  # after tracking, as OpenPose
        canvas = self._controlnet_sizes(people, image, location or name)  # before any file: all or none
        drawn = self.draw(image, people) if self.draws and image is not None else None
        with self.guard():  # an image's outputs, or none
            self._keypoints(people, image, name, location, sequence)
            self._heatmaps(people, name)
            self._controlnet(people, canvas, name)
            if drawn is not None:
                if video is not None:
                    video.write(drawn)
                if o.save_images:
                    self._picture(drawn, name, suffix)
                self._run_video(drawn)
        return Written(people, drawn)

    def draw(self, image: np.ndarray, people: Poses) -> np.ndarray:
        """The drawn picture: skeletons on the image (in its pixels), or on black
        (``disable_blending``), or none (``render`` off)."""
        from pafpose.draw import poses as draw_poses

        base = np.zeros_like(image) if self.options.disable_blending else image
        if not self.options.render:
            return base.copy()
        return draw_poses(base, people.on(image), threshold=self.options.threshold)

    def _keypoints(self, people: Poses, image: np.ndarray | None, name: str, location: str | None,
                   sequence: str | None) -> None:
        from pafpose.formats import write_json_atomic

        o = self.options
        if o.json == "openpose":
            doc = self.openpose_document(people, image)
            self.written.append(write_json_atomic(doc, o.json_folder / f"{name}_keypoints.json"))
        elif o.json == "posetrack" and self._posetrack is not None:
            self._posetrack.add(sequence or name, people, location or name)
        elif o.json == "coco" and self._coco is not None:
            self._coco.add(name, people, location)

    def openpose_document(self, people: Poses, image: np.ndarray | None = None) -> dict[str, Any]:
        """One image's OpenPose JSON as OpenPose's options shape it: the layout (``keypoints``),
        the keypoint scale (2: ``image``'s pixels) and the part candidates."""
        from pafpose.openpose import KeypointScale, candidates_block, convert_candidates, part_candidates

        o = self.options
        size = people.image_size or ((image.shape[1], image.shape[0]) if image is not None else (1, 1))
        output = (1.0, 1.0)
        if image is not None and (image.shape[1], image.shape[0]) != size:
            output = (image.shape[1] / size[0], image.shape[0] / size[1])
        scale = KeypointScale(o.keypoint_scale, size, people.geometry, output)
        shaped = people if o.keypoints is None else people.convert(o.keypoints)
        block = None
        if o.part_candidates:
            found = part_candidates(people.fields, self.spec, self.decoder)
            if o.keypoints is not None:
                found = convert_candidates(found, self.spec.skeleton, o.keypoints)
            block = candidates_block(found, scale, scale.decimals)
        return scale.poses(shaped).to_openpose(block, scale.missing, scale.decimals)

    def _heatmaps(self, people: Poses, name: str) -> None:
        """``NAME_pose_heatmaps.png`` (or ``.float``): OpenPose's heatmap file."""
        from pafpose.openpose import heatmap_channels, heatmap_file_name, heatmap_maps, write_heatmaps

        h = self.options.heatmaps
        if h is None:
            return
        channels = len(heatmap_channels(self.spec, h.parts, h.background, h.pafs))
        maps = heatmap_maps(people.fields, self.spec, h.parts, h.background, h.pafs, h.scale)
        self.written.append(write_heatmaps(h.folder / heatmap_file_name(name, h.format), maps, channels, h.format))

    def check(self, width: int, height: int, label: str) -> None:
        """Raise :class:`PafposeError` naming ``label`` when a ``width`` x ``height`` image's outputs
        can't be written (ControlNet's canvas too large), so that a run skips it as one bad image
        before the network runs on it."""
        if self.options.controlnet is not None:
            from pafpose import controlnet

            try:
                controlnet.sizes(width, height, *self.options.controlnet)
            except PafposeError as err:
                raise PafposeError(f"{label}: {err}") from None

    def _controlnet_sizes(self, people: Poses, image: np.ndarray | None,
                          label: str) -> tuple[tuple[int, int], Any] | None:
        """The image's size and ControlNet's canvas sizes for it (None when not written): the
        people's image's size, else the given image's."""
        if self.options.controlnet is None:
            return None
        size = people.image_size or (None if image is None else (image.shape[1], image.shape[0]))
        if size is None:
            raise PafposeError(f"{label}: ControlNet's files need the image's size: give the image, or people "
                               "that know it (Poses.image_size)")
        from pafpose import controlnet

        self.check(*size, label)
        return size, controlnet.sizes(*size, *self.options.controlnet)

    def _controlnet(self, people: Poses, canvas: tuple[tuple[int, int], Any] | None, name: str) -> None:
        """ControlNet's pose image and pose JSON (``NAME_controlnet.png/.json``) on ``canvas``
        (:meth:`_controlnet_sizes`), drawn as ``controlnet_mode`` draws."""
        if canvas is None:
            return
        size, sizes = canvas
        from pafpose import controlnet
        from pafpose.formats import write_json_atomic
        from pafpose.io import write_image_atomic

        mode = self.options.controlnet_mode
        found = controlnet.persons(people, *size, self.options.threshold, mode)
        stem = self.options.out / f"{name}_controlnet"  # names may hold dots: no with_suffix
        self.written.append(write_image_atomic(controlnet.pose_image(found, sizes, mode), f"{stem}.png"))
        self.written.append(write_json_atomic(controlnet.pose_json(found, sizes), f"{stem}.json"))

    def _picture(self, drawn: np.ndarray, name: str, suffix: str) -> None:
        from pafpose.io import write_image_atomic

        if self.options.images_format is not None:  # OpenPose's --write_images_format
            suffix = "." + self.options.images_format
        self.written.append(write_image_atomic(drawn, self.options.images_folder / f"{name}_rendered{suffix}"))

    def _run_video(self, drawn: np.ndarray) -> None:
        """Add a drawn image or frame to the run's one video (OpenPose's ``--write_video``)."""
        from pafpose.video import VideoWriter

        if self.options.write_video is None:
            return
        if self._video is None:
            self._video = VideoWriter(self.options.write_video, self.options.write_video_fps or 30.0)
        self._video.write(drawn)

    # ------------------------------------------------------------------ videos and sequences
    def open_video(self, name: str, fps: float) -> Any:
        """The drawn video of one video source (``NAME_rendered.mp4``), when it is asked for."""
        from pafpose.video import VideoWriter

        return VideoWriter(self.options.out / f"{name}_rendered.mp4", fps) if self.options.save_video else None

    def close_video(self, video: Any, location: str) -> None:
        """Finish a source's drawn video (it plays whatever happened)."""
        if video is None:
            return
        if (path := video.close()) is not None:
            self.written.append(path)
        if video.resized:
            self.warn(f"{location}: the frame size changed during the video; {video.resized} drawn frames were "
                      "fitted into the first frame's size (black borders)")

    def end_sequence(self, sequence: str) -> None:
        """Write ``SEQUENCE_posetrack.json`` for a sequence whose frames are done."""
        if self._posetrack is not None and (path := self._posetrack.end(sequence)) is not None:
            self.written.append(path)

    def finish(self) -> None:
        """End the run: open sequences, the run's video and the COCO file are written."""
        if self._posetrack is not None:
            self.written += self._posetrack.end_all()
        if self._video is not None:
            video, self._video = self._video, None
            if (path := video.close()) is not None:
                self.written.append(path)
        if self._coco is not None:
            self.written += self._coco.finish()
