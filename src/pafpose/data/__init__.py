"""Training data: COCO-format datasets and augmentation (the encoder's input side)."""

from pafpose.data.augment import AugmentConfig, augment
from pafpose.data.coco import CocoKeypoints, DatasetReport, collate

__all__ = ["AugmentConfig", "CocoKeypoints", "DatasetReport", "augment", "collate"]
