"""Video in and out: OpenCV captures that fail clearly and in bounded time, and writers
(PyAV) that leave a playable file behind however the run ends (finished, Ctrl-C, an error,
even ``kill -9``)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from pafpose.checks import check_number
from pafpose.errors import PafposeError

#: The lowest frame rate a drawn video can have: its rate is a fraction over at most 1001.
MIN_VIDEO_FPS = 0.001

def open_capture(source: int | str, timeout: float = 10.0) -> Any:
    """An opened ``cv2.VideoCapture`` for a file, a camera index or a stream URL.

    ``timeout`` (seconds) bounds opening a stream and waiting for each of its frames: a
    server that accepts the connection and then says nothing is an error, not a hang.
    """
    import cv2

    if isinstance(source, bool) or not isinstance(source, (int, str)):
        raise PafposeError(f"expected a video file, camera index or URL, got {type(source).__name__}")
    if isinstance(source, int) and source not in CAMERA_INDICES:
        raise PafposeError(f"camera {source}: no such camera index (use 0..{CAMERA_INDICES[-1]})")
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise PafposeError(f"{source}: no such video file")
    if isinstance(source, str) and "://" in source:
        ms = int(check_number("timeout", timeout, 0.1, 3600) * 1000)
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        if isinstance(source, int):
            raise PafposeError(f"camera {source}: cannot be opened (no such camera, or it is busy)")
        if "://" in source:
            raise PafposeError(f"{source}: cannot open this stream within {timeout:g} s (unreachable, not "
                               "answering, or not a video OpenCV can decode; --timeout sets the wait)")
        raise PafposeError(f"{source}: not a video OpenCV can decode")
    return cap


def capture_info(cap: Any) -> tuple[float, int | None]:
    """``(frames per second, frame count or None)``; cameras and streams report no count."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return (fps if 0 < fps < 1000 else 30.0), (count if count > 0 else None)


def frame_size(cap: Any) -> tuple[int, int] | None:
    """``(width, height)`` of a capture's frames, when it says (streams may not before a frame)."""
    import cv2

    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return size if min(size) > 0 else None


@dataclass(frozen=True)
class FrameRange:
    """Which frames of a sequence to run on: OpenPose's ``--frame_first``, ``--frame_step`` and
    ``--frame_last``, with their meaning (0-based indices, ``last`` included).

    Attributes:
        first: index of the first frame run on.
        step: every ``step``-th frame from ``first`` (``--frame_step 5``: 0, 5, 10...).
        last: index of the last frame that may be run on, or None for the end.
    """

    first: int = 0
    step: int = 1
    last: int | None = None

    def __post_init__(self) -> None:
        check_number("frame first", self.first, 0, None, integer=True)
        check_number("frame step", self.step, 1, None, integer=True)
        if self.last is not None:
            check_number("frame last", self.last, 0, None, integer=True)
            if self.last < self.first:
                raise PafposeError(f"the last frame ({self.last}) comes before the first ({self.first})")

    def __contains__(self, index: object) -> bool:
        return (isinstance(index, int) and index >= self.first and not self.done(index)
                and (index - self.first) % self.step == 0)

    def done(self, index: int) -> bool:
        """True when no frame from ``index`` on is run on (past ``last``)."""
        return self.last is not None and index > self.last

    def count(self, total: int) -> int:
        """How many of the frames ``0 .. total - 1`` are run on."""
        end = total if self.last is None else min(total, self.last + 1)
        return max(0, -(-(end - self.first) // self.step))

    @property
    def everything(self) -> bool:
        """Every frame (the defaults)."""
        return self.first == 0 and self.step == 1 and self.last is None


class TimedCapture:
    """A capture that remembers the time of the last frame read or grabbed past
    (:attr:`last_time_s`), which OpenCV forgets at the end of a file: how far a video was
    read, that tells a truncated file from a variable-rate one."""

    def __init__(self, cap: Any) -> None:
        self.cap = cap
        self.last_time_s: float | None = None

    def _note(self, ok: bool) -> None:
        import cv2

        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if ok else math.nan
        if math.isfinite(t) and (self.last_time_s is None or t > self.last_time_s):
            self.last_time_s = t

    def read(self) -> tuple[bool, Any]:
        ok, frame = self.cap.read()
        self._note(ok)
        return ok, frame

    def grab(self) -> bool:
        ok = bool(self.cap.grab())
        self._note(ok)
        return ok

    def get(self, prop: int) -> float:
        return float(self.cap.get(prop))

    def release(self) -> None:
        self.cap.release()


def ended_early(read: int, expected: int, count: int, fps: float, last_time_s: float | None) -> bool:
    """Whether a file that gave ``read`` of the ``expected`` frames asked was cut short.

    The container's ``count`` is often its duration times ``fps``, an estimate that a
    variable-rate video misses by far though it is whole: a file is only truncated when its
    frames stop well before that duration too (``last_time_s``: the time of the last frame
    read, None if unknown), not when they reach its end.
    """
    if read + max(2, expected // 100) >= expected:
        return False
    if last_time_s is None or not (count > 0 and 0 < fps < 1000):
        return True
    duration = count / fps
    return last_time_s < duration - max(1.0, 3.0 / fps, 0.01 * duration)


CAMERA_INDICES = range(100)  # OpenCV reads index // 100 as a capture API, and a negative index crashes it


def read_frames(cap: Any, frames: FrameRange | None = None) -> Iterator[tuple[int, np.ndarray, float | None]]:
    """``(index, frame, time in seconds)`` for each frame of ``cap`` that ``frames`` selects
    (the others are read past, never converted). The time is the stream's own
    (``CAP_PROP_POS_MSEC``: a dropped or variable-rate frame shows as a longer step), None where
    it gives none that moves forward (a repeated or backwards time: the trackers take it as one
    frame on, and a later time that then collides with it as a glitch, never as a tiny step)."""
    import cv2

    selected = frames or FrameRange()
    last = -math.inf
    index = 0
    while not selected.done(index):
        if index in selected:
            ok, frame = cap.read()
            if not ok:
                return
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            fresh = math.isfinite(t) and t > last
            last = t if fresh else last
            yield index, frame, (t if fresh else None)
        elif not cap.grab():
            return
        index += 1


def _letterbox(frame: np.ndarray, w: int, h: int) -> np.ndarray:
    """``frame`` fitted into ``w`` x ``h`` keeping its aspect ratio, centred on black."""
    import cv2

    fh, fw = frame.shape[:2]
    f = min(w / fw, h / fh)
    nw, nh = max(1, min(w, round(fw * f))), max(1, min(h, round(fh * f)))
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


_CONTAINERS = {  # suffix -> FFmpeg muxer
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


class VideoWriter:
    """Writes the frames of a video so that as much as possible survives however the run ends.

    The frames go to ``NAME.partial.mp4`` beside ``path``, renamed to ``path`` when
    :meth:`close` finishes it (the context manager calls it whatever happened: Ctrl-C gives
    a complete, shorter video). MP4s are *fragmented* (H.264 with a key frame and a fragment
    every second, packets flushed as they are made), so even after ``kill -9``, the OOM
    killer or a power cut the partial file plays up to its last second. Write errors (a
    full disk) are raised as ``OSError`` naming the video, never swallowed as OpenCV's
    writer does. Written with PyAV (FFmpeg). The size comes from the first frame; a later
    frame of another size is fitted in with black borders, never stretched (``resized``
    counts them).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _CONTAINERS:
            raise PafposeError(f"{self.path}: cannot write this kind of video; use "
                               + ", ".join(_CONTAINERS))
        self.fps = float(fps) if MIN_VIDEO_FPS <= fps < 1000 else 30.0  # a source's unusable rate: 30
        self.partial = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
        self.frames = 0
        self.resized = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the first frame
        self._container: Any = None
        self._stream: Any = None
        self._failed = False

    def _open(self, w: int, h: int) -> None:
        import av

        fmt = _CONTAINERS[self.path.suffix.lower()]
        options = {"flush_packets": "1"}
        if fmt in ("mp4", "mov"):
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rate = Fraction(self.fps).limit_denominator(1001)
        container = av.open(str(self.partial), "w", format=fmt, options=options)
        try:
            if "libx264" in av.codecs_available:
                stream = container.add_stream("libx264", rate=rate, options={
                    "preset": "ultrafast", "tune": "zerolatency", "crf": "23", "g": str(max(1, round(self.fps)))})
            else:  # an FFmpeg without x264: MPEG-4 part 2, as OpenCV's mp4v
                stream = container.add_stream("mpeg4", rate=rate, options={"g": str(max(1, round(self.fps)))})
            stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"  # 4:2:0 needs even sides
        except BaseException:
            container.close()
            self.partial.unlink(missing_ok=True)
            raise
        self._container, self._stream = container, stream

    def _failure(self, err: BaseException) -> OSError:
        """A write error as an OSError that names the video and says what was kept."""
        self._failed = True
        errno = getattr(err, "errno", None)
        why = getattr(err, "strerror", None) or str(err)
        return OSError(errno, f"{why} (writing the video failed; its frames so far are in {self.partial.name})",
                       str(self.path))

    def write(self, frame: np.ndarray) -> None:
        import av

        h, w = frame.shape[:2]
        if self.size is None:
            try:
                self._open(w, h)
            except OSError as err:
                raise self._failure(err) from err
            except av.FFmpegError as err:
                raise PafposeError(f"{self.path}: FFmpeg cannot write this video ({err})") from err
            self.size = (w, h)
        if (w, h) != self.size:
            frame = _letterbox(frame, *self.size)
            self.resized += 1
        sw, sh = self._stream.width, self._stream.height
        if frame.shape[:2] != (sh, sw):  # odd sides: one black row or column
            frame = np.pad(frame, ((0, sh - frame.shape[0]), (0, sw - frame.shape[1]), (0, 0)))
        try:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                                                         format="bgr24")):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as err:
            raise self._failure(err) from err
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was written or writing
        failed (then the partial file keeps what was written)."""
        container, self._container = self._container, None
        if container is None:
            return None
        if self._failed:
            with contextlib.suppress(Exception):
                container.close()
            return None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
            container.close()
        except Exception as err:
            with contextlib.suppress(Exception):
                container.close()
            raise self._failure(err) from err
        os.replace(self.partial, self.path)
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None and issubclass(exc_type, OSError):
            self._failed = True  # the partial file is what there is
        self.close()
