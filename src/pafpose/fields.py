"""The field layout of a PAF head, shared by the encoder, the decoder and the models.

A :class:`FieldSpec` says which skeleton a head predicts, in which order its limbs'
PAF channels lie, and at which stride. The encoder writes fields in this layout, the
decoder reads them, and each model declares its own spec (the channel layout is a
property of a trained head, not of the skeleton). It also owns what follows from the layout
alone: the field grid (:attr:`FieldSpec.cells`, see :mod:`pafpose.coords`), whether a
background channel follows the keypoints, and the channel tables of a horizontal flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from pafpose.coords import Geometry
from pafpose.errors import PafposeError
from pafpose.skeleton import COCO18, Skeleton

Limb = tuple[str, str]


class FlipTables(NamedTuple):
    """How a head's fields of a mirrored image map back onto the original's.

    ``heatmaps[c]`` and ``pafs[c]`` are the mirrored fields' source channels of channel
    ``c``; ``paf_sign[c]`` is the sign the mirror puts on that PAF component. Read-only
    arrays (they are cached on the spec).
    """

    heatmaps: np.ndarray  # (num_heatmaps,) int64
    pafs: np.ndarray  # (num_pafs,) int64
    paf_sign: np.ndarray  # (num_pafs,) float32, +1 or -1


class Fields(NamedTuple):
    """One image's fields as the Estimator decoded them (see :attr:`pafpose.pose.Poses.fields`).

    ``heatmaps`` ``(num_heatmaps, H, W)`` and ``pafs`` ``(num_pafs, H, W)`` are float32 arrays
    in the network's own channel order (:class:`FieldSpec`); ``geometry`` maps the pixels of
    the people's image onto them (``geometry.image_to_input``, ``geometry.cell_to_image``).
    """

    heatmaps: np.ndarray
    pafs: np.ndarray
    geometry: Geometry

    def for_resized(self, fx: float, fy: float) -> Fields:
        """The same fields for the people's image resized by ``fx`` x ``fy`` (new pixels per old
        pixel, as :func:`~pafpose.pose.scale_poses` moves the people): resizes compose by
        multiplying their factors (:mod:`pafpose.coords`)."""
        return self._replace(geometry=self.geometry.for_resized(fx, fy))


@dataclass(frozen=True)
class FieldSpec:
    """Layout of heatmap and PAF channels.

    Attributes:
        skeleton: the keypoints; heatmap channel ``i`` is ``skeleton.keypoints[i]``.
        limbs: limbs (name pairs) in PAF order; limb ``i`` points from ``limbs[i][0]`` to
            ``limbs[i][1]``.
        paf_channels: ``(x_channel, y_channel)`` of each limb within the PAF tensor.
        stride: input pixels per field cell.
        background: whether a background heatmap follows the keypoint channels (the one
            definition: the encoder writes it and the decoder skips it as this says).
    """

    skeleton: Skeleton
    limbs: tuple[Limb, ...]
    paf_channels: tuple[tuple[int, int], ...]
    stride: int = 8
    background: bool = True

    def __post_init__(self) -> None:
        if len(self.limbs) != len(self.paf_channels):
            raise PafposeError(f"{len(self.limbs)} limbs but {len(self.paf_channels)} PAF channel pairs")
        flat = [c for pair in self.paf_channels for c in pair]
        if sorted(flat) != list(range(len(flat))):
            raise PafposeError("paf_channels must use each channel 0..2L-1 exactly once")
        if self.stride < 1:
            raise PafposeError(f"stride must be a positive integer, got {self.stride}")
        self.skeleton.limb_indices(self.limbs)  # validates the names

    @classmethod
    def sequential(cls, skeleton: Skeleton, stride: int = 8, background: bool = True) -> FieldSpec:
        """The skeleton's limbs in order, limb ``i`` in channels ``(2i, 2i + 1)``."""
        pafs = tuple((2 * i, 2 * i + 1) for i in range(len(skeleton.limbs)))
        return cls(skeleton, skeleton.limbs, pafs, stride, background)

    @property
    def num_keypoints(self) -> int:
        return self.skeleton.num_keypoints

    @property
    def num_heatmaps(self) -> int:
        return self.skeleton.num_keypoints + int(self.background)

    @property
    def num_pafs(self) -> int:
        return 2 * len(self.limbs)

    @cached_property
    def limb_index(self) -> np.ndarray:
        """(L, 2) keypoint indices of each limb, in PAF order."""
        return self.skeleton.limb_indices(self.limbs)

    @cached_property
    def paf_index(self) -> np.ndarray:
        """(L, 2) PAF channel indices (x, y) of each limb."""
        return np.array(self.paf_channels, dtype=np.int64).reshape(-1, 2)

    @cached_property
    def cells(self) -> Geometry:
        """The field grid in network-input pixels (no resize): :meth:`~Geometry.cell_to_input`
        and :meth:`~Geometry.input_to_cell` of this stride."""
        return Geometry(1.0, 1.0, self.stride)

    def geometry(self, factor: float) -> Geometry:
        """An image resized by ``factor`` (input pixels per image pixel) onto this grid."""
        return Geometry.uniform(factor, self.stride)

    @property
    def offset(self) -> float:
        """Input coordinate of the centre of field cell 0: ``(stride - 1) / 2``."""
        return self.cells.offset

    def field_size(self, image_height: int, image_width: int) -> tuple[int, int]:
        """Field ``(height, width)`` for an input of the given size (ceil division)."""
        return self.cells.cells(image_height), self.cells.cells(image_width)

    @cached_property
    def flip_tables(self) -> FlipTables:
        """Channel permutations and PAF signs that mirror this head's fields (test-time flip).

        Heatmaps follow the skeleton's left/right keypoint permutation (background stays);
        limb ``i``'s PAF comes from its mirror limb's with x negated, or y where only the
        reversed limb exists (:meth:`~pafpose.skeleton.Skeleton.limb_flip`).
        """
        sk, k = self.skeleton, self.num_keypoints
        hm = np.array(list(sk.flip_permutation.tolist()) + ([k] if self.background else []), dtype=np.int64)
        perm, reverse = sk.limb_flip(self.limbs)
        pidx = self.paf_index
        src = np.zeros(self.num_pafs, dtype=np.int64)
        sign = np.ones(self.num_pafs, dtype=np.float32)
        for i in range(len(self.limbs)):
            j = perm[i]
            src[pidx[i, 0]], src[pidx[i, 1]] = pidx[j, 0], pidx[j, 1]
            # mirroring negates x; a limb that maps onto a reversed limb negates both, so y
            sign[pidx[i, 0]], sign[pidx[i, 1]] = (1.0, -1.0) if reverse[i] else (-1.0, 1.0)
        for a in (hm, src, sign):
            a.setflags(write=False)
        return FlipTables(hm, src, sign)


# The PAF layout of the CMU CVPR'17 COCO model as its Python demo reads it, which
# Lightweight OpenPose and Open Model Zoo human-pose-estimation-0001 kept.
OPENPOSE_COCO18 = FieldSpec(
    skeleton=COCO18,
    limbs=COCO18.limbs,
    paf_channels=(
        (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
        (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
        (26, 27),
    ),
    stride=8,
)
