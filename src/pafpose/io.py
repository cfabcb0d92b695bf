"""Reading what users point pafpose at: images of any depth, channel count or size, folders,
globs, videos, cameras and stream URLs; writing images atomically."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pafpose.errors import PafposeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                    ".mts", ".m2ts", ".3gp", ".ogv")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def to_bgr8(image: np.ndarray, color: str = "BGR") -> np.ndarray:
    """A contiguous HxWx3 uint8 BGR copy of ``image`` (gray, BGRA/RGBA, 16-bit or float in 0..1)."""
    import cv2

    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.size == 0 or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise PafposeError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise PafposeError(f"unsupported image dtype {img.dtype}: use uint8, uint16 or float in 0..1")
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[0], img.shape[1]), cv2.COLOR_GRAY2BGR)
    if color not in ("BGR", "RGB"):
        raise PafposeError(f"color must be 'BGR' or 'RGB', got {color!r}")
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR if color == "BGR" else cv2.COLOR_RGBA2BGR)
    return np.ascontiguousarray(img if color == "BGR" else img[:, :, ::-1])


def read_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as HxWx3 uint8 BGR, EXIF orientation applied.

    Gray and 16-bit files are converted, alpha is dropped; a file that can't be read is a
    one-line :class:`PafposeError`.
    """
    import cv2

    p = Path(path)
    if not p.is_file():
        raise PafposeError(f"{p}: no such file")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size == 0:
        raise PafposeError(f"{p}: empty file")
    try:  # COLOR applies the EXIF orientation (phone photos); ANYDEPTH keeps 16-bit precision
        img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as err:  # e.g. more pixels than OpenCV's decompression-bomb limit
        raise PafposeError(f"{p}: not a readable image ({str(err).strip().splitlines()[-1]})") from err
    if img is None:
        raise PafposeError(f"{p}: not a readable image")
    return to_bgr8(img)


def as_bgr(image: Any, color: str = "BGR") -> np.ndarray:
    """Path, numpy array (``color`` order) or PIL image -> HxWx3 uint8 BGR."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if type(image).__module__.startswith("PIL."):
        rgb = np.asarray(image.convert("RGB"))
        return to_bgr8(rgb, "RGB")
    return to_bgr8(image, color)


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
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


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


def expand_sources(specs: list[str], outputs: str | Path | None = None) -> tuple[list[Source], list[str], int]:
    """Resolve command-line sources: files, folders (recursive), globs, camera indices, URLs.

    Files found in folders or by globs are taken by extension (images and videos); a file
    named explicitly is taken whatever its name (an unreadable one fails when it is read).
    Drawn outputs of an earlier run (``*_rendered.*`` inside ``outputs``) are not inputs.
    A name that is a file or folder wins over a camera index.

    Returns:
        ``(sources, errors, ignored)``: sources in a stable order, without repeats; one
        message per source that names nothing; how many files folders held that are
        neither images nor videos.
    """
    sources: list[Source] = []
    errors: list[str] = []
    seen: set[str] = set()
    names: set[str] = set()
    ignored = 0

    def add(kind: str, location: str, name: str) -> None:
        key = location if kind in ("camera", "stream") else str(Path(location).resolve())
        if key in seen:
            return
        seen.add(key)
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}_{n}"
        names.add(unique)
        sources.append(Source(kind, location, unique))  # type: ignore[arg-type]

    out_dir = Path(outputs).resolve() if outputs is not None else None

    def ours(p: Path) -> bool:
        return out_dir is not None and p.stem.endswith("_rendered") and p.resolve().parent.is_relative_to(out_dir)

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
                kind = _kind(p)
                if kind is None or ours(p):
                    ignored += kind is None
                    continue
                found += 1
                add(kind, str(p), str(p.relative_to(root).with_suffix("")))
            if not found:
                errors.append(f"{spec}: no images or videos in this folder")
        elif Path(spec).is_file():
            add(_kind(Path(spec)) or "image", spec, Path(spec).stem)
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
