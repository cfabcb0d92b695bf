"""pafpose explain IMAGE --out fig.png: what the network sees in one image.

The figure shows the input, the maximum of the keypoint heatmaps, single heatmaps, the PAF
magnitude and vectors of chosen limbs, the background map and the decoded skeletons.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="figure of heatmaps, PAFs and decoded skeletons for one image",
                       description=__doc__)
    p.add_argument("image", type=Path)
    p.add_argument("--out", type=Path, default=Path("explain.png"), help="figure file (.png, .pdf, .svg)")
    p.add_argument("--model", default="human-pose-estimation-0001")
    p.add_argument("--weights", type=Path)
    p.add_argument("--height", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--limbs", nargs="*", type=int, help="limb indices whose PAF vectors to draw")
    p.add_argument("--keypoints", nargs="*", type=int, help="keypoint indices whose heatmaps to show")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from pafpose.io import read_image
    from pafpose.predict import Estimator
    from pafpose.viz import explain_figure, save_figure

    image = read_image(args.image)
    est = Estimator(args.model, weights=args.weights, device=args.device, height=args.height)
    hm, paf, factor = est.fields([image])[0]
    people = est.predict(image)
    fig = explain_figure(image, hm.float().cpu().numpy(), paf.float().cpu().numpy(), est.spec, people, factor,
                         limbs=args.limbs or None, keypoints=args.keypoints or None)
    print(save_figure(fig, args.out))
