"""The loops over sources that ``pafpose predict`` and ``pafpose batch`` share: image files
through the Estimator, and one video's frames through the Estimator, the tracker and a
:class:`~pafpose.outputs.Writer`, with the checks a user is owed (a file that can't be read,
a video that ends early).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pafpose.errors import PafposeError

if TYPE_CHECKING:
    from pafpose.outputs import Writer, Written
    from pafpose.pose import Poses
    from pafpose.predict import Estimator
    from pafpose.tracking import SequenceTracker, TrackerConfig
    from pafpose.video import FrameRange

T = TypeVar("T")


def predict_files(est: Estimator, items: Sequence[T], read: Callable[[T], Any], batch_size: int = 1,
                  keep_fields: bool = False) -> Iterator[tuple[T, Any, Poses | PafposeError]]:
    """``(item, decoded file, people)`` for each item in order, or ``(item, None, error)`` for one
    that can't be read (``read``: an item -> :class:`~pafpose.images.Decoded`).

    ``batch_size`` images at a time go through the network in calls of equal input sizes, so
    each image gets exactly the padding it gets alone: its people do not depend on the company
    it has in the batch. An image the network refuses is reported alone; the others go on.
    """
    sized = est.prepare is None or hasattr(est.prepare, "output_shape")  # else a hook's images go alone
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        done: dict[int, tuple[Any, Poses | PafposeError]] = {}
        groups: dict[Any, list[tuple[int, Any]]] = {}
        for i, item in enumerate(chunk):
            try:
                file = read(item)
            except PafposeError as err:
                done[i] = (None, err)
                continue
            key = est.input_sizes(file.image.shape) if sized else i
            groups.setdefault(key, []).append((i, file))
        for group in groups.values():
            for (i, file), found in zip(group, _predict(est, [f for _, f in group], keep_fields), strict=True):
                done[i] = (file, found)
        for i, item in enumerate(chunk):
            yield item, *done[i]


def _predict(est: Estimator, files: list[Any], keep_fields: bool) -> list[Poses | PafposeError]:
    try:
        return list(est.predict_batch(files, keep_fields=keep_fields))
    except PafposeError:  # one odd image: find which, the others still get people
        out: list[Poses | PafposeError] = []
        for file in files:
            try:
                out.append(est.predict_batch([file], keep_fields=keep_fields)[0])
            except PafposeError as err:
                out.append(err)
        return out


@dataclass
class VideoRun:
    """What :func:`run_video` did with one video.

    Attributes:
        frames: frames with people written.
        people: people written over them.
        expected: the frames the container says it has among those asked (None: unknown, a
            stream or camera).
        error: why the video failed or stopped early (can't be opened, no frame decoded,
            truncated: the frames read are kept), else None.
        notice: something worth saying that is no failure (no frame in the range asked).
        stopped: ``on_frame`` asked to stop.
    """

    frames: int = 0
    people: int = 0
    expected: int | None = None
    error: str | None = None
    notice: str | None = None
    stopped: bool = False


def is_recording(location: int | str) -> bool:
    """A video file (its later frames are known: tracked offline, checked for truncation),
    not a camera index or a stream URL."""
    from pafpose.tracking import is_recording as recording

    return recording(location)


def run_video(est: Estimator, location: int | str, writer: Writer, name: str, *, frames: FrameRange | None = None,
              batch_size: int = 1, track: bool = True, online: bool = False, timeout: float = 10.0,
              keep_fields: bool = False, on_frame: Callable[[int, np.ndarray, Written], bool] | None = None,
              on_open: Callable[[int | None], None] | None = None, label: str | None = None) -> VideoRun:
    """One video file, camera or stream URL, frame by frame, into ``writer`` under ``name``.

    People are tracked (``track``): offline, without lag, for a video file, unless ``online``;
    as they come for a camera or stream. ``frames`` picks the frames (OpenPose's first, step,
    last). ``on_open(expected frames)`` is called once the video is open, ``on_frame(index,
    frame, written)`` after each frame's outputs (False stops the video); messages name the
    video ``label`` (default: ``location``). A video that ends well before the frame count and the duration its
    container states is an error (truncated or damaged), its frames read kept; a variable-rate one whose frames reach
    that duration is not (its count was an estimate).
    """
    from pafpose.video import FrameRange, TimedCapture, capture_info, ended_early, frame_size, open_capture

    selected = FrameRange() if frames is None else frames
    run = VideoRun()
    try:
        cap = TimedCapture(open_capture(location, timeout=timeout))
    except PafposeError as err:
        run.error = str(err)
        return run
    fps, count = capture_info(cap)
    label = str(location) if label is None else label
    size = frame_size(cap)
    if size is not None:  # outputs that can't be written (ControlNet's canvas too large): this video fails alone
        try:
            writer.check(*size, label)
        except PafposeError as err:
            cap.release()
            run.error = str(err)
            return run
    run.expected = selected.count(count) if count else None
    if on_open is not None:
        on_open(run.expected)
    sequence = writer.sequence(name)
    video = writer.open_video(name, fps)
    recording = is_recording(location)
    try:
        for index, frame, people in est.stream(cap, batch_size=batch_size, timeout=timeout, track=track,
                                               offline=recording and not online, frames=selected,
                                               keep_fields=keep_fields):
            from pafpose.outputs import frame_name

            written = writer.image(people, frame, writer.unique(frame_name(name, index)), sequence=sequence,
                                   video=video)
            run.frames += 1
            run.people += len(written.people)
            if on_frame is not None and not on_frame(index, frame, written):
                run.stopped = True
                break
    finally:
        cap.release()
        writer.end_sequence(sequence)
        writer.close_video(video, label)
    expected = run.expected
    if run.frames == 0 and expected != 0:
        run.error = f"{label}: no frame could be decoded"
    elif (expected and count and recording and not run.stopped
          and ended_early(run.frames, expected, count, fps, cap.last_time_s)):
        asked = "its" if selected.everything else f"the {expected} frames asked of its"
        run.error = (f"{label}: the video ended after {run.frames} of {asked} {count} frames (truncated or "
                     "damaged); the frames read are kept")
    elif expected == 0 and not selected.everything:
        run.notice = f"{label}: none of its {count} frames is in --frame-first/--frame-step/--frame-last"
    return run


def select_images(items: Sequence[T], location: Callable[[T], str], frames: FrameRange) -> list[T]:
    """OpenPose's ``--frame_first/step/last`` on images: each folder's images, in the order
    given (name order), are its frames (OpenPose's ``--image_dir``)."""
    from pathlib import Path

    if frames.everything:
        return list(items)
    seen: dict[Path, int] = {}
    out = []
    for item in items:
        folder = Path(location(item)).resolve().parent
        index = seen[folder] = seen.get(folder, -1) + 1
        if index in frames:
            out.append(item)
    return out


class FolderSequences:
    """Each folder's images, in the order given, as the frames of one tracked sequence
    (PoseTrack's layout, most frame dumps): the tracking protocol (push, flush) keyed by folder.
    A folder's images come together; when another folder starts, the frames held for the
    others are given out."""

    def __init__(self, offline: bool = True, config: TrackerConfig | None = None) -> None:
        self.offline = offline
        self.config = config
        self._trackers: dict[str, SequenceTracker] = {}

    def push(self, folder: str, people: Poses, payload: Any = None, image: Any = None) -> list[tuple[Any, Poses]]:
        """The frames now final (this folder's, and any others' still held), in order (``image``:
        the frame the people were found in, for what they wear)."""
        from pafpose.tracking import make_tracker

        ready = []
        for other in [f for f in self._trackers if f != folder]:
            ready += self._trackers[other].flush()
        tracker = self._trackers.setdefault(folder, make_tracker(self.config, self.offline))
        return ready + tracker.push(people, payload, None, image)

    def flush(self) -> list[tuple[Any, Poses]]:
        """Every frame still held (at the end, or when the run stops: nothing is lost)."""
        return [item for tracker in self._trackers.values() for item in tracker.flush()]
