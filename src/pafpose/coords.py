"""The one owner of pixel arithmetic: image pixels <-> network-input pixels <-> field cells.

Convention (used everywhere in pafpose): ``x`` grows to the right and ``y`` downwards, in
pixels, 0-based, with integer values at pixel *centres*, so the top-left pixel covers
``[-0.5, 0.5) x [-0.5, 0.5)``.

Three spaces, each a resize of the one before:

- *image* pixels: the picture as given (or as decoded, for a reduced JPEG: each resize
  step is one :class:`Geometry`, and steps are applied in turn).
- *input* pixels: the image resized by ``fx`` x ``fy`` (input pixels per image pixel). A
  resize maps pixel *edges* onto each other (as ``cv2.resize`` does), so a centre moves as
  ``x_input = (x_image + 0.5) * fx - 0.5``. The Estimator pads only right and bottom, so
  the image content starts at input pixel 0 and padding adds no offset.
- field *cells*: cell ``(gx, gy)`` at stride ``s`` covers input pixels ``gx * s .. gx * s
  + s - 1`` and is centred on input point ``(gx * s + (s - 1) / 2, gy * s + (s - 1) / 2)``
  (the convention of the OpenPose and Lightweight OpenPose training code).

Every method is plain arithmetic on numpy arrays (or torch tensors, for the 1-D ``axis``
form), written once so that the same expression, in the same order, gives the same bits
wherever it is used: ``(x + 0.5) / f - 0.5`` and ``(x + 0.5) * (1 / f) - 0.5`` are equal in
mathematics, not in floating point, and callers that use the latter pass ``1 / f`` as the
factor of the opposite direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from pafpose.errors import PafposeError


@dataclass(frozen=True)
class Geometry:
    """Where an image lies in the network input and on the field grid.

    Attributes:
        fx: input pixels per image pixel along x.
        fy: along y (equal to ``fx`` for the Estimator; a shrunk upload may differ by rounding).
        stride: input pixels per field cell.

    Point methods take an array whose last axis is ``(x, y, ...)``: x and y are mapped,
    further columns (a keypoint's score) are copied; the result is a new array. With
    ``axis=0`` (x) or ``axis=1`` (y) they take coordinates of that axis alone, any shape,
    numpy or torch.

    Example:
        >>> g = Geometry(0.5, 0.5, stride=8)  # a 736 x 1280 photo at input height 368
        >>> g.cell_to_image(np.array([[0.0, 0.0]]))  # centre of cell (0, 0) in the photo
        array([[7.5, 7.5]])
    """

    fx: float
    fy: float
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not (math.isfinite(value) and value > 0):
                raise PafposeError(f"{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, float(value))  # a Python float: numpy and torch scalars promote alike
        if isinstance(self.stride, bool) or int(self.stride) != self.stride or self.stride < 1:
            raise PafposeError(f"stride must be a positive integer, got {self.stride!r}")
        object.__setattr__(self, "stride", int(self.stride))

    @classmethod
    def uniform(cls, factor: float, stride: int = 1) -> Geometry:
        """The same factor along both axes (the Estimator's aspect-preserving resize)."""
        return cls(factor, factor, stride)

    @property
    def offset(self) -> float:
        """Input coordinate of the centre of field cell 0: ``(stride - 1) / 2``."""
        return (self.stride - 1) / 2.0

    # ------------------------------------------------------------------ resizes before this one
    def for_resized(self, fx: float, fy: float) -> Geometry:
        """This placement for the image resized by ``fx`` x ``fy`` (new pixels per old pixel):
        the factors divide, so a point lands on the same input pixel from either image."""
        return Geometry(self.fx / fx, self.fy / fy, self.stride)

    def through(self, step: Geometry) -> Geometry:
        """This placement for the image that ``step`` resized into this one's image (``step``:
        later pixels per earlier pixel): the factors multiply, resize after resize."""
        return Geometry(self.fx * step.fx, self.fy * step.fy, self.stride)

    # ------------------------------------------------------------------ sizes
    def input_size(self, image_shape: tuple[int, ...]) -> tuple[int, int]:
        """``(h, w)`` of the resized image (at least 1 x 1) for an image of ``(H, W, ...)``."""
        h, w = image_shape[:2]
        return max(1, round(h * self.fy)), max(1, round(w * self.fx))

    def cells(self, n: int) -> int:
        """Field cells covering ``n`` input pixels (a partial cell counts, as the network's output does)."""
        return -(-n // self.stride)

    def field_size(self, image_shape: tuple[int, ...]) -> tuple[int, int]:
        """``(h, w)`` of the field grid over the resized image (its padding excluded)."""
        h, w = self.input_size(image_shape)
        return self.cells(h), self.cells(w)

    def padded_size(self, image_shape: tuple[int, ...]) -> tuple[int, int]:
        """``(h, w)`` of the network input: the resized image padded right and bottom to the stride."""
        gh, gw = self.field_size(image_shape)
        return gh * self.stride, gw * self.stride

    # ------------------------------------------------------------------ points
    def image_to_input(self, points: Any, axis: int | None = None) -> Any:
        """Image pixels -> input pixels: ``(x + 0.5) * f - 0.5``."""
        return self._map(points, axis, lambda v, f: (v + 0.5) * f - 0.5)

    def input_to_image(self, points: Any, axis: int | None = None) -> Any:
        """Input pixels -> image pixels: ``(x + 0.5) / f - 0.5``."""
        return self._map(points, axis, lambda v, f: (v + 0.5) / f - 0.5)

    def input_to_cell(self, points: Any, axis: int | None = None) -> Any:
        """Input pixels -> field cells (fractional): ``(x - offset) / stride``."""
        s, off = self.stride, self.offset
        return self._map(points, axis, lambda v, _: (v - off) / s)

    def cell_to_input(self, points: Any, axis: int | None = None) -> Any:
        """Field cells -> input pixels: ``g * stride + offset`` (a cell's centre for whole ``g``)."""
        s, off = self.stride, self.offset
        return self._map(points, axis, lambda v, _: v * s + off)

    def image_to_cell(self, points: Any, axis: int | None = None) -> Any:
        """Image pixels -> field cells (:meth:`image_to_input`, then :meth:`input_to_cell`)."""
        return self.input_to_cell(self.image_to_input(points, axis), axis)

    def cell_to_image(self, points: Any, axis: int | None = None) -> Any:
        """Field cells -> image pixels (:meth:`cell_to_input`, then :meth:`input_to_image`)."""
        return self.input_to_image(self.cell_to_input(points, axis), axis)

    def _map(self, points: Any, axis: int | None, fn: Any) -> Any:
        if axis is not None:
            if axis not in (0, 1):
                raise PafposeError(f"axis must be 0 (x), 1 (y) or None (points), got {axis!r}")
            return fn(points, self.fx if axis == 0 else self.fy)
        out = np.array(points, copy=True)
        if not np.issubdtype(out.dtype, np.floating):
            out = out.astype(np.float64)
        if out.ndim == 0 or out.shape[-1] < 2:
            raise PafposeError(f"points must have (x, y) on their last axis, got shape {out.shape}")
        out[..., 0] = fn(out[..., 0], self.fx)
        out[..., 1] = fn(out[..., 1], self.fy)
        return out
