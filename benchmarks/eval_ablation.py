"""Decoder ablation by COCO keypoint AP: the network runs once per image, then each decoder
configuration and person-score rule decodes the same fields.

Tune on ../shared/coco/train2017-mini (the default); run ``--set val2017-dev`` only to
report the chosen configuration at the end.

Usage::

    python benchmarks/eval_ablation.py [--set train2017-mini] [--height 368] [--json out.json]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import _coco_set

Post = Callable[[list[Any]], list[Any]] | None


def oks_nms(people: list[Any], threshold: float) -> list[Any]:
    """Drop a person whose OKS with a better-scored one exceeds ``threshold`` (COCO sigmas)."""
    sigmas = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
    people = sorted(people, key=lambda p: -p.score)
    kps = [p.to_coco17().keypoints for p in people]
    keep: list[int] = []
    for i, a in enumerate(kps):
        def oks(b: np.ndarray, a: np.ndarray = a) -> float:
            ok = np.isfinite(a[:, 0]) & np.isfinite(b[:, 0])
            pts = b[np.isfinite(b[:, 0]), :2]
            if not ok.any() or len(pts) < 2:
                return 0.0
            area = max(float(np.prod(pts.max(0) - pts.min(0))), 1.0)
            d2 = ((a[ok, :2] - b[ok, :2]) ** 2).sum(1)
            return float(np.mean(np.exp(-d2 / (2 * area * (2 * sigmas[ok]) ** 2))))

        if all(oks(kps[j]) < threshold for j in keep):
            keep.append(i)
    return [people[i] for i in keep]


def main(argv: list[str] | None = None) -> int:
    parser = _coco_set.parser(__doc__)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0], help="test-time scales, e.g. 1 0.5 1.5 2")
    parser.add_argument("--only", default="", help="comma-separated substrings of configuration names to run")
    args = parser.parse_args(argv)
    found = _coco_set.load(args)
    if found is None:
        return 0
    root, gt, image_ids = found
    from tqdm import tqdm

    from pafpose.decoder import DecoderConfig
    from pafpose.evaluate import coco_eval
    from pafpose.formats import coco_results
    from pafpose.io import read_image
    from pafpose.pose import Pose
    from pafpose.predict import Estimator, to_image

    base = DecoderConfig(fill_missing=True)  # what `pafpose eval` runs
    openpose = replace(base, peak_threshold=0.1, fill_missing=False)
    configs: list[tuple[str, DecoderConfig, bool, Post]] = [
        ("OpenPose thresholds, no fill", openpose, False, None),
        ("peak 0.05 (predict default)", replace(base, fill_missing=False), False, None),
        ("peak 0.1 + fill", replace(openpose, fill_missing=True), False, None),
        ("peak 0.05 + fill (eval default)", base, False, None),
        ("OpenPose thresholds + flip", openpose, True, None),
        ("peak 0.1 + fill + flip", replace(openpose, fill_missing=True), True, None),
        ("eval default + flip", base, True, None),
    ]
    for refine in ("quadratic", "centroid", "none"):
        configs.append((f"refine={refine}", replace(base, refine=refine), False, None))
    for name, value in (("fill_radius", 1.0), ("fill_radius", 2.0), ("peak_threshold", 0.03),
                        ("paf_threshold", 0.02), ("paf_threshold", 0.1), ("paf_min_fraction", 0.6),
                        ("paf_min_fraction", 0.9), ("min_keypoints", 3), ("min_keypoints", 5),
                        ("min_score", 0.1), ("min_score", 0.3), ("distance_prior", 0.0), ("distance_prior", 1.0)):
        configs.append((f"{name}={value}", replace(base, **{name: value}), False, None))
    # tried and not kept: person scores for COCO ranking, OKS-NMS between people, and a
    # global shift of every keypoint (a check of the coordinate convention)
    num_kp = 18  # the COCO-18 people human-pose-estimation-0001 predicts
    rescore = {
        "score x sqrt(found/K)": lambda p: p.score * np.sqrt(np.isfinite(p.keypoints[:, 0]).sum() / num_kp),
        "score x mean keypoint score": lambda p: p.score * float(np.mean(p.keypoints[:, 2])),
        "score = mean keypoint score": lambda p: float(np.mean(p.keypoints[:, 2])),
    }
    for label, rule in rescore.items():
        configs.append((label, base, False, lambda people, rule=rule: [Pose(p.keypoints, rule(p), p.skeleton)
                                                                       for p in people]))
    configs.append(("OKS-NMS 0.8 between people", base, False, lambda people: oks_nms(people, 0.8)))
    for dx, dy in ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)):
        configs.append((f"shift ({dx:+g}, {dy:+g}) image px", base, False,
                        lambda people, d=(dx, dy, 0.0): [Pose(p.keypoints + np.array(d), p.score, p.skeleton)
                                                           for p in people]))
    if args.only:
        wanted = args.only.split(",")
        configs = [c for c in configs if any(w in c[0] for w in wanted)]

    scales = tuple(args.scales)
    plain = Estimator(device="cpu", backend="torch", height=args.height, scales=scales)
    flipped = Estimator(device="cpu", backend="torch", height=args.height, scales=scales, flip=True)
    need_plain, need_flip = any(not c[2] for c in configs), any(c[2] for c in configs)
    cache = []
    for image_id in tqdm(image_ids, desc="network", unit="image"):
        img = read_image(root / "images" / gt.imgs[image_id]["file_name"])
        fields = ffields = None
        if need_plain:
            hm, paf, geometry = plain.fields([img])[0]
            fields = (hm.numpy(), paf.numpy())
        if need_flip:
            fhm, fpaf, geometry = flipped.fields([img])[0]
            ffields = (fhm.numpy(), fpaf.numpy())
        cache.append((image_id, geometry, fields, ffields))

    rows = []
    for label, cfg, flip, post in configs:
        est = flipped if flip else plain
        est.decoder.config = cfg
        results, times = [], []
        for image_id, geometry, fields, ffields in cache:
            hm, paf = ffields if flip else fields
            t0 = time.perf_counter()
            poses = est.decoder.decode(hm, paf)
            times.append(time.perf_counter() - t0)
            people = list(to_image(poses, geometry))
            if post is not None:
                people = post(people)
            people.sort(key=lambda p: -p.score)
            results.extend(coco_results(people[:20], image_id))
        m = coco_eval(gt, results, image_ids)
        rows.append({"config": label, **{k: round(v, 4) for k, v in m.items()},
                     "decode_ms": round(statistics.median(times) * 1e3, 2)})
        print(f"{label:28s} AP {m['AP']:.3f}  AP50 {m['AP50']:.3f}  AP75 {m['AP75']:.3f}  AR {m['AR']:.3f}  "
              f"decode {statistics.median(times) * 1e3:5.1f} ms", flush=True)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}; {len(image_ids)} images of {args.set}, "
          f"height {plain.height}, scales {scales}")
    if args.json:
        import json

        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
