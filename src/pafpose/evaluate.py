"""COCO keypoint evaluation: run a predictor over every image of an annotated set and score
the people it finds with pycocotools' COCOeval (iouType ``keypoints``, OKS).

Every image listed in the annotation file is run, people or not, so false positives on
images without people count; an image that is missing or can't be read is reported and
scores as no detections, so the evaluation always completes on the whole set. Broken
entries of the annotation file are left out of the ground truth and reported
(:mod:`pafpose.data.annotations`): the figures are never of a different set silently.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pafpose.data.annotations import load_annotations, skipped_summary
from pafpose.errors import PafposeError
from pafpose.formats import coco_results
from pafpose.pose import Pose

METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_LABELS = (
    ("Average Precision", "0.50:0.95", "all"), ("Average Precision", "0.50", "all"),
    ("Average Precision", "0.75", "all"), ("Average Precision", "0.50:0.95", "medium"),
    ("Average Precision", "0.50:0.95", "large"), ("Average Recall", "0.50:0.95", "all"),
    ("Average Recall", "0.50", "all"), ("Average Recall", "0.75", "all"),
    ("Average Recall", "0.50:0.95", "medium"), ("Average Recall", "0.50:0.95", "large"),
)


@dataclass
class Evaluation:
    """What an evaluation run produced.

    Attributes:
        metrics: the ten COCO keypoint figures by name (``METRICS``).
        results: the COCO results that were scored (image ids of the annotation file).
        images: how many images the annotation file lists.
        failed: one message per image that could not be read (scored as no detections).
        seconds: time spent reading and predicting, for images / second.
        skipped: one message per broken entry of the annotation file, left out of the
            ground truth (the figures are of the valid entries only).
    """

    metrics: dict[str, float]
    results: list[dict[str, Any]]
    images: int
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def skipped_summary(self) -> str:
        """One line: how many annotation-file entries were left out, and the first reasons."""
        return skipped_summary(self.skipped)

    def table(self) -> str:
        """The standard COCO table, one line per figure."""
        return format_table(self.metrics)


def coco_eval(gt: Any, results: Sequence[dict[str, Any]], image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """The ten COCO keypoint figures of ``results`` on ``image_ids`` (default: every image)."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(METRICS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(list(results)), "keypoints")
        ev.params.imgIds = sorted(gt.getImgIds() if image_ids is None else image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval writes -1 where a figure is undefined (no ground truth in that area range)
    return {name: float(v) for name, v in zip(METRICS, ev.stats, strict=True)}


def format_table(metrics: dict[str, float]) -> str:
    """pycocotools' summary layout, so the figures read as everyone else's."""
    lines = []
    for name, (what, iou, area) in zip(METRICS, _LABELS, strict=True):
        short = "(AP)" if what.startswith("Average Precision") else "(AR)"
        lines.append(f" {what:<18} {short} @[ IoU={iou:<9} | area={area:>6s} | maxDets= 20 ] = "
                     f"{metrics[name]:.3f}   {name}")
    return "\n".join(lines)


def evaluate(
    predict: Callable[[np.ndarray], Sequence[Pose]],
    annotations: str | Path | Any,
    images: str | Path,
    max_detections: int = 20,
    progress: bool = True,
    on_error: Callable[[str], None] | None = None,
) -> Evaluation:
    """Run ``predict`` (e.g. ``Estimator.predict``) on every annotated image and score it.

    Args:
        predict: BGR image -> people (keypoints in image pixels, any skeleton that converts
            to COCO-17).
        annotations: a COCO person-keypoints file, or a pycocotools ``COCO`` (best one from
            :func:`load_annotations`, which reports the entries it left out).
        images: folder holding the files the annotations name.
        max_detections: people kept per image, best first (COCO scores the 20 best).
        on_error: called with a message for each image that can't be read.
    """
    from tqdm import tqdm

    from pafpose.io import read_image

    if max_detections < 1:
        raise PafposeError(f"max_detections must be at least 1, got {max_detections}")
    images = Path(images)
    if not images.is_dir():
        raise PafposeError(f"{images}: no such image folder")
    gt = annotations if hasattr(annotations, "getImgIds") else load_annotations(annotations)
    skipped = list(getattr(gt, "skipped", []))
    image_ids = sorted(gt.getImgIds())
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    seconds = 0.0
    for image_id in tqdm(image_ids, unit="image", disable=not progress):
        t0 = time.perf_counter()
        try:  # one image's error (unreadable, or refused by the predictor) is that image's alone
            img = read_image(images / gt.imgs[image_id]["file_name"])
            people = sorted(predict(img), key=lambda p: -p.score)[:max_detections]
        except PafposeError as err:
            failed.append(str(err))
            if on_error is not None:
                on_error(str(err))
            continue
        seconds += time.perf_counter() - t0
        results.extend(coco_results(people, image_id))
    return Evaluation(coco_eval(gt, results, image_ids), results, len(image_ids), failed, seconds, skipped)
