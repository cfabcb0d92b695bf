"""The field layout of a PAF head, shared by the encoder, the decoder and the models.

A :class:`FieldSpec` says which skeleton a head predicts, in which order its limbs'
PAF channels lie, and at which stride. The encoder writes fields in this layout, the
decoder reads them, and each model declares its own spec (the channel layout is a
property of a trained head, not of the skeleton).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pafpose.errors import PafposeError
from pafpose.skeleton import COCO18, Skeleton

Limb = tuple[str, str]


@dataclass(frozen=True)
class FieldSpec:
    """Layout of heatmap and PAF channels.

    Attributes:
        skeleton: the keypoints; heatmap channel ``i`` is ``skeleton.keypoints[i]``.
        limbs: limbs (name pairs) in PAF order; limb ``i`` points from ``limbs[i][0]`` to
            ``limbs[i][1]``.
        paf_channels: ``(x_channel, y_channel)`` of each limb within the PAF tensor.
        stride: input pixels per field cell.
        background: whether a background heatmap follows the keypoint channels.
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

    @property
    def offset(self) -> float:
        """Image coordinate of the centre of field cell 0: ``(stride - 1) / 2``."""
        return (self.stride - 1) / 2.0

    def field_size(self, image_height: int, image_width: int) -> tuple[int, int]:
        """Field ``(height, width)`` for an input of the given size (ceil division)."""
        return -(-image_height // self.stride), -(-image_width // self.stride)


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
