"""Video in and out with OpenCV: captures that fail clearly, and writers that leave a
playable file behind however the run ends (finished, Ctrl-C or an error)."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from pafpose.errors import PafposeError


def open_capture(source: int | str) -> Any:
    """An opened ``cv2.VideoCapture`` for a file, a camera index or a stream URL."""
    import cv2

    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise PafposeError(f"{source}: no such video file")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        if isinstance(source, int):
            raise PafposeError(f"camera {source}: cannot be opened (no such camera, or it is busy)")
        if "://" in source:
            raise PafposeError(f"{source}: cannot open this stream (unreachable, or not a video OpenCV can decode)")
        raise PafposeError(f"{source}: not a video OpenCV can decode")
    return cap


def capture_info(cap: Any) -> tuple[float, int | None]:
    """``(frames per second, frame count or None)``; cameras and streams report no count."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return (fps if 0 < fps < 1000 else 30.0), (count if count > 0 else None)


class VideoWriter:
    """Writes frames to ``path`` through a hidden temporary file renamed on :meth:`close`.

    Closing finalises the container (an MP4's index is written at the end), so a run
    interrupted with Ctrl-C still leaves a valid, shorter video; ``close`` is called by the
    context manager whatever happened. The size comes from the first frame.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.frames = 0
        self._writer: Any = None

    def write(self, frame: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov")
                                              else "MJPG"))
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (w, h))
            if not writer.isOpened():
                writer.release()
                raise PafposeError(f"{self.path}: OpenCV cannot write this kind of video; use .mp4 or .avi")
            self._writer = writer
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        if not self.tmp.exists():
            return None
        os.replace(self.tmp, self.path)
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
