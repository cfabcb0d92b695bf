"""pafpose explain IMAGE --out fig.png: what the network sees in one image.

The figure shows the input, the maximum of the keypoint heatmaps, single heatmaps, the PAF
magnitude and vectors of chosen limbs, the background map and the decoded skeletons.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number
    from pafpose.cli.options import add_model_arguments

    p = sub.add_parser("explain", help="figure of heatmaps, PAFs and decoded skeletons for one image",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", type=Path)
    p.add_argument("--out", type=Path, default=Path("explain.png"), help="figure file (.png, .pdf, .svg)")
    p.add_argument("--limbs", nargs="+", type=int, help="limb indices whose PAF vectors to draw (pafpose skeleton)")
    p.add_argument("--keypoints", nargs="+", type=int, help="keypoint indices whose heatmaps to show")
    p.add_argument("--dpi", type=number(10, 600, integer=True), default=100,
                   help="figure resolution, 10..600 (default: %(default)s; the figure is 12-16 x 9 inches)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pafpose.cli.options import make_estimator
    from pafpose.errors import PafposeError
    from pafpose.io import check_output_file, read_image
    from pafpose.viz import explain_figure, save_figure

    check_output_file(args.out, "--out")  # before the model runs, naming the user's path
    image = read_image(args.image)
    est = make_estimator(args)
    for name, values, n in (("--limbs", args.limbs, len(est.spec.limbs)),
                            ("--keypoints", args.keypoints, est.spec.num_keypoints)):
        if values and not all(0 <= v < n for v in values):
            raise PafposeError(f"{name} must be indices in 0..{n - 1} for {est.spec.skeleton.name}, got {values}")
    hm, paf, geometry = est.fields([image])[0]
    people = est.predict(image)
    fig = explain_figure(image, hm.float().cpu().numpy(), paf.float().cpu().numpy(), est.spec, people, geometry,
                         limbs=args.limbs, keypoints=args.keypoints)
    print(f"{len(people)} people; wrote {save_figure(fig, args.out, dpi=args.dpi)}")
    return 0
