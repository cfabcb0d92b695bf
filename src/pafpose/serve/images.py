"""Uploaded bytes -> a BGR image, refusing what a public endpoint must not decode.

The order matters: the size and format are read from the file's header (Pillow opens
lazily) before any pixel is decoded, so a decompression bomb (a small file that declares
gigapixels) is refused without allocating it. The pixels are then decoded by OpenCV as
:func:`pafpose.io.read_image` does (EXIF orientation, any depth), so the service's results
equal ``Estimator.predict`` on the same file; large JPEGs decode at reduced size and any
image above ``max_side`` is shrunk, with the factor kept to report keypoints in the
original pixels.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

from pafpose.errors import PafposeError
from pafpose.io import to_bgr8

# What OpenCV decodes, by Pillow's format names; other formats Pillow recognises are refused (415).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM", "JPEG2000")


class UploadError(PafposeError):
    """An upload the service refuses; ``status`` is the HTTP status code that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """A decoded upload.

    Attributes:
        image: HxWx3 uint8 BGR, possibly shrunk (see ``scale``).
        width: the original image's width (after EXIF orientation), in pixels.
        height: its height.
        format: Pillow's format name (``"JPEG"``, ``"PNG"``...).
    """

    image: np.ndarray
    width: int
    height: int
    format: str

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: pixels of ``image`` per original pixel (1, 1 unless shrunk)."""
        return self.image.shape[1] / self.width, self.image.shape[0] / self.height


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


def _header(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header alone; refuses non-images and bombs."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = str(im.format), im.size
    except UnidentifiedImageError as err:
        raise UploadError(415, "not an image: the data is no image format this service reads "
                               f"({', '.join(FORMATS)})") from err
    except Image.DecompressionBombError as err:  # Pillow's own limit, above ours unless --max-pixels is raised
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found.group(1)) / 1e6:.1f} Mpixel" if found else "too many pixels"
        pil = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        why = (f"{max_pixels / 1e6:.1f} Mpixel (pafpose serve --max-pixels)" if max_pixels <= pil
               else f"{pil / 1e6:.1f} Mpixel (Pillow's decompression-bomb limit)")
        raise UploadError(413, f"image too large: {size}, above the limit of {why}") from err
    except Exception as err:  # a malformed header can raise anything in a format plug-in; the data is at fault
        raise UploadError(422, f"corrupt image: its header can't be read ({type(err).__name__}: {err})") from err
    if fmt not in FORMATS:
        raise UploadError(415, f"{fmt} images are not supported: send {', '.join(FORMATS)}")
    if w < 1 or h < 1:
        raise UploadError(422, f"corrupt image: it declares a size of {w} x {h} pixels")
    if w * h > max_pixels:
        raise UploadError(413, f"image too large: {w} x {h} = {w * h / 1e6:.1f} Mpixel, above the limit of "
                               f"{max_pixels / 1e6:.1f} Mpixel (pafpose serve --max-pixels)")
    return fmt, w, h


def decode_upload(data: bytes, max_pixels: int = 100_000_000, max_side: int = 2048) -> Upload:
    """Decode an uploaded image file.

    Args:
        data: the file's bytes.
        max_pixels: largest ``width * height`` accepted (from the header, before decoding).
        max_side: longer side above which the image is shrunk (JPEGs decode directly at
            1/2, 1/4 or 1/8 size when that still leaves at least ``max_side``).

    Raises:
        UploadError: 400 (empty), 413 (too many pixels), 415 (not an image, or a format
            OpenCV can't read), 422 (corrupt or truncated).
    """
    import cv2

    if not data:
        raise UploadError(400, "empty upload: the request carries no image data")
    fmt, w, h = _header(data, max_pixels)
    if fmt == "JPEG" and not _jpeg_complete(data):
        raise UploadError(422, "corrupt image: the JPEG data is truncated (no end-of-image marker)")
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # as pafpose.io.read_image: EXIF orientation, 16-bit kept
    reduction = 1
    if fmt == "JPEG":
        reduction = next((r for r in (8, 4, 2) if max(w, h) / r >= max_side), 1)
        flags = {1: flags, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}[reduction]
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        raise UploadError(422, f"corrupt image: OpenCV can't decode it ({str(err).strip().splitlines()[-1]})") from err
    if img is None or img.size == 0:
        raise UploadError(422, f"corrupt image: the {fmt} data can't be decoded (truncated or damaged)")
    try:
        img = to_bgr8(img)
    except PafposeError as err:
        raise UploadError(415, f"unsupported image: {err}") from err
    ih, iw = img.shape[:2]
    if reduction == 1:
        width, height = iw, ih  # exact, after the EXIF orientation OpenCV applied
    else:  # the header's size, turned as OpenCV turned the pixels
        width, height = min(((w, h), (h, w)), key=lambda s: abs(s[0] / s[1] - iw / ih))
    if max(ih, iw) > max_side:
        f = max_side / max(ih, iw)
        img = cv2.resize(img, (max(1, round(iw * f)), max(1, round(ih * f))), interpolation=cv2.INTER_AREA)
    return Upload(img, width, height, fmt)
