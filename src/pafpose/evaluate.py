"""COCO keypoint evaluation: run a predictor over every image of an annotated set and score
the people it finds with pycocotools' COCOeval (iouType ``keypoints``, OKS).

On COCO-WholeBody ground truth (people with ``foot_kpts``, ``face_kpts``, ``lefthand_kpts`` and
``righthand_kpts``) the people are written as COCO-WholeBody results and each part is scored
as that set's official evaluation does (:func:`wholebody_eval`).

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
from pafpose.pose import Pose, as_poses

METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_LABELS = (
    ("Average Precision", "0.50:0.95", "all"), ("Average Precision", "0.50", "all"),
    ("Average Precision", "0.75", "all"), ("Average Precision", "0.50:0.95", "medium"),
    ("Average Precision", "0.50:0.95", "large"), ("Average Recall", "0.50:0.95", "all"),
    ("Average Recall", "0.50", "all"), ("Average Recall", "0.75", "all"),
    ("Average Recall", "0.50:0.95", "medium"), ("Average Recall", "0.50:0.95", "large"),
)

# ---------------------------------------------------------------------- COCO-WholeBody
#: COCO-WholeBody's OKS sigma of every point of each annotation/result array, from its official
#: evaluation (jin-s13/COCO-WholeBody, evaluation/myeval_wholebody.py; mmpose's dataset file has
#: the same 133). The body's are COCO's; the two hands share theirs.
_HAND_SIGMAS = (0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017,
                0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031)
WHOLEBODY_SIGMAS: dict[str, tuple[float, ...]] = {
    "keypoints": (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
                  0.087, 0.089, 0.089),
    "foot_kpts": (0.068, 0.066, 0.066, 0.092, 0.094, 0.094),
    "face_kpts": (0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038,
                  0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009,
                  0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007,
                  0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008,
                  0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008),
    "lefthand_kpts": _HAND_SIGMAS,
    "righthand_kpts": _HAND_SIGMAS,
}
#: The parts COCO-WholeBody reports, each with the arrays it scores (``wholebody``: all 133 points).
WHOLEBODY_PARTS: dict[str, tuple[str, ...]] = {
    "body": ("keypoints",), "foot": ("foot_kpts",), "face": ("face_kpts",), "lefthand": ("lefthand_kpts",),
    "righthand": ("righthand_kpts",), "wholebody": tuple(WHOLEBODY_SIGMAS)}
#: ``pafpose eval --metrics-json``'s names of the per-part figures: ``body_AP``, ..., ``wholebody_ARl``.
WHOLEBODY_METRICS = tuple(f"{part}_{name}" for part in WHOLEBODY_PARTS for name in METRICS)


def is_wholebody(gt: Any) -> bool:
    """Whether ground truth ``gt`` (a pycocotools ``COCO``) is COCO-WholeBody's: people carrying
    the part arrays (:func:`~pafpose.data.annotations.load_annotations` makes it all or none)."""
    anns = gt.dataset.get("annotations") or []
    return bool(anns) and all(all(k in a for k in WHOLEBODY_SIGMAS) for a in anns)


def _flat(item: dict[str, Any], keys: tuple[str, ...]) -> list[float]:
    return [v for k in keys for v in item[k]]


def _coco(gt: Any, annotations: list[dict[str, Any]]) -> Any:
    """A pycocotools ``COCO`` of ``annotations`` on ``gt``'s images and categories."""
    from pycocotools.coco import COCO

    out = COCO()
    out.dataset = {"images": gt.dataset["images"], "categories": gt.dataset.get("categories") or [{"id": 1}],
                   "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        out.createIndex()
    return out


def wholebody_eval(gt: Any, results: Sequence[dict[str, Any]],
                   image_ids: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """The ten COCO figures of each COCO-WholeBody part (:data:`WHOLEBODY_PARTS`: body, foot, face,
    lefthand, righthand, wholebody) of ``results`` (:meth:`~pafpose.pose.Poses.to_coco_wholebody`)
    on ground truth ``gt``; -1 where a figure is undefined (no ground truth of that part).

    The official evaluation is xtcocotools' COCOeval (iouType ``keypoints_body``, ``_foot``...
    ``_wholebody``, ``use_area=True``, as mmpose runs it), whose wheels are built for numpy 1;
    this is its computation on pycocotools' COCOeval, part by part, and gives its figures
    (tests/test_wholebody_coco.py holds them): each part is its arrays alone with their
    :data:`WHOLEBODY_SIGMAS`; a person with no labelled point of the part is ignored, a result
    with no point of it (every ``v`` 0) is left out; OKS is scaled by the person's ``area``
    whatever the part (the ``*_box`` and ``*_valid`` fields are not read); a result's own
    ``<part>_score`` (``foot_score``...) ranks it where given, else ``score``.
    """
    from pycocotools.cocoeval import COCOeval

    known = set(gt.getImgIds())
    for n, r in enumerate(results):
        for key, sigmas in WHOLEBODY_SIGMAS.items():
            if len(r.get(key) or ()) != 3 * len(sigmas):
                raise PafposeError(f"result {n} needs {key} of {3 * len(sigmas)} numbers: not a COCO-WholeBody result")
        if r.get("image_id") not in known:
            raise PafposeError(f"result {n} is of image {r.get('image_id')!r}, which the ground truth lacks")
    dts = [dict(r) for r in results]
    if dts:  # each result's id, and its area and box from its body keypoints, as xtcocotools' loadRes sets them
        with contextlib.redirect_stdout(io.StringIO()):
            gt.loadRes(dts)
    people = gt.dataset["annotations"]
    figures = {}
    for part, keys in WHOLEBODY_PARTS.items():
        truth = []
        for n, ann in enumerate(people, 1):  # ids from 1: pycocotools reads a match with id 0 as none
            kps = _flat(ann, keys)
            truth.append({**ann, "id": n, "keypoints": kps, "num_keypoints": sum(v > 0 for v in kps[2::3])})
        score = "score" if part == "body" else f"{part}_score"
        found = []
        for d in dts:
            kps = _flat(d, keys)
            if any(v > 0 for v in kps[2::3]):
                found.append({"id": d["id"], "image_id": d["image_id"], "category_id": d["category_id"],
                              "area": d["area"], "bbox": d["bbox"], "keypoints": kps,
                              "score": d.get(score, d["score"])})
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(_coco(gt, truth), _coco(gt, found), "keypoints")
            ev.params.kpt_oks_sigmas = np.array([s for k in keys for s in WHOLEBODY_SIGMAS[k]])
            ev.params.imgIds = sorted(known if image_ids is None else image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        figures[part] = {name: float(v) for name, v in zip(METRICS, ev.stats, strict=True)}
    return figures


def format_wholebody_table(parts: dict[str, dict[str, float]]) -> str:
    """One line per COCO-WholeBody part, the ten figures across (``-`` where undefined)."""
    lines = ["COCO-WholeBody  " + " ".join(f"{name:>6}" for name in METRICS)]
    for part, figures in parts.items():
        lines.append(f"{part:<15} " + " ".join("     -" if figures[n] < 0 else f"{figures[n]:6.3f}" for n in METRICS))
    lines.append("(OKS with each part's sigmas, at most 20 people per image; -: undefined, no ground truth of "
                 "the part in that area range)")
    return "\n".join(lines)


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
        parts: on COCO-WholeBody ground truth, the ten figures of each of its parts
            (:func:`wholebody_eval`; ``metrics`` is then its ``body``); else empty.
    """

    metrics: dict[str, float]
    results: list[dict[str, Any]]
    images: int
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        """Every figure by name: ``METRICS``, then on COCO-WholeBody :data:`WHOLEBODY_METRICS`."""
        return {**self.metrics, **{f"{part}_{name}": v for part, f in self.parts.items() for name, v in f.items()}}

    def skipped_summary(self) -> str:
        """One line: how many annotation-file entries were left out, and the first reasons."""
        return skipped_summary(self.skipped)

    def table(self) -> str:
        """The standard COCO table, one line per figure; on COCO-WholeBody, one line per part."""
        return format_wholebody_table(self.parts) if self.parts else format_table(self.metrics)


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
            to COCO-17; on COCO-WholeBody, their whole-body :attr:`~pafpose.pose.Pose.parts`).
        annotations: a COCO person-keypoints file (or COCO-WholeBody's), or a pycocotools
            ``COCO`` (best one from :func:`load_annotations`, which reports the entries it left out).
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
    wholebody = is_wholebody(gt)
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
        results.extend(as_poses(people).to_coco_wholebody(image_id) if wholebody else coco_results(people, image_id))
    if wholebody:
        parts = wholebody_eval(gt, results, image_ids)
        return Evaluation(parts["body"], results, len(image_ids), failed, seconds, skipped, parts)
    return Evaluation(coco_eval(gt, results, image_ids), results, len(image_ids), failed, seconds, skipped)
