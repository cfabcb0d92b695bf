"""Uploaded bytes -> a BGR image, with :mod:`pafpose.images` (the reader every command uses),
so the service accepts exactly the files ``pafpose predict`` reads and sees the same pixels.

The reader takes the size and format from the header before any pixel is decoded, so a
decompression bomb is refused without allocating it; large JPEGs decode at reduced size and
any image above ``max_side`` is shrunk, with the factor kept to report keypoints in the
original pixels. Here its errors become HTTP statuses.
"""

from __future__ import annotations

from pafpose.errors import PafposeError
from pafpose.images import FORMATS, Decoded, ImageError, decode_image

__all__ = ["FORMATS", "Upload", "UploadError", "decode_upload"]

Upload = Decoded  # the service's name for a decoded upload

_STATUS = {"empty": 400, "too-large": 413, "unsupported": 415, "corrupt": 422, "missing": 400, "unreadable": 422}


class UploadError(PafposeError):
    """An upload the service refuses; ``status`` is the HTTP status code that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, max_pixels: int = 100_000_000, max_side: int = 2048) -> Upload:
    """Decode an uploaded image file (see :func:`pafpose.images.decode_image`).

    Raises:
        UploadError: 400 (empty), 413 (too many pixels), 415 (not an image, or a format
            pafpose doesn't read), 422 (corrupt or truncated).
    """
    if not data:
        raise UploadError(400, "empty upload: the request carries no image data")
    try:
        return decode_image(data, max_pixels=max_pixels, max_side=max_side)
    except ImageError as err:
        message = str(err) + (" (pafpose serve --max-pixels)" if err.problem == "too-large" else "")
        raise UploadError(_STATUS[err.problem], message) from err
