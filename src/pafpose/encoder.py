"""Ground-truth fields for training: people -> heatmaps, Part Affinity Fields, loss mask.

The mirror of :mod:`pafpose.decoder`: both read the same :class:`~pafpose.fields.FieldSpec`.
People are ``(N, K, 3)`` arrays of ``(x, y, v)`` in input-image pixels (see
:mod:`pafpose.skeleton` for the coordinate convention); a keypoint takes part when
``v > 0`` (COCO: 1 = labelled but occluded, 2 = visible) and its coordinates are finite.
Everything is vectorised over pixels, keypoints and people; loops run over limbs only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pafpose.errors import PafposeError
from pafpose.fields import FieldSpec

# OpenPose truncates each Gaussian where exp(-d^2 / 2 sigma^2) < 0.01 (exponent > 4.6052).
_GAUSS_CUTOFF = 4.6052


@dataclass(frozen=True)
class EncoderConfig:
    """Design choices researchers tune; defaults are the original paper's.

    Attributes:
        sigma: heatmap Gaussian standard deviation, input pixels (OpenPose: 7).
        paf_width: half-width of the PAF band around a limb axis, input pixels
            (OpenPose: 1 cell at stride 8). As in the reference implementation the band
            also reaches ``paf_width`` past each joint, so that short limbs (a few pixels
            in small people) still cover field cells and samples at the joints read the
            full field.
        paf_mode: ``"rigid"``: unit vectors inside the band (the paper); ``"smooth"``:
            the magnitude falls off as a Gaussian of the distance to the axis with standard
            deviation ``paf_width / 2``.
        background: deprecated, leave unset: the field layout says whether a background
            channel (1 - max of the keypoint channels) follows the keypoints
            (:attr:`FieldSpec.background`); a value given here must agree with it.
        mask: zero the loss mask over crowd regions and people annotated without keypoints.
        mask_threshold: a cell is masked when at least this fraction of its pixels is ignored.
    """

    sigma: float = 7.0
    paf_width: float = 8.0
    paf_mode: Literal["rigid", "smooth"] = "rigid"
    background: bool | None = None
    mask: bool = True
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not self.sigma > 0 or not self.paf_width > 0:
            raise PafposeError(f"sigma and paf_width must be positive, got {self.sigma}, {self.paf_width}")
        if self.paf_mode not in ("rigid", "smooth"):
            raise PafposeError(f"paf_mode must be 'rigid' or 'smooth', got {self.paf_mode!r}")
        if not 0 < self.mask_threshold <= 1:
            raise PafposeError(f"mask_threshold must be in (0, 1], got {self.mask_threshold}")
        if self.background is not None:
            warnings.warn("EncoderConfig(background=...) is deprecated: the FieldSpec's background decides",
                          DeprecationWarning, stacklevel=3)


@dataclass
class Targets:
    """Training targets at field resolution.

    Attributes:
        heatmaps: ``(K [+1], H, W)`` float32.
        pafs: ``(2L, H, W)`` float32, in the spec's channel layout.
        mask: ``(H, W)`` float32, 0 where the loss is ignored.
    """

    heatmaps: np.ndarray
    pafs: np.ndarray
    mask: np.ndarray


def _as_people(people: Any, num_keypoints: int) -> np.ndarray:
    arr = np.asarray(people, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, num_keypoints, 3))
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (num_keypoints, 3):
        raise PafposeError(f"people must be (N, {num_keypoints}, 3) as (x, y, v); got shape {arr.shape}")
    return arr


class Encoder:
    """Builds target fields for one image.

    Example:
        >>> from pafpose.fields import OPENPOSE_COCO18
        >>> enc = Encoder(OPENPOSE_COCO18)
        >>> t = enc(people, field_size=(46, 46))  # people: (N, 18, 3) in pixels
    """

    def __init__(self, spec: FieldSpec, config: EncoderConfig | None = None) -> None:
        self.spec = spec
        self.config = config or EncoderConfig()
        if self.config.background is not None and bool(self.config.background) != spec.background:
            raise PafposeError(f"EncoderConfig(background={self.config.background}) disagrees with the field layout "
                               f"(background={spec.background}), which decides; leave it unset")

    def _grid(self, field_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres in input pixels: ``(y of each row, x of each column)``."""
        h, w = field_size
        cells = self.spec.cells
        return cells.cell_to_input(np.arange(h), axis=1), cells.cell_to_input(np.arange(w), axis=0)

    def _visible(self, people: np.ndarray) -> np.ndarray:
        return (people[..., 2] > 0) & np.isfinite(people[..., 0]) & np.isfinite(people[..., 1])

    def encode_heatmaps(self, people: Any, field_size: tuple[int, int]) -> np.ndarray:
        """Per-keypoint Gaussians, max over people; plus background if the layout has it.

        Returns:
            ``(K [+1], H, W)`` float32 in ``[0, 1]``.
        """
        k = self.spec.num_keypoints
        people = _as_people(people, k)
        gy, gx = self._grid(field_size)
        h, w = field_size
        out = np.zeros((k, h, w), dtype=np.float32)
        vis = self._visible(people)
        two_s2 = 2.0 * self.config.sigma**2
        # Separable Gaussian: exp(-(dx^2 + dy^2)/2s^2) = exp(-dx^2/2s^2) * exp(-dy^2/2s^2).
        # People are processed in blocks so memory stays bounded for crowds and big maps.
        block = max(1, int(4e6 // max(1, k * h * w)))
        for start in range(0, len(people), block):
            p = people[start : start + block]
            v = vis[start : start + block]
            x = np.where(v, p[..., 0], 0.0)[..., None]
            y = np.where(v, p[..., 1], 0.0)[..., None]
            ex = (gx[None, None, :] - x) ** 2 / two_s2  # (n, K, W)
            ey = (gy[None, None, :] - y) ** 2 / two_s2  # (n, K, H)
            e = ey[..., :, None] + ex[..., None, :]  # (n, K, H, W)
            g = np.exp(-e)
            g[(e > _GAUSS_CUTOFF) | ~v[..., None, None]] = 0.0
            np.maximum(out, g.max(axis=0), out=out)
        if self.spec.background:
            bg = 1.0 - (out.max(axis=0, keepdims=True) if k else np.zeros((1, h, w), np.float32))
            out = np.concatenate([out, bg.astype(np.float32)], axis=0)
        return out

    def encode_pafs(self, people: Any, field_size: tuple[int, int]) -> np.ndarray:
        """Part Affinity Fields: unit vectors along each limb inside its band.

        Where bands of several people overlap, the vectors are averaged (the paper's rule),
        so the field there can be shorter than one.

        Returns:
            ``(2L, H, W)`` float32 in the spec's channel layout.
        """
        people = _as_people(people, self.spec.num_keypoints)
        gy, gx = self._grid(field_size)
        h, w = field_size
        out = np.zeros((self.spec.num_pafs, h, w), dtype=np.float32)
        vis = self._visible(people)
        width = self.config.paf_width
        px = gx[None, None, :]
        py = gy[None, :, None]
        for (ka, kb), (cx, cy) in zip(self.spec.limb_index, self.spec.paf_index, strict=False):
            ok = vis[:, ka] & vis[:, kb]
            a = people[ok, ka, :2]
            d = people[ok, kb, :2] - a
            length = np.hypot(d[:, 0], d[:, 1])
            keep = length > 1e-6  # a zero-length limb has no direction
            if not keep.any():
                continue
            a, d, length = a[keep], d[keep], length[keep]
            u = d / length[:, None]
            ux, uy = u[:, 0, None, None], u[:, 1, None, None]
            rx = px - a[:, 0, None, None]
            ry = py - a[:, 1, None, None]
            along = rx * ux + ry * uy  # (n, H, W)
            across = np.abs(rx * uy - ry * ux)
            band = (along >= -width) & (along <= length[:, None, None] + width) & (across <= width)
            if self.config.paf_mode == "smooth":
                mag = np.where(band, np.exp(-0.5 * (across / (width / 2.0)) ** 2), 0.0)
            else:
                mag = band.astype(np.float64)
            count = band.sum(axis=0)
            denom = np.maximum(count, 1)
            out[cx] = (mag * ux).sum(axis=0) / denom
            out[cy] = (mag * uy).sum(axis=0) / denom
        return out

    def encode_mask(self, ignore: np.ndarray | None, field_size: tuple[int, int]) -> np.ndarray:
        """Loss mask at field resolution from a pixel mask of ignored regions.

        A cell is zero when at least ``mask_threshold`` of the input pixels it covers are
        ignored; pixels beyond the image (padding) count as not ignored.

        Args:
            ignore: ``(H_img, W_img)`` bool, True where the loss must be ignored, or None.
        """
        h, w = field_size
        mask = np.ones((h, w), dtype=np.float32)
        if ignore is None or not self.config.mask:
            return mask
        ignore = np.asarray(ignore, dtype=bool)
        if ignore.ndim != 2:
            raise PafposeError(f"ignore mask must be 2-D (H, W), got shape {ignore.shape}")
        s = self.spec.stride
        canvas = np.zeros((h * s, w * s), dtype=np.float32)
        hh, ww = min(h * s, ignore.shape[0]), min(w * s, ignore.shape[1])
        canvas[:hh, :ww] = ignore[:hh, :ww]
        frac = canvas.reshape(h, s, w, s).mean(axis=(1, 3))
        mask[frac >= self.config.mask_threshold] = 0.0
        return mask

    def __call__(
        self, people: Any, field_size: tuple[int, int], ignore: np.ndarray | None = None
    ) -> Targets:
        """All targets for one image (see the ``encode_*`` methods)."""
        return Targets(
            heatmaps=self.encode_heatmaps(people, field_size),
            pafs=self.encode_pafs(people, field_size),
            mask=self.encode_mask(ignore, field_size),
        )


def ignore_mask_from_coco(annotations: Iterable[Mapping[str, Any]], image_size: tuple[int, int]) -> np.ndarray:
    """Pixel mask of regions whose loss must be ignored, from COCO annotations.

    Crowd regions (``iscrowd=1``) and people annotated without keypoints
    (``num_keypoints == 0``) are ignored: the network may rightly see people there, and
    the ground truth has no keypoints to teach it.

    Args:
        annotations: COCO annotation dicts of one image (polygon or RLE segmentations).
        image_size: ``(height, width)`` of the image.

    Returns:
        ``(H, W)`` bool, True where ignored.
    """
    from pycocotools import mask as mask_utils

    h, w = image_size
    ignore = np.zeros((h, w), dtype=bool)
    for ann in annotations:
        if not (ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) == 0):
            continue
        segm = ann.get("segmentation")
        if not segm:
            continue
        if isinstance(segm, list) and any(len(poly) < 6 or len(poly) % 2 for poly in segm):
            raise PafposeError(f"annotation {ann.get('id', '?')}: segmentation polygons need >= 3 (x, y) points")
        try:
            if isinstance(segm, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
            elif isinstance(segm.get("counts"), list):
                rle = mask_utils.frPyObjects(segm, h, w)
            else:
                rle = segm
            ignore |= mask_utils.decode(rle).astype(bool)
        except Exception as err:  # pycocotools raises bare Exception on malformed input
            raise PafposeError(f"annotation {ann.get('id', '?')}: unreadable segmentation ({err})") from err
    return ignore
