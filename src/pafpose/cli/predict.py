"""pafpose predict SOURCE...: poses from images, folders, globs, videos, cameras and stream URLs.

SOURCE is an image or video file, a folder (searched recursively for images and videos), a
glob pattern ('photos/*.jpg'), a camera index (0) or an http(s)/rtsp stream URL. Under
--out it writes, per image or frame, OpenPose JSON (NAME_keypoints.json; video frames
NAME_000000000012_keypoints.json), or with --json coco one COCO results file
(coco_results.json, with coco_image_ids.json naming each id's image); with --save-images
the drawn pictures (NAME_rendered.png, or .jpg for JPEG input), with --save-video the drawn
video of each video source (NAME_rendered.mp4); with --render controlnet ControlNet's
OpenPose pose image and pose JSON of each image and frame (NAME_controlnet.png,
NAME_controlnet.json). Every file is written atomically. What a run writes is never the
next run's input: an --out inside a source folder is skipped, and so are pafpose's own
files (NAME_rendered.*, NAME_controlnet.*, NAME_pose_heatmaps.*...) in an --out that is one.

OpenPose's options work with OpenPose's meaning (--number-people-max, --keypoint-scale,
--frame-first/-step/-last, --net-resolution, --part-candidates, --write-heatmaps,
--write-video, --keypoints body25...), and so do OpenPose's own spellings (--write_json DIR,
--image_dir DIR, --number_people_max N...): see docs/openpose.md, "Switching from OpenPose".

A file that can't be read is reported in one line and skipped; the exit code is 1 when
anything failed, 130 after Ctrl-C (the frames done are kept and the video stays playable),
2 for a mistake found before any work (a --frame-first past the end of every folder given
is one: nothing would be processed).
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
from typing import TYPE_CHECKING, Any

import numpy as np

from pafpose.checks import number
from pafpose.cli import openpose_flags
from pafpose.cli.options import add_model_arguments, backend_line, make_estimator, stop_on_sigterm, warn
from pafpose.errors import PafposeError
from pafpose.io import Source
from pafpose.pose import Poses

if TYPE_CHECKING:
    from pafpose.outputs import OutputOptions, Writer


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="poses from images, folders, videos, cameras or streams",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image, folder, glob, video, camera index or URL")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: pafpose-out)")
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
    p.add_argument("--timeout", type=number(0.1, 3600), default=10.0,
                   help="seconds to wait for a stream URL to open and for each of its frames (default: %(default)s)")
    add_model_arguments(p)
    p.add_argument("--batch-size", type=number(1, 256, integer=True), default=1,
                   help="images or frames per network call (1..256; images of one input size go together, so each "
                   "finds what it finds alone)")
    add_output_arguments(p, json_default=None)
    p.set_defaults(func=run)


def add_output_arguments(p: argparse.ArgumentParser, json_default: str | None, shown: str = "openpose") -> None:
    """What a run writes (:class:`~pafpose.outputs.OutputOptions`): the same options in
    ``pafpose predict`` and ``pafpose batch``, OpenPose's and ControlNet's included."""
    from pafpose.outputs import JSON_FORMATS

    p.add_argument("--json", choices=JSON_FORMATS, default=json_default,
                   help=f"keypoint output format (default: {json_default or shown}): openpose, one file per "
                   "image or frame; coco, one results file; posetrack, one file per video or sequence")
    p.add_argument("--save-images", action="store_true", help="write the drawn images (and video frames)")
    p.add_argument("--save-video", action="store_true", help="write the drawn video of each video source")
    p.add_argument("--threshold", type=number(0, 1), default=0.1, help="keypoint score below which nothing is drawn")
    add_controlnet_arguments(p)
    openpose_flags.add_arguments(p)


def add_controlnet_arguments(p: argparse.ArgumentParser) -> None:
    """--render controlnet, its resolutions and its mode (pafpose.controlnet)."""
    from pafpose.controlnet import DEFAULT_MODE, DEFAULT_RESOLUTION, MODES, RESOLUTION_RANGE

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
    g.add_argument("--controlnet-mode", choices=tuple(MODES), default=None,
                   help=f"--render controlnet: which of ControlNet's OpenPose preprocessors draws the pose image "
                   f"(default {DEFAULT_MODE}, the body): openpose_hand adds the hands, openpose_face the face, "
                   "openpose_faceonly draws the face alone, openpose_full body, hands and face; the JSON then carries "
                   "the hands and faces too. People without hands or a face are drawn with what they have")


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


class Run:
    """One `pafpose predict` run: the loops over its sources, counts and failures."""

    def __init__(self, args: argparse.Namespace, est: Any, writer: Writer) -> None:
        self.args = args
        self.est = est
        self.writer = writer
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
        """Images, ``--batch-size`` at a time; each folder's images one sequence when tracked
        (``--track``, or PoseTrack files)."""
        from tqdm import tqdm

        from pafpose.loops import FolderSequences, predict_files

        tracked = FolderSequences(offline=not self.args.online)
        sequences = self.args.track or self.writer.options.json == "posetrack"
        names: dict[str, str] = {}  # folder -> its sequence's output name
        try:
            with tqdm(total=len(sources), unit="image", disable=len(sources) < 2) as bar:
                for src, file, found in predict_files(self.est, sources, self._read, self.args.batch_size,
                                                      self.writer.options.keep_fields):
                    bar.update()
                    if isinstance(found, PafposeError):
                        self.fail(str(found))
                        continue
                    self.images += 1
                    folder = str(Path(src.location).resolve().parent)
                    if folder not in names:
                        names[folder] = self.writer.sequence(Path(folder).name)
                    frame = (src, file.image, self.writer.unique(src.name), names[folder])
                    ready = tracked.push(folder, found, frame, file.image) if sequences else [(frame, found)]
                    for done, people in ready:
                        if not self._emit_image(*done, people):
                            return
        finally:
            for done, people in tracked.flush():  # frames an offline tracker still held: written, not lost
                self._emit_image(*done, people)

    def _read(self, src: Source) -> Any:
        """An image file, decoded; one whose outputs can't be written (ControlNet's canvas too
        large) fails here, alone, before the network runs on it."""
        from pafpose.images import open_image

        file = open_image(src.location)
        self.writer.check(file.width, file.height, src.location)
        return file

    def _emit_image(self, src: Source, image: np.ndarray, name: str, sequence: str, people: Poses) -> bool:
        """Write one image's outputs; False when the user stops."""
        from pafpose.outputs import picture_suffix

        written = self.writer.image(people, image, name, location=src.location, sequence=sequence,
                                    suffix=picture_suffix(src.location))
        self.people += len(written.people)
        return self._keep_showing(src.name, written.drawn)

    def run_video(self, src: Source) -> None:
        from tqdm import tqdm

        from pafpose.loops import run_video

        if src.kind == "stream":
            warn(f"opening {src.location} (waiting up to {self.args.timeout:g} s for it and for each frame)")
        bars: list[Any] = []  # the progress bar, once the video is open (nothing drawn while waiting for it)

        def opened(expected: int | None) -> None:
            bars.append(tqdm(total=expected, unit="frame", desc=src.name))

        def shown(index: int, frame: np.ndarray, written: Any) -> bool:
            bars[0].update()
            self.frames += 1  # counted as they are written: an interrupted run says what it did
            self.people += len(written.people)
            return self._keep_showing(src.name, written.drawn)

        try:
            done = run_video(self.est, src.capture_arg(), self.writer, self.writer.unique(src.name),
                             frames=self.args.frames, batch_size=self.args.batch_size, track=not self.args.no_track,
                             online=self.args.online, timeout=self.args.timeout,
                             keep_fields=self.writer.options.keep_fields, on_frame=shown, on_open=opened,
                             label=src.location)
        finally:
            for bar in bars:
                bar.close()
        if done.error is not None:
            self.fail(done.error)
        if done.notice is not None:
            warn(done.notice)

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


# ---------------------------------------------------------------------- OpenPose's options in a run
def _video_fps(options: OutputOptions, sources: Sequence[Source], timeout: float) -> float | None:
    """--write-video's frame rate: --write-video-fps, else the first video source's (OpenPose's rule)."""
    from pafpose.video import VideoWriter, capture_info, open_capture

    if options.write_video is None:
        return None
    VideoWriter(options.write_video, 30.0)  # checks the container before any work
    if options.write_video_fps is not None:
        return options.write_video_fps
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


def _check_openpose(options: OutputOptions, est: Any) -> None:
    """What the model must have for OpenPose's outputs (the heatmaps asked for: a background)."""
    from pafpose.openpose import heatmap_channels

    if options.heatmaps is not None:
        h = options.heatmaps
        heatmap_channels(est.spec, h.parts, h.background, h.pafs)


def _written(options: OutputOptions) -> list[Path]:
    """Where the run writes: an earlier run's files there are not inputs."""
    places = [options.out, options.json_folder, options.images_folder, options.write_video]
    return [p for p in [*places, None if options.heatmaps is None else options.heatmaps.folder] if p is not None]


def _longest_folder(images: list[Source]) -> int:
    """How many images the fullest folder holds (OpenPose's frames of an --image_dir)."""
    from collections import Counter

    return max(Counter(str(Path(s.location).resolve().parent) for s in images).values())


def run(args: argparse.Namespace) -> int:
    from pafpose.io import expand_sources
    from pafpose.loops import select_images
    from pafpose.outputs import Writer

    for flag in ("--track", "--online"):
        if args.no_track and getattr(args, flag[2:]):
            raise PafposeError(f"{flag} and --no-track contradict each other; give one")
    options = openpose_flags.resolve(args)
    if args.out.exists() and not args.out.is_dir():
        raise PafposeError(f"--out {args.out}: exists and is not a folder")
    if not args.sources:
        raise PafposeError("nothing to process: give a SOURCE (or OpenPose's --image_dir, --video, --camera)")
    sources, errors, ignored = expand_sources(args.sources, _written(options))
    for message in errors:
        warn(f"error: {message}")
    if not sources:
        raise PafposeError("nothing to process: no readable source among " + " ".join(args.sources))
    found = [s for s in sources if s.kind == "image"]
    images = select_images(found, lambda s: s.location, args.frames)
    if found and not images:
        message = (f"--frame-first {args.frames.first} is past the end: the longest folder has "
                   f"{_longest_folder(found)} images")
        if len(found) == len(sources):
            raise PafposeError("nothing to process: " + message)
        warn(f"no image: {message}")
    options = options.replace(write_video_fps=_video_fps(options, sources, args.timeout))
    start = time.perf_counter()
    est = make_estimator(args)
    print(backend_line(args, est), flush=True)
    if options.controlnet is not None:  # people found as ControlNet's preprocessor finds them
        from pafpose.controlnet import detector

        est = detector(est, options.controlnet[0])
    _check_openpose(options, est)
    ready = time.perf_counter()
    writer = Writer(options, est.spec, est.decoder.config, [s.location for s in images], warn=warn,
                    guard=deferred_interrupts, draw=args.show)
    job = Run(args, est, writer)
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
        writer.finish()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(job.summary(interrupted, ready - start, time.perf_counter() - ready))
    if ignored:
        print(f"ignored {ignored} file{'s' * (ignored != 1)} in folders that are neither images nor videos")
    written = writer.written
    if len(written) <= 10:
        for path in written:
            print(f"wrote {path}")
    elif written:
        print(f"wrote {len(written)} files under {args.out}")
    return 130 if interrupted else 1 if job.failed else 0
