"""pafpose eval --annotations A.json --images DIR: COCO keypoint AP that anyone can reproduce.

Runs the model over every image the annotation file lists (images without people too, so
false positives count), converts the people to COCO-17 results and scores them with
pycocotools' COCOeval (iouType keypoints). Prints the standard table and images/second;
--out keeps the results, --metrics-json the ten figures as JSON for tools (with how many
images were run, how many were unreadable, and how many annotation-file entries were
skipped). A missing or unreadable image is reported, counted, and scores as no detections.
Broken entries of the annotation file (wrong types, missing keys, NaN or absurd numbers)
are left out of the ground truth and reported; output paths are checked before the run.

On COCO-WholeBody ground truth (people with foot_kpts, face_kpts, lefthand_kpts and
righthand_kpts) the people are written as COCO-WholeBody results (their whole-body parts,
zeros where they have none) and scored as its official evaluation (xtcocotools' COCOeval,
as mmpose runs it) does: one line per part (body, foot, face, lefthand, righthand,
wholebody), each part with its own OKS sigmas; --metrics-json adds body_AP ... wholebody_ARl
to the ten figures, which are then the body's.

Unlike predict, eval completes every person by default (--fill-missing): COCO's OKS
scores every labelled keypoint, and a keypoint the grouping left out is placed at the
strongest heatmap response near the person instead of scoring nothing. --no-fill-missing
scores exactly what `pafpose predict` reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number
    from pafpose.cli.options import add_model_arguments

    p = sub.add_parser("eval", help="COCO keypoint AP of a model on an annotated image set",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--annotations", type=Path, required=True, help="COCO person-keypoints JSON")
    p.add_argument("--images", type=Path, required=True, help="folder with the images it names")
    p.add_argument("--max-detections", type=number(1, 1000, integer=True), default=20,
                   help="people kept per image (COCO scores 20)")
    p.add_argument("--out", type=Path, help="write the COCO results here")
    p.add_argument("--metrics-json", type=Path, help="write {\"AP\": ..., \"AP50\": ..., ...} here (on COCO-WholeBody "
                   "also \"body_AP\" ... \"wholebody_ARl\")")
    add_model_arguments(p, fill_missing=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pafpose.cli.options import make_estimator, warn
    from pafpose.errors import PafposeError
    from pafpose.estimator_config import DEFAULT_MODEL
    from pafpose.evaluate import WHOLEBODY_SIGMAS, evaluate, load_annotations
    from pafpose.formats import write_json_atomic
    from pafpose.io import check_output_file

    for option, path in (("--out", args.out), ("--metrics-json", args.metrics_json)):
        if path is None:
            continue
        if path.resolve() == args.annotations.resolve():
            raise PafposeError(f"{option} {path}: is the annotation file; it would be overwritten")
        check_output_file(path, option)  # before the work, not after it
    gt = load_annotations(args.annotations)  # a bad file fails before the model loads
    if not args.images.is_dir():
        raise PafposeError(f"{args.images}: no such image folder")
    if gt.skipped:
        warn(f"{args.annotations}: {gt.summary()}; scoring the valid entries only")
    from pafpose.evaluate import is_wholebody

    if is_wholebody(gt) and not args.parts:  # COCO-WholeBody ground truth: find what it scores
        args.parts = ["wholebody"]
    est = make_estimator(args)
    ev = evaluate(est.predict, gt, args.images, max_detections=args.max_detections,
                  on_error=lambda msg: warn(f"error: {msg} (scored as no detections)"))
    part_keys = [key for key in WHOLEBODY_SIGMAS if key != "keypoints"]
    if ev.parts and not any(v > 0 for r in ev.results for key in part_keys for v in r[key][2::3]):
        warn("no whole-body point was found (feet, face, hands): those parts score 0")
    if args.out:
        write_json_atomic(ev.results, args.out)
    if args.metrics_json:
        write_json_atomic({**{k: round(v, 6) for k, v in ev.figures().items()}, "images": ev.images,
                           "unreadable": len(ev.failed), "skipped_entries": len(ev.skipped)}, args.metrics_json)
    print(ev.table())
    done = ev.images - len(ev.failed)
    rate = f"{done / ev.seconds:.2f} images/s" if ev.seconds > 0 else "no image read"
    tta = f"scales {' '.join(f'{s:g}' for s in est.scales)}{', flip' if est.flip else ''}"
    name = args.model or args.weights or DEFAULT_MODEL
    print(f"{name} ({est.config.backend} {est.config.precision}), height {est.height}, {tta}: {ev.images} images, "
          f"{len(ev.results)} people, "
          f"{len(ev.failed)} unreadable, {len(ev.skipped)} annotation-file entries skipped; {rate}")
    for path in (args.out, args.metrics_json):
        if path:
            print(f"wrote {path}")
    sys.stdout.flush()
    return 1 if ev.failed else 0
