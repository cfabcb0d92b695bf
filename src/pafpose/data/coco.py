"""COCO-format person keypoints as training samples: image, heatmaps, PAFs and loss mask.

Any COCO person-keypoints file works; its entries are checked as
:mod:`pafpose.data.annotations` says, and broken ones are skipped and counted. COCO-17 annotations are
mapped by keypoint name to the model's skeleton; OpenPose's neck is the mid-point of the
shoulders when both are labelled, as in the original. Crowd regions and people annotated
without keypoints are masked out of the loss (:func:`pafpose.encoder.ignore_mask_from_coco`).
Every sample's randomness comes from ``(seed, epoch, index)``, so a sample is the same
whichever worker makes it, and a resumed run sees the data it would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pafpose.data.annotations import load_annotations, skipped_summary
from pafpose.data.augment import AugmentConfig, augment
from pafpose.encoder import Encoder, EncoderConfig, ignore_mask_from_coco
from pafpose.errors import PafposeError
from pafpose.fields import FieldSpec
from pafpose.skeleton import COCO17, convert_keypoints

log = logging.getLogger(__name__)


@dataclass
class DatasetReport:
    """What was left out when the dataset was read, and why (one line each)."""

    images: int = 0
    people: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: what is used, how many entries were left out, and the first reasons."""
        return (f"{self.images} images, {self.people} people with keypoints; "
                + skipped_summary(self.skipped, noun=""))


class CocoKeypoints:
    """Training samples from a COCO person-keypoints file (a map-style torch Dataset).

    Args:
        annotations: the JSON file.
        images: folder of the images it names.
        spec: the model head's field layout (skeleton, limbs, stride).
        input_config: the model's :class:`~pafpose.models.InputConfig` (normalisation, padding).
        augment: augmentation, or None for validation-style samples: the whole image scaled
            to fit ``size`` x ``size`` at the top-left corner, the rest padded.
        encoder: target field settings.
        size: crop side when ``augment`` is None (else ``augment.size``).
        seed: base of every sample's random numbers.
        skip_empty: leave out images without people with keypoints (they still teach
            the background when kept, as in the original).

    Samples are dicts: ``image`` ``(3, S, S)`` float32 normalised for the model, ``heatmaps``
    ``(K+1, S/s, S/s)``, ``pafs`` ``(2L, S/s, S/s)``, ``mask`` ``(S/s, S/s)`` and ``image_id``.
    """

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path,
        spec: FieldSpec,
        input_config: Any,
        augment: AugmentConfig | None = AugmentConfig(),  # noqa: B008  (frozen dataclass)
        encoder: EncoderConfig | None = None,
        size: int = 368,
        seed: int = 0,
        skip_empty: bool = False,
    ) -> None:
        self.images_dir = Path(images)
        if not self.images_dir.is_dir():
            raise PafposeError(f"{images}: no such image folder")
        self.spec = spec
        self.input_config = input_config
        self.augment = augment
        self.size = augment.size if augment is not None else int(size)
        if self.size % spec.stride:
            raise PafposeError(f"crop size {self.size} must be a multiple of the stride {spec.stride}")
        self.encoder = Encoder(spec, encoder)
        self.seed = int(seed)
        self.epoch = 0
        self.report = DatasetReport()
        self.coco = load_annotations(annotations)  # broken entries are left out and listed
        self.report.skipped.extend(self.coco.skipped)
        self.ids: list[int] = []
        for image_id in sorted(self.coco.getImgIds()):
            info = self.coco.imgs[image_id]
            if not (self.images_dir / info["file_name"]).is_file():
                self.report.skipped.append(f"{info['file_name']}: image file missing")
                continue
            n = sum(1 for a in self.coco.imgToAnns[image_id] if a.get("num_keypoints", 0) > 0 and not a["iscrowd"])
            if n == 0 and skip_empty:
                continue
            self.ids.append(image_id)
            self.report.people += n
        self.report.images = len(self.ids)
        if not self.ids:
            raise PafposeError(f"{annotations}: no usable image ({self.report.summary()})")

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Each epoch draws new augmentations; the same epoch draws the same ones again."""
        self.epoch = int(epoch)

    def people(self, image_id: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """``(people (N, K, 3) in the model's skeleton, anchors (N, 3), annotations)`` of one image."""
        anns = self.coco.imgToAnns[image_id]
        keyed = [a for a in anns if a.get("num_keypoints", 0) > 0 and not a["iscrowd"]]
        if not keyed:
            return np.zeros((0, self.spec.num_keypoints, 3)), np.zeros((0, 3)), anns
        kps = np.array([a["keypoints"] for a in keyed], dtype=np.float64).reshape(-1, 17, 3)
        kps[kps[..., 2] <= 0] = 0.0
        people = convert_keypoints(kps, COCO17, self.spec.skeleton)
        people[people[..., 2] <= 0, :2] = np.nan
        boxes = np.array([a["bbox"] for a in keyed], dtype=np.float64)
        anchors = np.c_[boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2, boxes[:, 3]]
        return people, anchors, anns

    def _read(self, image_id: int) -> np.ndarray:
        from pafpose.io import read_image

        return read_image(self.images_dir / self.coco.imgs[image_id]["file_name"])

    def _fit(self, image: np.ndarray, people: np.ndarray, ignore: np.ndarray | None) -> tuple:
        """No augmentation: scale to fit the square, top-left aligned (the Estimator's grid)."""
        import cv2

        geometry = self.spec.geometry(self.size / max(image.shape[:2]))
        nh, nw = geometry.input_size(image.shape)
        crop = np.full((self.size, self.size, 3), self.input_config.pad_value, np.uint8)
        crop[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)
        out = geometry.image_to_input(people)
        mask = None
        if ignore is not None:
            mask = np.zeros((self.size, self.size), bool)
            mask[:nh, :nw] = cv2.resize(ignore.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST) > 0
        return crop, out, mask

    def sample(self, index: int) -> dict[str, Any]:
        """Sample ``index``; raises :class:`PafposeError` if its image can't be read."""
        image_id = self.ids[index]
        image = self._read(image_id)
        people, anchors, anns = self.people(image_id)
        ignore = ignore_mask_from_coco(anns, image.shape[:2]) if anns else None
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            crop, people, ignore = augment(image, people, anchors, ignore, self.spec.skeleton, rng, self.augment,
                                           fill=self.input_config.pad_value)
        else:
            crop, people, ignore = self._fit(image, people, ignore)
        targets = self.encoder(people, self.spec.field_size(self.size, self.size), ignore)
        return {"image": self.normalise(crop), "heatmaps": targets.heatmaps, "pafs": targets.pafs,
                "mask": targets.mask, "image_id": image_id, "crop": crop, "people": people}

    def normalise(self, crop: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 BGR -> (3, H, W) float32 the way the model expects (as it sees it at inference)."""
        from pafpose.preprocess import normalise  # here: importing pafpose.data needs no torch

        return np.ascontiguousarray(normalise(crop, self.input_config).transpose(2, 0, 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        """A training sample; an unreadable image is logged and replaced by the next readable one,
        and ``skipped`` says how many were passed over (workers can't share a counter)."""
        for step in range(len(self.ids)):
            i = (index + step) % len(self.ids)
            try:
                sample = self.sample(i)
            except PafposeError as err:
                log.warning("skipped: %s", err)
                continue
            out = {k: v for k, v in sample.items() if k not in ("crop", "people")}
            out["skipped"] = step
            return out
        raise PafposeError("no image of the dataset can be read")


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into tensors (a DataLoader ``collate_fn``)."""
    import torch

    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.as_tensor(np.stack(values)) if isinstance(values[0], np.ndarray) else torch.tensor(values)
    return out
