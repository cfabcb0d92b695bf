"""Resolving what users point pafpose at (files, folders, globs, videos, cameras and stream
URLs), checking output paths before the work that fills them, and writing outputs
atomically. Image files are read by :mod:`pafpose.images`
(re-exported here: ``read_image``, ``as_bgr``, ``to_bgr8``, and ``IMAGE_EXTENSIONS``, what
folders and globs take as images)."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pafpose.errors import PafposeError
from pafpose.images import IMAGE_EXTENSIONS, as_bgr, read_image, to_bgr8

__all__ = ["Source", "UniqueNames", "as_bgr", "atomic_output", "check_output_dir", "check_output_file",
           "expand_sources", "read_image", "to_bgr8", "write_bytes_atomic", "write_image_atomic"]

# IMAGE_EXTENSIONS is pafpose.images's (every format the reader takes, by extension).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".mts", ".m2ts", ".3gp", ".ogv", ".vob", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc",
                    ".mjpeg", ".mjpg", ".mxf", ".asf", ".divx", ".dv", ".ivf", ".nut")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(spec: str) -> bool:
    """Whether ``spec`` is a stream URL (http, https, rtsp, ...) rather than a file."""
    return bool(_URL.match(spec))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_output(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it to ``path``.

    Readers never see a half-written file, and a failure leaves no temporary file behind.
    The temporary file keeps ``path``'s suffix (writers choose formats by it); the result
    gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.part.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:  # a full disk names the output the user asked for, not our temporary file
        if err.filename in (None, "", tmp):
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """Make folder ``path`` (and its parents) and check that files can be created in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PafposeError(f"{what} {p}: is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pafpose-write-check.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PafposeError(f"{what} {p}: can't write there ({err.strerror or err})") from None
    return p


def check_output_file(path: str | Path, what: str) -> Path:
    """Check that file ``path`` can be written (atomically, beside itself): not a folder, and
    its folder exists or can be made and is writable."""
    p = Path(path)
    if p.is_dir():
        raise PafposeError(f"{what} {p}: is a folder; name a file")
    check_output_dir(p.parent, what + " " + str(p) + ": folder")
    return p


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    """:func:`atomic_output` for bytes."""
    return atomic_output(path, lambda tmp: Path(tmp).write_bytes(data))


def write_image_atomic(image: np.ndarray, path: str | Path) -> Path:
    """Encode ``image`` (BGR) by ``path``'s suffix and write it atomically."""
    import cv2

    path = Path(path)
    try:
        ok, buf = cv2.imencode(path.suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise PafposeError(f"{path}: OpenCV cannot encode {path.suffix!r} images")
    return write_bytes_atomic(buf.tobytes(), path)


class UniqueNames:
    """Output names that never collide: ``name``, else ``name_2``, ``name_3``..."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, name: str) -> str:
        out, n = name, 1
        while out in self._taken:
            n += 1
            out = f"{name}_{n}"
        self._taken.add(out)
        return out


@dataclass(frozen=True)
class Source:
    """One thing to run on.

    Attributes:
        kind: ``"image"``, ``"video"`` (a file), ``"camera"`` (an index) or ``"stream"`` (a URL).
        location: the file path, the camera index or the URL.
        name: output name without suffix, relative to the output folder (``"sub/photo"``):
            a folder's files keep their path below it, so equal file names never collide.
    """

    kind: Literal["image", "video", "camera", "stream"]
    location: str
    name: str

    def capture_arg(self) -> int | str:
        """What ``cv2.VideoCapture`` takes for this source."""
        return int(self.location) if self.kind == "camera" else self.location


def _kind(path: Path) -> Literal["image", "video"] | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_EXTENSIONS else None


def _sniff(path: Path) -> Literal["image", "video"]:
    """What a file named directly holds, by content: an image when the reader knows its header
    (or can't tell: its read then says why), a video when OpenCV can read a frame of it."""
    import cv2

    from pafpose.images import ImageError, probe

    try:
        with path.open("rb") as f:
            head = f.read(1 << 20)
        probe(head)
        return "image"
    except ImageError as err:
        if err.problem != "unsupported":
            return "image"
    except OSError:
        return "image"
    cap = cv2.VideoCapture(str(path))
    try:
        return "video" if cap.isOpened() and cap.read()[0] else "image"
    finally:
        cap.release()


#: How the files pafpose writes end (the stem, after ``NAME``; ``.partial`` removed): a drawn
#: picture or video, ControlNet's files, heatmaps, OpenPose JSON, PoseTrack files.
OUTPUT_STEM_ENDINGS = ("_rendered", "_controlnet", "_pose_heatmaps", "_keypoints", "_posetrack")

#: The run-wide files pafpose writes (``--json coco``).
OUTPUT_NAMES = ("coco_results.json", "coco_image_ids.json")


def _is_output_name(p: Path) -> bool:
    stem = p.stem.removesuffix(".partial")  # a video still being written, or left by a killed run
    return stem.endswith(OUTPUT_STEM_ENDINGS) or p.name in OUTPUT_NAMES


def expand_sources(specs: list[str], outputs: str | Path | Sequence[str | Path] | None = None,
                   ) -> tuple[list[Source], list[str], int]:
    """Resolve command-line sources: files, folders (recursive), globs, camera indices, URLs.

    Files found in folders or by globs are taken by extension (images and videos); a file
    named explicitly is taken whatever its name, as what its content is (a raw ``.h264``
    stream is a video; an unreadable file fails when it is read).
    ``outputs`` are the run's output folders (and files, such as ``--write-video``'s): what
    an earlier run wrote there is not an input, so running twice reads the same files. An
    output folder below a folder being searched is skipped whole; in one that is not (the
    source folder itself), files named as pafpose names its outputs are (``NAME_rendered.*``,
    ``NAME_controlnet.*``, ``NAME_pose_heatmaps.*``...: :data:`OUTPUT_STEM_ENDINGS`).
    A name that is a file or folder wins over a camera index.

    Returns:
        ``(sources, errors, ignored)``: sources in a stable order, without repeats; one
        message per source that names nothing; how many files folders held that are
        neither images nor videos.
    """
    sources: list[Source] = []
    errors: list[str] = []
    seen: set[str] = set()
    names = UniqueNames()
    ignored = 0

    def add(kind: str, location: str, name: str) -> None:
        key = location if kind in ("camera", "stream") else str(Path(location).resolve())
        if key in seen:
            return
        seen.add(key)
        sources.append(Source(kind, location, names.take(name)))  # type: ignore[arg-type]

    if outputs is None:
        outputs = []
    elif isinstance(outputs, (str, os.PathLike)):
        outputs = [outputs]
    written = {Path(o).resolve() for o in outputs}

    def ours(p: Path, root: Path | None = None) -> bool:
        """Whether ``p`` is something this run writes (or a run like it wrote), searching ``root``."""
        p = p.resolve()
        for o in written:
            if p == o:
                return True
            if p.is_relative_to(o) and ((root is not None and o != root and o.is_relative_to(root))
                                        or _is_output_name(p)):
                return True
        return False

    for spec in specs:
        if spec.isdigit() and not Path(spec).exists():
            add("camera", spec, f"camera{spec}")
        elif _URL.match(spec):
            host, _, path = spec.split("://", 1)[1].split("?")[0].rstrip("/").partition("/")
            stem = Path(path).stem if path else host  # the stream's file name, else its host
            add("stream", spec, re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[-60:] or "stream")
        elif Path(spec).is_dir():
            root = Path(spec)
            found = 0
            for p in sorted(root.rglob("*")):
                if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
                    continue
                if ours(p, root.resolve()):
                    continue
                kind = _kind(p)
                if kind is None:
                    ignored += 1
                    continue
                found += 1
                add(kind, str(p), str(p.relative_to(root).with_suffix("")))
            if not found:
                errors.append(f"{spec}: no images or videos in this folder")
        elif Path(spec).is_file():
            add(_kind(Path(spec)) or _sniff(Path(spec)), spec, Path(spec).stem)
        elif glob.has_magic(spec):
            matches = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
            matches = [p for p in matches if p.is_file() and _kind(p) and not ours(p)]
            if not matches:
                errors.append(f"{spec}: no image or video matches this pattern")
            for p in matches:
                add(_kind(p) or "image", str(p), p.stem)
        else:
            errors.append(f"{spec}: no such file or folder")
    return sources, errors, ignored
