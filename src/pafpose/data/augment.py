"""Training augmentation: one affine warp (scale around a person, rotation, crop, flip)
applied alike to the image, the keypoints and the ignore mask, plus colour jitter.

The original recipe (CMU's Caffe data layer, kept by the PyTorch ports): scale the image
so that a randomly chosen person's height is about ``target_height`` of the crop, times a
random factor; rotate by up to 40 degrees; crop ``size`` x ``size`` around the person with
up to 40 px of jitter; mirror half of the samples, swapping left and right keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pafpose.errors import PafposeError
from pafpose.skeleton import Skeleton


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation; defaults are the original recipe's.

    Attributes:
        size: side of the square training crop, input pixels (368).
        target_height: height of the chosen person relative to ``size`` before the random
            scale (the original's ``target_dist`` 0.6).
        scale_min: smallest random scale factor.
        scale_max: largest random scale factor.
        rotate: largest rotation, degrees, either way.
        center_jitter: largest shift of the crop centre, input pixels, per axis.
        flip: probability of a horizontal flip.
        brightness: largest relative brightness change (0 disables).
        contrast: largest relative contrast change (0 disables).
        saturation: largest relative saturation change (0 disables).
    """

    size: int = 368
    target_height: float = 0.6
    scale_min: float = 0.5
    scale_max: float = 1.1
    rotate: float = 40.0
    center_jitter: float = 40.0
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self) -> None:
        if self.size < 8:
            raise PafposeError(f"size must be at least 8, got {self.size}")
        if not 0 < self.scale_min <= self.scale_max:
            raise PafposeError(f"need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}")
        if not 0 <= self.flip <= 1:
            raise PafposeError(f"flip is a probability, got {self.flip}")


def warp_matrix(center: tuple[float, float], scale: float, angle_deg: float, size: int, flip: bool) -> np.ndarray:
    """2x3 affine map from image pixels to crop pixels (pixel centres at integers).

    ``center`` lands on the crop's centre; the image is scaled by ``scale`` and rotated by
    ``angle_deg`` (counter-clockwise on screen) around it; ``flip`` mirrors the crop.
    """
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    half = (size - 1) / 2.0
    cx, cy = center
    m = np.array([[c, s, 0.0], [-s, c, 0.0]])
    m[:, 2] = [half - (c * cx + s * cy), half - (-s * cx + c * cy)]
    if flip:
        m[0] = -m[0]
        m[0, 2] += size - 1
    return m


def apply(m: np.ndarray, people: np.ndarray) -> np.ndarray:
    """``people`` ``(N, K, 3)`` with (x, y) mapped by the 2x3 matrix ``m``."""
    out = people.copy()
    xy = people[..., :2]
    out[..., 0] = m[0, 0] * xy[..., 0] + m[0, 1] * xy[..., 1] + m[0, 2]
    out[..., 1] = m[1, 0] * xy[..., 0] + m[1, 1] * xy[..., 1] + m[1, 2]
    return out


def jitter_colour(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Brightness, contrast and saturation changes of a BGR uint8 image."""
    img = image.astype(np.float32)
    if config.saturation:
        gray = img @ np.array([0.114, 0.587, 0.299], np.float32)
        img = gray[..., None] + (img - gray[..., None]) * rng.uniform(1 - config.saturation, 1 + config.saturation)
    if config.contrast:
        mean = img.mean()
        img = mean + (img - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast)
    if config.brightness:
        img = img * rng.uniform(1 - config.brightness, 1 + config.brightness)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray,
    people: np.ndarray,
    anchors: np.ndarray,
    ignore: np.ndarray | None,
    skeleton: Skeleton,
    rng: np.random.Generator,
    config: AugmentConfig,
    fill: float = 128.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One random training crop.

    Args:
        image: HxWx3 uint8 BGR.
        people: ``(N, K, 3)`` keypoints ``(x, y, v)`` in ``skeleton``'s order, image pixels.
        anchors: ``(N, 3)`` centre x, centre y and height of each person (its box); the
            crop is built around one of them, or the image centre when there are none.
        ignore: ``(H, W)`` bool mask of ignored pixels, or None.
        fill: value of pixels outside the image.

    Returns:
        ``(crop, people, ignore)`` in crop pixels; left and right keypoints swapped when
        the crop is mirrored, so each channel still means the same body part.
    """
    import cv2

    h, w = image.shape[:2]
    size = config.size
    if len(anchors):
        cx, cy, height = anchors[rng.integers(len(anchors))]
        base = config.target_height * size / max(float(height), 1.0)
    else:
        cx, cy, base = (w - 1) / 2.0, (h - 1) / 2.0, size / max(h, w)
    scale = base * rng.uniform(config.scale_min, config.scale_max)
    angle = rng.uniform(-config.rotate, config.rotate)
    jx, jy = rng.uniform(-config.center_jitter, config.center_jitter, 2) / scale
    flip = bool(rng.random() < config.flip)
    m = warp_matrix((cx + jx, cy + jy), scale, angle, size, flip)
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(fill, fill, fill))
    out = apply(m, people)
    if flip:
        out = out[:, skeleton.flip_permutation]
    mask = None
    if ignore is not None:
        mask = cv2.warpAffine(ignore.astype(np.uint8), m, (size, size), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    return jitter_colour(crop, rng, config), out, mask
