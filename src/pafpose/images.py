"""One image reader for every command, the API and the server.

Reading is bounded before anything is decoded: the format and size come from the file's
header (Pillow opens lazily; TIFFs Pillow can't identify, such as float ones, are read from
their directory), so a small file that declares gigapixels is refused or read reduced
without allocating it. JPEGs (and MPO, what many cameras write) decode directly at 1/2, 1/4
or 1/8 size when that is what fits the pixel budget or the side asked for; other formats
above the budget are refused in one line. OpenCV decodes the pixels (EXIF orientation
applied, any depth), and :func:`to_bgr8` turns any depth and channel count into 8-bit BGR.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from pafpose.errors import PafposeError

#: Largest ``width * height`` decoded (after a JPEG's reduction): about 300 MB as 8-bit BGR.
MAX_PIXELS = 100_000_000

_OPENCV_MAX_PIXELS = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))

#: What pafpose reads, by Pillow's format names (OpenCV decodes all of them).
FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM", "JPEG2000", "AVIF")

#: The file extensions (lower case) each format is known by: the extensions Pillow registers
#: for it, written out so that what counts as an image does not vary with Pillow's plug-ins,
#: and ``.dib``, a BMP as Windows and OpenCV write it (Pillow registers ``.dib`` for its
#: headerless DIB, which is not read). The reader goes by content, not by name.
FORMAT_EXTENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "MPO": (".mpo",),
    "PNG": (".png", ".apng"),
    "WEBP": (".webp",),
    "BMP": (".bmp", ".dib"),
    "TIFF": (".tif", ".tiff"),
    "GIF": (".gif",),
    "PPM": (".ppm", ".pgm", ".pbm", ".pnm", ".pfm"),
    "JPEG2000": (".jp2", ".j2k", ".jpx", ".jpf", ".j2c", ".jpc"),
    "AVIF": (".avif", ".avifs"),
})

#: Every image extension, lower case: what folders and globs take as images (compare
#: ``suffix.lower()``); a file named explicitly is read whatever its name.
IMAGE_EXTENSIONS = tuple(ext for fmt in FORMATS for ext in FORMAT_EXTENSIONS[fmt])

#: The extensions of JPEG files (MPO included): the drawn copy of one is a ``.jpg``.
JPEG_EXTENSIONS = FORMAT_EXTENSIONS["JPEG"] + FORMAT_EXTENSIONS["MPO"]

ImageProblem = Literal["missing", "unreadable", "empty", "too-large", "unsupported", "corrupt"]


class ImageError(PafposeError):
    """An image that can't be read; ``problem`` says which kind (the server maps it to a status)."""

    def __init__(self, problem: ImageProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def to_bgr8(image: np.ndarray, color: str = "BGR") -> np.ndarray:
    """A contiguous HxWx3 uint8 BGR copy of ``image``.

    Accepts gray, BGR(A)/RGB(A), 8- and 16-bit, other integer arrays holding 0..255 or
    0..65535, booleans, and floats: in 0..1, or in 0..255 when any value exceeds 2 (an image
    in 0..255 whose maximum is 2 is black either way). NaNs count as 0.
    """
    import cv2

    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.size == 0 or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise PafposeError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {img.shape}")
    if color not in ("BGR", "RGB"):
        raise PafposeError(f"color must be 'BGR' or 'RGB', got {color!r}")
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype.kind in "iu" and img.dtype != np.uint8:
        lo, hi = int(img.min()), int(img.max())
        if lo < 0 or hi > 65535:
            raise PafposeError(f"integer image values must lie in 0..255 or 0..65535, got {lo}..{hi}")
        sixteen = img.dtype == np.uint16 or hi > 255  # uint16 is 16-bit data whatever its values
        img = (img.astype(np.uint16) >> 8).astype(np.uint8) if sixteen else img.astype(np.uint8)
    elif img.dtype.kind == "f":
        img = np.nan_to_num(img.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
        top = 255.0 if img.size and float(img.max()) > 2.0 else 1.0
        img = (np.clip(img, 0.0, top) * (255.0 / top) + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise PafposeError(f"unsupported image dtype {img.dtype}: use uint8, uint16 or float")
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(img.reshape(img.shape[0], img.shape[1])), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGRA2BGR if color == "BGR" else cv2.COLOR_RGBA2BGR)
    return np.ascontiguousarray(img if color == "BGR" else img[:, :, ::-1])


def _pil_to_bgr8(image: Any) -> np.ndarray:
    """PIL image -> BGR, keeping 16-bit and float modes' range (``convert("RGB")`` clips them)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image)
        if image.mode == "I" and arr.size and int(arr.max()) > 255:  # 32-bit integer mode: 16-bit data
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return to_bgr8(arr)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    return to_bgr8(np.asarray(image), "RGB")


def as_bgr(image: Any, color: str = "BGR") -> np.ndarray:
    """Path, numpy array (``color`` order) or PIL image -> HxWx3 uint8 BGR."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if type(image).__module__.startswith("PIL."):
        return _pil_to_bgr8(image)
    if not isinstance(image, np.ndarray) and not hasattr(image, "__array__"):
        raise PafposeError(f"expected an image (path, numpy array or PIL image), got {type(image).__name__}")
    return to_bgr8(image, color)


# ---------------------------------------------------------------------------- the header
_PIL_LOCK = threading.Lock()


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a TIFF's first directory (Pillow refuses float and odd TIFFs)."""
    order = {b"II": "little", b"MM": "big"}.get(data[:2])
    if order is None or int.from_bytes(data[2:4], order) != 42:  # BigTIFF (43) is left to OpenCV's refusal
        return None
    at = int.from_bytes(data[4:8], order)
    if at + 2 > len(data):
        return None
    count = int.from_bytes(data[at : at + 2], order)
    sizes: dict[int, int] = {}
    for i in range(min(count, 4096)):
        e = at + 2 + 12 * i
        if e + 12 > len(data):
            break
        tag, typ = int.from_bytes(data[e : e + 2], order), int.from_bytes(data[e + 2 : e + 4], order)
        if tag in (256, 257):
            sizes[tag] = int.from_bytes(data[e + 8 : e + (10 if typ == 3 else 12)], order)
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def probe(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header alone (no pixel is decoded).

    Raises:
        ImageError: ``unsupported`` (not an image pafpose reads) or ``corrupt`` (a header
            that can't be parsed or declares no pixels).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with _PIL_LOCK:  # our own pixel limit replaces Pillow's while the header is read
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(io.BytesIO(data)) as im:
                    fmt, (w, h) = str(im.format), im.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except UnidentifiedImageError as err:
        size = _tiff_size(data)
        if size is None:
            raise ImageError("unsupported", f"not an image pafpose reads ({', '.join(FORMATS)})") from err
        fmt, (w, h) = "TIFF", size
    except Exception as err:  # a malformed header can raise anything in a format plug-in: the data is at fault
        raise ImageError("corrupt", f"corrupt image: its header can't be read ({type(err).__name__}: {err})") from err
    if fmt not in FORMATS:
        raise ImageError("unsupported", f"{fmt} images are not supported: use {', '.join(FORMATS)}")
    if w < 1 or h < 1:
        raise ImageError("corrupt", f"corrupt image: it declares a size of {w} x {h} pixels")
    return fmt, w, h


def _jpeg_complete(data: bytes) -> bool:
    """True when a JPEG's segments and scans run up to an end-of-image marker.

    OpenCV versions differ on truncated JPEGs (some return the image with a grey bottom),
    so truncation is checked on the structure: every segment is skipped by its length,
    every scan's entropy-coded data up to the next marker (``FF 00`` and restart markers
    belong to the data).
    """
    i, n = 2, len(data)  # after SOI
    while i + 2 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers and TEM carry no length
            i += 2
            continue
        if i + 4 > n:
            return False
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # start of scan: its entropy-coded data follows the header
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                return False
            i = found.start()
    return False


_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


# ---------------------------------------------------------------------------- decoding
@dataclass(frozen=True)
class Decoded:
    """A decoded image file.

    Attributes:
        image: HxWx3 uint8 BGR, possibly reduced (see ``scale``).
        width: the file's width after EXIF orientation, in pixels.
        height: its height.
        format: Pillow's format name (``"JPEG"``, ``"PNG"``...).
        source: the file's path, when read from one (:func:`open_image`).
    """

    image: np.ndarray
    width: int
    height: int
    format: str
    source: str | None = None

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: pixels of ``image`` per original pixel (1, 1 unless reduced)."""
        return self.image.shape[1] / self.width, self.image.shape[0] / self.height


def _too_large(w: int, h: int, max_pixels: int, extra: str = "") -> ImageError:
    return ImageError("too-large", f"image too large: {w} x {h} = {w * h / 1e6:.1f} Mpixel, above the limit of "
                                   f"{max_pixels / 1e6:.1f} Mpixel{extra}")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Decoded:
    """Decode an image file's bytes, within a pixel budget.

    Args:
        data: the file's bytes.
        max_pixels: most pixels decoded. A larger JPEG decodes at 1/2, 1/4 or 1/8 size to fit;
            any other larger image is refused.
        max_side: if given, a longer side above it is shrunk (JPEGs decode directly at a
            reduced size when that still leaves at least ``max_side``).

    Raises:
        ImageError: empty data, not an image, too many pixels, corrupt or truncated data.
    """
    import cv2

    if not data:
        raise ImageError("empty", "empty image data")
    fmt, w, h = probe(data)
    if max_pixels > _OPENCV_MAX_PIXELS:  # OpenCV refuses more whatever we allow
        max_pixels, why = _OPENCV_MAX_PIXELS, " (OpenCV's decoder limit)"
    else:
        why = ""
    jpeg = fmt in ("JPEG", "MPO")
    reduction = 1
    if jpeg:
        if not _jpeg_complete(data):
            raise ImageError("corrupt", "corrupt image: the JPEG data is truncated (no end-of-image marker)")
        fits = [r for r in (1, 2, 4, 8) if (w // r) * (h // r) <= max_pixels]
        if not fits:
            raise _too_large(w, h, max_pixels, why + " even at 1/8 size")
        side = next((r for r in (8, 4, 2) if max_side and max(w, h) / r >= max_side), 1)
        reduction = max(fits[0], side)
    elif w * h > max_pixels:
        raise _too_large(w, h, max_pixels, why or " (only JPEGs are read reduced; shrink the file first)")
    flags = {1: cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, 2: cv2.IMREAD_REDUCED_COLOR_2,  # COLOR: EXIF orientation
             4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduction]
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        raise ImageError("corrupt", f"corrupt image: OpenCV can't decode it "
                                    f"({str(err).strip().splitlines()[-1]})") from err
    if (img is None or img.size == 0) and fmt == "TIFF":  # OpenCV's colour read of a 1-channel float TIFF
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # fails: read it as it is
    if img is None or img.size == 0:
        raise ImageError("corrupt", f"corrupt image: the {fmt} data can't be decoded (truncated or damaged)")
    try:
        img = to_bgr8(img)
    except PafposeError as err:
        raise ImageError("unsupported", f"unsupported image: {err}") from err
    ih, iw = img.shape[:2]
    if reduction == 1:
        width, height = iw, ih  # exact, after the EXIF orientation OpenCV applied
    else:  # the header's size, turned as OpenCV turned the pixels
        width, height = min(((w, h), (h, w)), key=lambda s: abs(s[0] / s[1] - iw / ih))
    if max_side is not None and max(ih, iw) > max_side:
        f = max_side / max(ih, iw)
        img = cv2.resize(img, (max(1, round(iw * f)), max(1, round(ih * f))), interpolation=cv2.INTER_AREA)
    return Decoded(img, width, height, fmt)


def read_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file; anything else (a FIFO, a device, a folder) or any OS
    error is that file's one-line :class:`ImageError`, never a hang or a traceback."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as err:
        raise ImageError("missing", f"{p}: no such file") from err
    except OSError as err:
        raise ImageError("unreadable", f"{p}: can't be read ({err.strerror or err})") from err
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
            raise ImageError("unreadable", f"{p}: {what}")
        if st.st_size == 0:
            raise ImageError("empty", f"{p}: empty file")
        if st.st_size > max_bytes:
            raise ImageError("too-large", f"{p}: {st.st_size / 2**20:.0f} MiB is larger than any image pafpose "
                                          f"reads ({max_bytes / 2**20:.0f} MiB)")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read()
    except OSError as err:
        raise ImageError("unreadable", f"{p}: can't be read ({err.strerror or err})") from err
    finally:
        if fd >= 0:
            os.close(fd)


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> np.ndarray:
    """The image at ``path`` as HxWx3 uint8 BGR, EXIF orientation applied (see :func:`open_image`,
    which also says the original size when the image was read reduced)."""
    return open_image(path, max_pixels, max_side).image


def open_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Decoded:
    """The image file at ``path``, decoded within the pixel budget (see :func:`decode_image`).

    Gray and 16-bit files are converted, alpha is dropped; a file that can't be read, for
    whatever reason, is a one-line :class:`ImageError` that names it.
    """
    data = read_file(path, max_bytes=max(64 * 2**20, 8 * max_pixels))
    try:
        return dataclasses.replace(decode_image(data, max_pixels, max_side), source=os.fspath(path))
    except ImageError as err:
        message = str(err)
        if message.startswith("not an image pafpose reads"):
            message = "not a readable image" + message.removeprefix("not an image pafpose reads")
        elif err.problem in ("corrupt", "unsupported"):
            message = "not a readable image: " + message.removeprefix("corrupt image: ")
        raise ImageError(err.problem, f"{path}: {message}") from err
