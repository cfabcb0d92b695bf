"""pafpose predict SOURCE...: poses from images, folders, globs, videos, cameras and stream URLs.

SOURCE is an image or video file, a folder (searched recursively for images and videos), a
glob pattern ('photos/*.jpg'), a camera index (0) or an http(s)/rtsp stream URL. Under
--out it writes, per image or frame, OpenPose JSON (NAME_keypoints.json; video frames
NAME_000000000012_keypoints.json), or with --json coco one COCO results file
(coco_results.json, with coco_image_ids.json naming each id's image); with --save-images
the drawn pictures (NAME_rendered.png, or .jpg for JPEG input), with --save-video the drawn
video of each video source (NAME_rendered.mp4); with --render controlnet ControlNet's
OpenPose pose image and pose JSON of each image and frame (NAME_controlnet.png,
NAME_controlnet.json). Every file is written atomically.

OpenPose's options work with OpenPose's meaning (--number-people-max, --keypoint-scale,
--frame-first/-step/-last, --net-resolution, --part-candidates, --write-heatmaps,
--write-video, --keypoints body25...), and so do OpenPose's own spellings (--write_json DIR,
--image_dir DIR, --number_people_max N...): see README, "Switching from OpenPose".

A file that can't be read is reported in one line and skipped; the exit code is 1 when
anything failed, 130 after Ctrl-C (the frames done are kept and the video stays playable).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pafpose.checks import number
from pafpose.cli import openpose_flags
from pafpose.cli.openpose_flags import OpenPoseOptions
from pafpose.cli.options import add_model_arguments, backend_line, make_estimator, stop_on_sigterm, warn
from pafpose.errors import PafposeError
from pafpose.images import JPEG_EXTENSIONS
from pafpose.io import Source, UniqueNames
from pafpose.pose import Poses


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="poses from images, folders, videos, cameras or streams",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, glob, video, camera index or URL")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: pafpose-out)")
    p.add_argument("--json", choices=("openpose", "coco", "posetrack", "none"), default=None,
                   help="keypoint output format (default: openpose)")
    p.add_argument("--save-images", action="store_true", help="write the drawn images (and video frames)")
    p.add_argument("--save-video", action="store_true", help="write the drawn video of each video source")
    p.add_argument("--track", action="store_true",
                   help="images: each folder's (or glob's) images, in name order, are the frames of one sequence "
                   "(PoseTrack's layout and most frame dumps): people get ids across them")
    p.add_argument("--no-track", action="store_true",
                   help="videos, cameras and streams: no person ids across frames and no smoothing (each frame's "
                   "people as a photo's; person_id -1)")
    p.add_argument("--online", action="store_true",
                   help="track video files and folders of frames as live streams are (each frame given out at "
                   "once, smoothed from the frames before it only); by default they are smoothed from the frames "
                   "on both sides too, without lag")
    p.add_argument("--show", action="store_true", help="show the drawn frames in a window (needs a display)")
    p.add_argument("--threshold", type=number(0, 1), default=0.1, help="keypoint score below which nothing is drawn")
    p.add_argument("--timeout", type=number(0.1, 3600), default=10.0,
                   help="seconds to wait for a stream URL to open and for each of its frames (default: %(default)s)")
    add_model_arguments(p)
    p.add_argument("--batch-size", type=number(1, 256, integer=True), default=1,
                   help="images or frames per network call (1..256)")
    add_controlnet_arguments(p)
    openpose_flags.add_arguments(p)
    p.set_defaults(func=run)


def add_controlnet_arguments(p: argparse.ArgumentParser) -> None:
    """--render controlnet and its resolutions (pafpose.controlnet)."""
    from pafpose.controlnet import DEFAULT_RESOLUTION, RESOLUTION_RANGE

    g = p.add_argument_group("ControlNet")
    g.add_argument("--render", choices=("pafpose", "controlnet"), default="pafpose",
                   help="pafpose (default): the drawings of --save-images, --save-video and --show only; controlnet: "
                   "also ControlNet's OpenPose pose image of every image and frame (NAME_controlnet.png: black canvas, "
                   "its colours, limbs and sizes) and its pose JSON (NAME_controlnet.json, as sd-webui-controlnet "
                   "writes it); people are then found as its preprocessor finds them, in the image resized to "
                   "--detect-resolution (the keypoint files too)")
    for name, what in (("detect", "short side at which people are found and drawn"),
                       ("image", "short side of the pose image")):
        g.add_argument(f"--{name}-resolution", type=number(*RESOLUTION_RANGE, integer=True), default=None, metavar="N",
                       help=f"--render controlnet: {what}, rounded as ControlNet rounds it to a multiple of 64 "
                       f"({RESOLUTION_RANGE[0]}..{RESOLUTION_RANGE[1]}; default {DEFAULT_RESOLUTION})")


class Shot(NamedTuple):
    """One image or video frame as the OpenPose outputs need it: the source's ``(width,
    height)``, where it lay on the network input (:meth:`Estimator.geometry`, in source
    pixels), the drawn picture's pixels per source pixel, and the fields (when kept)."""

    size: tuple[int, int]
    geometry: Any
    output: tuple[float, float] = (1.0, 1.0)
    fields: Any = None


class Outputs:
    """Everything a run writes, and the list of what it wrote."""

    def __init__(self, out: Path, json_format: str, save_images: bool, threshold: float,
                 images: Sequence[Source], openpose: OpenPoseOptions, est: Any,
                 controlnet: tuple[int, int] | None = None) -> None:
        from pafpose.formats import coco_image_id

        self.out = out
        self.controlnet = controlnet  # --render controlnet: (detect, image) resolution
        self.json_format = json_format
        self.save_images = save_images
        self.threshold = threshold
        self.openpose = openpose
        self.spec = est.spec
        self.decoder_config = est.decoder.config
        self.json_dir = openpose.json_dir  # --out, or OpenPose's --write_json DIR
        self.video: Any = None  # --write-video: one video of every drawn image and frame
        self.video_fps: float = openpose.write_video_fps or 30.0
        self.written: list[Path] = []
        self.coco_names: dict[int, str] = {}
        self._coco_ids: dict[str, int] = {}
        for s in images:  # a repeated COCO id (same name in two folders) is not trusted twice
            found = coco_image_id(s.location)
            if found is not None and found not in self._coco_ids.values():
                self._coco_ids[s.location] = found
        self._used_ids = set(self._coco_ids.values())
        self._names = UniqueNames()
        self._next_id = 1
        self._sequences: dict[str, dict[str, list[dict[str, Any]]]] = {}  # --json posetrack: per sequence
        self._sequence_names = UniqueNames()  # videos' and folders' sequences never share a file
        self.partial = self.json_dir / "coco_results.partial.jsonl"  # --json coco's results as they come (see result())
        self._journal: Any = None

    def draw(self, image: np.ndarray, poses: Sequence[Any]) -> np.ndarray:
        """The drawn picture: skeletons on the image, or on black (--disable-blending), or none
        (--render-pose 0)."""
        from pafpose.draw import poses as draw_poses

        base = np.zeros_like(image) if self.openpose.disable_blending else image
        if not self.openpose.render:
            return base.copy()
        return draw_poses(base, poses, threshold=self.threshold)

    def _image_id(self, location: str | None) -> int:
        known = self._coco_ids.get(location) if location else None
        if known is not None:
            return known
        while self._next_id in self._used_ids:
            self._next_id += 1
        self._used_ids.add(self._next_id)
        return self._next_id

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... if an output of this run already has it."""
        return self._names.take(name)

    def result(self, name: str, poses: Sequence[Any], location: str | None = None, sequence: str = "",
               shot: Shot | None = None) -> None:
        from pafpose.formats import coco_results, write_json_atomic

        if self.json_format == "openpose":
            assert shot is not None
            self.written.append(write_json_atomic(self.openpose_document(poses, shot),
                                                  self.json_dir / f"{name}_keypoints.json"))
        elif self.json_format == "posetrack":
            from pafpose.formats import posetrack_annotations

            seq = self._sequences.setdefault(sequence, {"images": [], "annotations": []})
            frame = len(seq["images"])
            seq["images"].append({"file_name": location or f"{name}", "id": frame, "frame_id": frame,
                                  "vid_id": sequence, "is_labeled": True})
            seq["annotations"] += posetrack_annotations(poses, frame, len(seq["annotations"]))
        elif self.json_format == "coco":
            image_id = self._image_id(location)
            self.coco_names[image_id] = name
            self._journal_line({"image_id": image_id, "name": name, "results": coco_results(poses, image_id)})

    # ------------------------------------------------------------------ OpenPose's outputs
    def openpose_document(self, poses: Sequence[Any], shot: Shot) -> dict[str, Any]:
        """One image's OpenPose JSON as OpenPose's options shape it: --keypoints (layout by
        name), --keypoint-scale and --part-candidates."""
        from pafpose.formats import openpose_json
        from pafpose.openpose import KeypointScale, candidates_block, convert_candidates, part_candidates
        from pafpose.pose import convert_poses

        o = self.openpose
        people = poses if o.keypoints is None else convert_poses(poses, o.keypoints)
        scale = KeypointScale(o.keypoint_scale, shot.size, shot.geometry, shot.output)
        block = None
        if o.part_candidates:
            found = part_candidates(shot.fields, self.spec, self.decoder_config)
            if o.keypoints is not None:
                found = convert_candidates(found, self.spec.skeleton, o.keypoints)
            block = candidates_block(found, scale, scale.decimals)
        return openpose_json(scale.poses(people), block, scale.missing, scale.decimals)

    def heatmaps(self, name: str, shot: Shot) -> None:
        """``NAME_pose_heatmaps.png`` (or ``.float``): OpenPose's heatmap file (--write-heatmaps)."""
        from pafpose.openpose import heatmap_channels, heatmap_file_name, heatmap_maps, write_heatmaps

        h = self.openpose.heatmaps
        if h is None:
            return
        channels = len(heatmap_channels(self.spec, h.parts, h.background, h.pafs))
        maps = heatmap_maps(shot.fields, self.spec, h.parts, h.background, h.pafs, h.scale)
        self.written.append(write_heatmaps(h.folder / heatmap_file_name(name, h.format), maps, channels, h.format))

    def video_frame(self, drawn: np.ndarray) -> None:
        """Add a drawn image or frame to the run's one video (--write-video)."""
        from pafpose.video import VideoWriter

        if self.openpose.write_video is None:
            return
        if self.video is None:
            self.video = VideoWriter(self.openpose.write_video, self.video_fps)
        self.video.write(drawn)

    def _journal_line(self, record: dict[str, Any]) -> None:
        """Append one image's COCO results to ``coco_results.partial.jsonl`` and flush it, so that
        a hard kill (``kill -9``, the OOM killer) loses at most the image in flight; ``finish``
        replaces the journal with the final files. A journal left by an earlier killed run is
        kept under another name, never overwritten."""
        import json

        if self._journal is None:
            self.json_dir.mkdir(parents=True, exist_ok=True)
            if self.partial.exists():
                n = 1
                while (kept := self.partial.with_name(f"coco_results.partial.{n}.jsonl")).exists():
                    n += 1
                os.replace(self.partial, kept)
                warn(f"{self.partial} was left by an interrupted run; kept as {kept.name}")
            self._journal = open(self.partial, "a", encoding="utf-8")
        try:
            self._journal.write(json.dumps(record) + "\n")
            self._journal.flush()
        except OSError as err:  # a full disk: name the file
            raise OSError(err.errno, err.strerror or str(err), str(self.partial)) from err

    def controlnet_files(self, name: str, poses: Sequence[Any], size: tuple[int, int]) -> None:
        """--render controlnet: ControlNet's pose image and pose JSON of people in an image of ``size``."""
        if self.controlnet is None:
            return
        from pafpose import controlnet
        from pafpose.formats import write_json_atomic
        from pafpose.io import write_image_atomic

        sizes = controlnet.sizes(*size, *self.controlnet)
        people = controlnet.keypoints(poses, *size, self.threshold)
        stem = f"{name}_controlnet"  # names may hold dots: no with_suffix
        self.written.append(write_image_atomic(controlnet.pose_image(people, sizes), self.out / f"{stem}.png"))
        self.written.append(write_json_atomic(controlnet.pose_json(people, sizes), self.out / f"{stem}.json"))

    def picture(self, name: str, drawn: np.ndarray, suffix: str) -> None:
        from pafpose.io import write_image_atomic

        if self.openpose.images_format is not None:  # OpenPose's --write_images_format
            suffix = "." + self.openpose.images_format
        self.written.append(write_image_atomic(drawn, self.openpose.images_dir / f"{name}_rendered{suffix}"))

    def _coco_from_journal(self, tmp: str) -> None:
        """The COCO results file, streamed from the journal: memory stays bounded however many
        images a run has (their results are never all held at once)."""
        import json

        if self._journal is not None:
            self._journal.flush()
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("[")
            first = True
            if self.partial.exists() and self._journal is not None:
                with open(self.partial, encoding="utf-8") as journal:
                    for line in journal:
                        for result in json.loads(line)["results"]:
                            out.write(("" if first else ", ") + json.dumps(result))
                            first = False
            out.write("]")

    def sequence(self, name: str) -> str:
        """A sequence's output name (``NAME_posetrack.json``), unique among the run's sequences."""
        return self._sequence_names.take(name)

    def end_sequence(self, sequence: str) -> None:
        """Write ``SEQUENCE_posetrack.json`` (--json posetrack) for a sequence whose frames are done."""
        from pafpose.formats import posetrack_document, write_json_atomic

        seq = self._sequences.pop(sequence, None)
        if seq is not None:
            for image in seq["images"]:
                image["nframes"] = len(seq["images"])
            path = self.json_dir / f"{sequence}_posetrack.json"
            self.written.append(write_json_atomic(posetrack_document(seq["images"], seq["annotations"]), path))

    def finish(self) -> None:
        from pafpose.formats import write_json_atomic
        from pafpose.io import atomic_output

        for sequence in list(self._sequences):  # folders of frames end with the run
            self.end_sequence(sequence)
        if self.video is not None:
            video, self.video = self.video, None
            if (path := video.close()) is not None:
                self.written.append(path)

        if self.json_format == "coco":
            self.written.append(atomic_output(self.json_dir / "coco_results.json", self._coco_from_journal))
            self.written.append(write_json_atomic({str(k): v for k, v in sorted(self.coco_names.items())},
                                                  self.json_dir / "coco_image_ids.json"))
            if self._journal is not None:  # the final files hold everything: the journal goes
                self._journal.close()
                self._journal = None
                self.partial.unlink(missing_ok=True)


class Display:
    """A window for --show: OpenCV's if it has a GUI, else matplotlib's; a warning where none exists."""

    def __init__(self) -> None:
        self.mode: str | None = None
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            warn("--show: no display found (DISPLAY is not set); continuing without a window")
            return
        self.mode = "cv2"
        self._plot: Any = None

    def show(self, title: str, frame: np.ndarray) -> bool:
        """Show ``frame``; False when the user asked to stop (q or Esc, or closed the window)."""
        if self.mode == "cv2":
            import cv2

            try:
                cv2.imshow(title, frame)
                return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)
            except cv2.error:  # opencv-python-headless has no GUI
                self.mode = "matplotlib"
        if self.mode == "matplotlib":
            try:
                return self._show_matplotlib(title, frame)
            except Exception as err:  # any GUI toolkit failure only turns --show off
                warn(f"--show: no usable window toolkit ({type(err).__name__}: {err}); continuing without")
                self.mode = None
        return True

    def _show_matplotlib(self, title: str, frame: np.ndarray) -> bool:
        import matplotlib.pyplot as plt

        if self._plot is None:
            if plt.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
                raise RuntimeError(f"matplotlib backend {plt.get_backend()} is not interactive")
            plt.ion()
            fig, ax = plt.subplots()
            ax.axis("off")
            self._plot = (fig, ax.imshow(frame[:, :, ::-1]))
        fig, im = self._plot
        if not plt.fignum_exists(fig.number):
            return False
        im.set_data(frame[:, :, ::-1])
        fig.canvas.manager.set_window_title(title)
        plt.pause(0.001)
        return True


def _chunks(items: Sequence[Source], n: int) -> Iterator[Sequence[Source]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Run:
    """One `pafpose predict` run: counts, failures and the loop over sources."""

    def __init__(self, args: argparse.Namespace, est: Any, outputs: Outputs) -> None:
        self.args = args
        self.est = est
        self.outputs = outputs
        self.openpose: OpenPoseOptions = outputs.openpose
        self.display = Display() if args.show else None
        self.images = self.frames = self.people = self.failed = 0
        self.stopped = False  # the user closed the window or pressed q

    def fail(self, message: str) -> None:
        self.failed += 1
        warn(f"error: {message} (skipped)")

    def _keep_showing(self, title: str, drawn: np.ndarray | None) -> bool:
        if self.display is not None and drawn is not None and not self.display.show(title, drawn):
            self.stopped = True
        return not self.stopped

    def run_images(self, sources: Sequence[Source]) -> None:
        from tqdm import tqdm

        from pafpose.images import open_image
        from pafpose.pose import scale_poses

        self._trackers: dict[str, Any] = {}  # folder -> its Tracker (--online) or OfflineTracker
        self._sequence_names: dict[str, str] = {}  # folder -> its sequence's output name
        try:
            with tqdm(total=len(sources), unit="image", disable=len(sources) < 2) as bar:
                for chunk in _chunks(sources, self.args.batch_size):
                    loaded = []
                    for src in chunk:
                        try:
                            loaded.append((src, open_image(src.location)))
                        except PafposeError as err:
                            self.fail(str(err))
                            bar.update()
                    if not loaded:
                        continue
                    results = self.est.predict_batch([file.image for _, file in loaded],
                                                     keep_fields=self.openpose.keep_fields)
                    for (src, file), poses in zip(loaded, results, strict=True):
                        self.images += 1
                        sx, sy = file.scale  # a huge JPEG is read reduced: the JSON is in the file's pixels
                        found = poses if (sx, sy) == (1.0, 1.0) else scale_poses(poses, 1 / sx, 1 / sy)
                        folder = str(Path(src.location).resolve().parent)
                        if folder not in self._sequence_names:
                            self._sequence_names[folder] = self.outputs.sequence(Path(folder).name)
                        frame = (src, file, self.outputs.unique(src.name), self._sequence_names[folder],
                                 self._shot(found, file))
                        if self.args.track or self.args.json == "posetrack":  # a folder's images: one sequence
                            ready = self._track(folder, found, frame)
                        else:
                            ready = [(frame, found)]
                        for done, people in ready:
                            if not self._emit_image(*done, people):
                                return
                        bar.update()
        finally:
            held = [item for tracker in self._trackers.values() if hasattr(tracker, "flush")
                    for item in tracker.flush()]
            for done, people in held:  # frames an offline tracker still held: written, not lost
                self._emit_image(*done, people)

    def _track(self, folder: str, found: Poses, frame: tuple) -> list[tuple[tuple, Poses]]:
        """The frames of ``folder``'s sequence ready to write: this one at once (``--online``),
        or those the offline tracker has finished (each ``window`` frames later)."""
        from pafpose.offline import OfflineTracker
        from pafpose.tracker import Tracker

        if self.args.online:
            return [(frame, self._trackers.setdefault(folder, Tracker()).update(found))]
        ready = []
        for other in [f for f in self._trackers if f != folder]:  # a folder's images come together
            ready += self._trackers[other].flush()
        return ready + self._trackers.setdefault(folder, OfflineTracker()).push(found, frame)

    def _emit_image(self, src: Source, file: Any, name: str, sequence: str, shot: Shot, found: Poses) -> bool:
        """Write one image's outputs (``found`` in the file's pixels); False when the user stops."""
        from pafpose.openpose import top_people
        from pafpose.pose import scale_poses

        found = top_people(found, self.openpose.number_people_max)  # --number-people-max, after tracking
        self.people += len(found)
        sx, sy = file.scale
        poses = found if (sx, sy) == (1.0, 1.0) else scale_poses(found, sx, sy)
        img = file.image  # drawn as read
        drawn = self.outputs.draw(img, poses) if self._drawing() else None
        with deferred_interrupts():  # an image's outputs, or none
            self.outputs.result(name, found, src.location, sequence, shot)
            self.outputs.heatmaps(name, shot)
            self.outputs.controlnet_files(name, found, (file.width, file.height))
            if self.args.save_images:
                suffix = ".jpg" if Path(src.location).suffix.lower() in JPEG_EXTENSIONS else ".png"
                self.outputs.picture(name, drawn, suffix)
            if drawn is not None:
                self.outputs.video_frame(drawn)
        return self._keep_showing(src.name, drawn)

    def _drawing(self) -> bool:
        """Whether anything shows or writes drawn pictures."""
        a = self.args
        return bool(a.save_images or a.save_video or self.display is not None or self.openpose.write_video)

    def _shot(self, poses: Any, file: Any) -> Shot:
        """What the OpenPose outputs need of an image: its size, where it lay on the network (in
        the file's pixels: a JPEG decoded reduced is one more resize before the network's),
        the drawn picture's scale, and the fields the people came from (in the file's pixels)."""
        from pafpose.coords import Geometry

        sx, sy = file.scale
        g = self.est.geometry(file.image.shape)
        return Shot((file.width, file.height), Geometry(g.fx * sx, g.fy * sy, g.stride), (sx, sy), poses.fields)

    def run_video(self, src: Source) -> None:
        from tqdm import tqdm

        from pafpose.openpose import top_people
        from pafpose.video import VideoWriter, capture_info, open_capture

        if src.kind == "stream":
            warn(f"opening {src.location} (waiting up to {self.args.timeout:g} s for it and for each frame)")
        try:
            cap = open_capture(src.capture_arg(), timeout=self.args.timeout)
        except PafposeError as err:
            self.fail(str(err))
            return
        fps, count = capture_info(cap)
        video = self.outputs.unique(src.name)
        sequence = self.outputs.sequence(video)
        writer = VideoWriter(self.args.out / f"{video}_rendered.mp4", fps) if self.args.save_video else None
        draw = self._drawing()
        selected = self.openpose.frames
        expected = selected.count(count) if count else None
        frames = 0
        try:
            with tqdm(total=expected, unit="frame", desc=src.name) as bar:
                offline = src.kind == "video" and not self.args.online  # a file: the frames after are known
                for index, frame, poses in self.est.stream(cap, batch_size=self.args.batch_size,
                                                           track=not self.args.no_track, offline=offline,
                                                           frames=selected, keep_fields=self.openpose.keep_fields):
                    frames += 1
                    shot = Shot((frame.shape[1], frame.shape[0]), self.est.geometry(frame.shape), fields=poses.fields)
                    poses = top_people(poses, self.openpose.number_people_max)  # --number-people-max
                    self.people += len(poses)
                    name = self.outputs.unique(f"{video}_{index:012d}")
                    drawn = self.outputs.draw(frame, poses) if draw else None
                    with deferred_interrupts():  # a frame's outputs and its video frames, or none
                        self.outputs.result(name, poses, sequence=sequence, shot=shot)
                        self.outputs.heatmaps(name, shot)
                        self.outputs.controlnet_files(name, poses, (frame.shape[1], frame.shape[0]))
                        if writer is not None:
                            writer.write(drawn)
                        if self.args.save_images:
                            self.outputs.picture(name, drawn, ".jpg")
                        if drawn is not None:
                            self.outputs.video_frame(drawn)
                    bar.update()
                    if not self._keep_showing(src.name, drawn):
                        break
        finally:
            self.frames += frames
            cap.release()
            self.outputs.end_sequence(sequence)
            if writer is not None and (path := writer.close()) is not None:
                self.outputs.written.append(path)
            if writer is not None and writer.resized:
                warn(f"{src.location}: the frame size changed during the video; {writer.resized} drawn frames "
                     "were fitted into the first frame's size (black borders)")
        if frames == 0 and expected != 0:
            self.fail(f"{src.location}: no frame could be decoded")
        elif expected and src.kind == "video" and not self.stopped and frames + max(2, expected // 100) < expected:
            asked = "its" if selected.everything else f"the {expected} frames asked of its"
            self.fail(f"{src.location}: the video ended after {frames} of {asked} {count} frames (truncated or "
                      "damaged); the frames read are kept")
        elif expected == 0 and not selected.everything:
            warn(f"{src.location}: none of its {count} frames is in --frame-first/--frame-step/--frame-last")

    def summary(self, interrupted: bool, startup: float, elapsed: float) -> str:
        """One line: what was done, and the time per image from file to outputs after start-up."""
        done = self.images + self.frames
        what = [f"{self.images} image{'s' * (self.images != 1)}"] if self.images or not self.frames else []
        if self.frames:
            what.append(f"{self.frames} video frame{'s' * (self.frames != 1)}")
        rate = f"; {elapsed / done * 1e3:.0f} ms each ({done / elapsed:.1f}/s)" if done and elapsed > 0 else ""
        head = "interrupted after " if interrupted else ""
        return (f"{head}{' and '.join(what)}: {self.people} people found, {self.failed} failed{rate}, "
                f"after {startup:.1f} s start-up")


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Ctrl-C or kill during the block takes effect at its end, so that the outputs of one
    frame are all written or none is (the JSON files then match the drawn video's frames)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            raise KeyboardInterrupt


def _controlnet_resolutions(args: argparse.Namespace) -> tuple[int, int] | None:
    """(detect, image) resolution for --render controlnet, else None; the resolutions alone are a mistake."""
    from pafpose.controlnet import DEFAULT_RESOLUTION

    if args.render != "controlnet":
        if args.detect_resolution is not None or args.image_resolution is not None:
            raise PafposeError("--detect-resolution and --image-resolution are for --render controlnet")
        return None
    return (DEFAULT_RESOLUTION if args.detect_resolution is None else args.detect_resolution,
            DEFAULT_RESOLUTION if args.image_resolution is None else args.image_resolution)


# ---------------------------------------------------------------------- OpenPose's options in a run
def _select_images(images: Sequence[Source], frames: Any) -> list[Source]:
    """--frame-first/-step/-last on images: each folder's images, in name order, are its frames
    (OpenPose's --image_dir)."""
    if frames.everything:
        return list(images)
    seen: dict[Path, int] = {}
    out = []
    for src in images:
        folder = Path(src.location).resolve().parent
        index = seen[folder] = seen.get(folder, -1) + 1
        if index in frames:
            out.append(src)
    return out


def _video_fps(openpose: OpenPoseOptions, sources: Sequence[Source], timeout: float) -> float | None:
    """--write-video's frame rate: --write-video-fps, else the first video source's (OpenPose's rule)."""
    from pafpose.video import VideoWriter, capture_info, open_capture

    if openpose.write_video is None:
        return None
    VideoWriter(openpose.write_video, 30.0)  # checks the container before any work
    if openpose.write_video_fps is not None:
        return openpose.write_video_fps
    for src in sources:
        if src.kind == "image":
            continue
        try:
            cap = open_capture(src.capture_arg(), timeout=timeout)
        except PafposeError:
            continue  # reported when the source's turn comes
        try:
            return capture_info(cap)[0]
        finally:
            cap.release()
    raise PafposeError("--write-video: images have no frame rate; give --write-video-fps")


def _check_openpose(openpose: OpenPoseOptions, est: Any) -> None:
    """What the model must have for OpenPose's outputs (the heatmaps asked for: a background)."""
    from pafpose.openpose import heatmap_channels

    if openpose.heatmaps is not None:
        h = openpose.heatmaps
        heatmap_channels(est.spec, h.parts, h.background, h.pafs)


def run(args: argparse.Namespace) -> int:
    from pafpose.io import expand_sources

    openpose = openpose_flags.resolve(args)
    if args.batch_size < 1:
        raise PafposeError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 0 <= args.threshold <= 1:
        raise PafposeError(f"--threshold must be in 0..1, got {args.threshold}")
    if args.out.exists() and not args.out.is_dir():
        raise PafposeError(f"--out {args.out}: exists and is not a folder")
    if not args.sources:
        raise PafposeError("nothing to process: give a SOURCE (or OpenPose's --image_dir, --video, --camera)")
    controlnet = _controlnet_resolutions(args)
    sources, errors, ignored = expand_sources(args.sources, openpose.images_dir)
    for message in errors:
        warn(f"error: {message}")
    if not sources:
        raise PafposeError("nothing to process: no readable source among " + " ".join(args.sources))
    video_fps = _video_fps(openpose, sources, args.timeout)
    start = time.perf_counter()
    est = make_estimator(args)
    print(backend_line(args, est), flush=True)
    if controlnet is not None:  # people found as ControlNet's preprocessor finds them
        from pafpose.controlnet import Detector

        est = Detector(est, controlnet[0])
    _check_openpose(openpose, est)
    ready = time.perf_counter()
    images = _select_images([s for s in sources if s.kind == "image"], openpose.frames)
    outputs = Outputs(args.out, args.json, args.save_images, args.threshold, images, openpose, est, controlnet)
    outputs.video_fps = video_fps or 30.0
    job = Run(args, est, outputs)
    job.failed = len(errors)
    interrupted = False
    previous = stop_on_sigterm()
    try:
        if images:
            job.run_images(images)
        for src in sources:
            if src.kind != "image" and not job.stopped:
                job.run_video(src)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        outputs.finish()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(job.summary(interrupted, ready - start, time.perf_counter() - ready))
    if ignored:
        print(f"ignored {ignored} file{'s' * (ignored != 1)} in folders that are neither images nor videos")
    written = outputs.written
    if len(written) <= 10:
        for path in written:
            print(f"wrote {path}")
    elif written:
        print(f"wrote {len(written)} files under {args.out}")
    return 130 if interrupted else 1 if job.failed else 0
