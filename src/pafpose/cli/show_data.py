"""pafpose show-data --annotations A.json --images DIR --out DIR: what training sees.

Draws augmented training samples of a COCO-format dataset: the crop with its keypoints and
limbs, and with --heatmaps / --paf the target fields overlaid (maximum over keypoints,
PAF magnitude), the loss mask's ignored cells hatched dark. One PNG per sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number

    p = sub.add_parser("show-data", help="draw augmented training samples with their target fields",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--annotations", type=Path, required=True, help="COCO person-keypoints JSON")
    p.add_argument("--images", type=Path, required=True, help="folder with the images it names")
    p.add_argument("--out", type=Path, default=Path("show-data"), help="output folder (default: %(default)s)")
    p.add_argument("--count", type=number(1, 10_000, integer=True), default=8, help="samples to draw")
    p.add_argument("--model", default="human-pose-estimation-0001", help="architecture or zoo name (field layout)")
    p.add_argument("--heatmaps", action="store_true", help="add the heatmap panel")
    p.add_argument("--paf", action="store_true", help="add the PAF panel")
    p.add_argument("--no-augment", action="store_true", help="whole images, as validation sees them")
    p.add_argument("--seed", type=number(0, 2**32 - 1, integer=True), default=0)
    p.set_defaults(func=run)


def overlay(crop: np.ndarray, field: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``field`` (h, w) in 0..1 as a colour map over ``crop``; masked cells darkened."""
    import cv2

    size = crop.shape[:2][::-1]
    heat = cv2.applyColorMap((np.clip(field, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST)
    out = cv2.addWeighted(crop, 0.5, heat, 0.5, 0)
    ignored = cv2.resize((mask == 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    out[ignored] = (out[ignored] * 0.3).astype(np.uint8)
    return out


def render(sample: dict[str, Any], spec: Any, heatmaps: bool, paf: bool) -> np.ndarray:
    from pafpose.draw import poses as draw_poses
    from pafpose.pose import Pose

    people = [Pose(p, 1.0, spec.skeleton) for p in sample["people"]]
    for p in people:
        p.keypoints[p.keypoints[:, 2] <= 0] = (np.nan, np.nan, 0.0)
        p.keypoints[p.present, 2] = 1.0
    panels = [draw_poses(sample["crop"], people)]
    if heatmaps:
        panels.append(overlay(sample["crop"], sample["heatmaps"][: spec.num_keypoints].max(axis=0), sample["mask"]))
    if paf:
        mag = np.hypot(sample["pafs"][spec.paf_index[:, 0]], sample["pafs"][spec.paf_index[:, 1]]).max(axis=0)
        panels.append(overlay(sample["crop"], mag, sample["mask"]))
    return np.concatenate(panels, axis=1)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pafpose.data import AugmentConfig, CocoKeypoints
    from pafpose.errors import PafposeError
    from pafpose.io import write_image_atomic
    from pafpose.models import build_architecture
    from pafpose.weights import architecture_of

    net = build_architecture(architecture_of(args.model))
    ds = CocoKeypoints(args.annotations, args.images, net.spec, net.input_config,
                       augment=None if args.no_augment else AugmentConfig(), seed=args.seed)
    print(ds.report.summary())
    written = []
    for i in tqdm(range(min(args.count, len(ds))), unit="sample"):
        try:
            sample = ds.sample(i)
        except PafposeError as err:
            print(f"pafpose: error: {err} (skipped)")
            continue
        path = args.out / f"sample_{i:04d}_{sample['image_id']}.png"
        written.append(write_image_atomic(render(sample, net.spec, args.heatmaps, args.paf), path))
    print(f"wrote {len(written)} samples under {args.out}")
    return 0
