"""Decoder ablation by COCO keypoint AP: the network runs once per image, then each decoder
configuration and person-score rule decodes the same fields.

Tune on ../shared/coco/train2017-mini (the default); run ``--set val2017-dev`` only to
report the chosen configuration at the end.

Usage::

    python benchmarks/eval_ablation.py [--set train2017-mini] [--height 368] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--set", default="train2017-mini")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated substrings of configuration names to run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    root = args.shared / "coco" / args.set
    if not (root / "person_keypoints.json").is_file():
        print(f"no {root}/person_keypoints.json: nothing to measure")
        return 0
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    from tqdm import tqdm

    from pafpose.decoder import DecoderConfig
    from pafpose.evaluate import coco_eval, load_annotations
    from pafpose.formats import coco_results
    from pafpose.io import read_image
    from pafpose.pose import Pose
    from pafpose.predict import Estimator

    gt = load_annotations(root / "person_keypoints.json")
    image_ids = sorted(gt.getImgIds())[: args.limit or None]
    plain = Estimator(device="cpu", height=args.height)
    flipped = Estimator(device="cpu", height=args.height, flip=True)
    cache = []
    for image_id in tqdm(image_ids, desc="network", unit="image"):
        img = read_image(root / "images" / gt.imgs[image_id]["file_name"])
        hm, paf, factor = plain.fields([img])[0]
        fhm, fpaf, _ = flipped.fields([img])[0]
        cache.append((image_id, factor, (hm.numpy(), paf.numpy()), (fhm.numpy(), fpaf.numpy())))

    base = DecoderConfig(fill_missing=True)  # what `pafpose eval` runs
    openpose = replace(base, peak_threshold=0.1, fill_missing=False)
    configs: list[tuple[str, DecoderConfig, bool]] = [
        ("OpenPose thresholds, no fill", openpose, False),
        ("peak 0.05 (predict default)", replace(base, fill_missing=False), False),
        ("peak 0.1 + fill", replace(openpose, fill_missing=True), False),
        ("peak 0.05 + fill (eval default)", base, False),
        ("OpenPose thresholds + flip", openpose, True),
        ("eval default + flip", base, True),
    ]
    for refine in ("quadratic", "centroid", "none"):
        configs.append((f"refine={refine}", replace(base, refine=refine), False))
    for name, value in (("fill_radius", 1.0), ("fill_radius", 2.0), ("peak_threshold", 0.03),
                        ("paf_threshold", 0.02), ("paf_threshold", 0.1), ("paf_min_fraction", 0.6),
                        ("paf_min_fraction", 0.9), ("min_keypoints", 3), ("min_keypoints", 5),
                        ("min_score", 0.1), ("min_score", 0.3), ("distance_prior", 0.0), ("distance_prior", 1.0)):
        configs.append((f"{name}={value}", replace(base, **{name: value}), False))
    if args.only:
        wanted = args.only.split(",")
        configs = [c for c in configs if any(w in c[0] for w in wanted)]

    rows = []
    for label, cfg, flip in configs:
        est = flipped if flip else plain
        est.decoder.config = cfg
        results, times = [], []
        for image_id, factor, fields, ffields in cache:
            hm, paf = ffields if flip else fields
            t0 = time.perf_counter()
            poses = est.decoder.decode(hm, paf)
            times.append(time.perf_counter() - t0)
            people = []
            for p in poses:
                k = p.keypoints.copy()
                k[:, :2] = (k[:, :2] + 0.5) / factor - 0.5
                people.append(Pose(k, p.score, p.skeleton))
            people.sort(key=lambda p: -p.score)
            results.extend(coco_results(people[:20], image_id))
        m = coco_eval(gt, results, image_ids)
        rows.append({"config": label, **{k: round(v, 4) for k, v in m.items()},
                     "decode_ms": round(statistics.median(times) * 1e3, 2)})
        print(f"{label:28s} AP {m['AP']:.3f}  AP50 {m['AP50']:.3f}  AP75 {m['AP75']:.3f}  AR {m['AR']:.3f}  "
              f"decode {statistics.median(times) * 1e3:5.1f} ms", flush=True)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}; {len(image_ids)} images of {args.set}, "
          f"height {plain.height}")
    if args.json:
        import json

        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
