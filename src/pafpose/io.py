"""Reading images the way users have them: any bit depth, channel count or size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pafpose.errors import PafposeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


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
    """The image at ``path`` as HxWx3 uint8 BGR; a one-line PafposeError if it can't be read."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise PafposeError(f"{p}: no such file")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size == 0:
        raise PafposeError(f"{p}: empty file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise PafposeError(f"{p}: not a readable image")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return to_bgr8(img)


def as_bgr(image: Any, color: str = "BGR") -> np.ndarray:
    """Path, numpy array (``color`` order) or PIL image -> HxWx3 uint8 BGR."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if type(image).__module__.startswith("PIL."):
        rgb = np.asarray(image.convert("RGB"))
        return to_bgr8(rgb, "RGB")
    return to_bgr8(image, color)
