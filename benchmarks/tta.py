"""Test-time augmentation: where to average the fields of several scales, measured by COCO AP.

The Estimator averages scales at *feature* resolution (each scale's fields resampled onto
one scale's cell grid, then decoded with sub-cell peak refinement). The anchors' protocol
(Lightweight OpenPose's val.py) upsamples every scale's maps to *input* resolution first
and decodes there. This script runs the network once per image, scale and flip, then
decodes the same outputs both ways and reports COCO keypoint AP and the time of
averaging + decoding per image.

Runs on ../shared/coco/train2017-mini (the tuning set; val2017-dev is kept for the
evaluation issue's final figures). About 5 minutes on a 2-core CPU.

Usage::

    python benchmarks/tta.py [--shared ../shared] [--limit N] [--json out.json]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

import _coco_set

SCALES = (1.0, 0.5, 1.5, 2.0)


def resample(field: torch.Tensor, f_base: float, f: float, stride: int, out_stride: int,
             out_shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling of a stride-``stride`` field (input scaled by ``f``) onto the grid
    of stride ``out_stride`` over the input scaled by ``f_base``."""
    off, out_off = (stride - 1) / 2, (out_stride - 1) / 2
    _, _, h, w = field.shape

    def coords(n: int, size: int) -> torch.Tensor:
        centres = torch.arange(n, dtype=torch.float32) * out_stride + out_off
        img = (centres + 0.5) / f_base - 0.5
        cell = ((img + 0.5) * f - 0.5 - off) / stride
        return cell / max(size - 1, 1) * 2 - 1

    gy, gx = torch.meshgrid(coords(out_shape[0], h), coords(out_shape[1], w), indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None]
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)


def main(argv: list[str] | None = None) -> int:
    parser = _coco_set.parser(__doc__)
    parser.add_argument("--parts", default="tta,resize", help="tta (where to average), resize (shrinking method)")
    args = parser.parse_args(argv)
    found = _coco_set.load(args)
    if found is None:
        return 0
    root, gt, image_ids = found
    from tqdm import tqdm

    from pafpose.decoder import Decoder
    from pafpose.evaluate import coco_eval
    from pafpose.formats import coco_results
    from pafpose.io import read_image
    from pafpose.predict import Estimator, to_image

    est = Estimator(device="cpu", backend="torch", flip=True)
    spec, s = est.spec, est.spec.stride
    nh = spec.num_heatmaps
    fine_spec = replace(spec, stride=1)
    fine_decoder = Decoder(fine_spec, est.decoder.config)

    # network outputs once: per image, per scale, (plain, flip-averaged) fields on their own grid
    parts = set(args.parts.split(","))
    rows: list[dict] = []
    cache = []
    net_s = []
    for image_id in tqdm(image_ids if "tta" in parts else [], desc="network", unit="image"):
        img = read_image(root / "images" / gt.imgs[image_id]["file_name"])
        per_scale = {}
        t0 = time.perf_counter()
        for scale in SCALES:
            g = est._geometry(img.shape, scale)
            f = g.fx
            a = est._prepare(img, g)
            x = est._batch([a])
            gh, gw = -(-a.shape[0] // s), -(-a.shape[1] // s)
            with torch.inference_mode():
                hm, paf = est.backend(x)
                fh, fp = est.backend(torch.flip(x, dims=[2]))  # NHWC pixels: mirror the width
                fh = torch.flip(fh, dims=[3])[:, est._hm_src]
                fp = torch.flip(fp, dims=[3])[:, est._paf_src] * est._paf_sign
            plain = torch.cat([hm, paf], 1)[:, :, :gh, :gw]
            flipped = torch.cat([(hm + fh) / 2, (paf + fp) / 2], 1)[:, :, :gh, :gw]
            per_scale[scale] = (f, a.shape[:2], plain, flipped)
        net_s.append(time.perf_counter() - t0)
        cache.append((image_id, per_scale))

    configs = [
        ("1 scale", (1.0,), False),
        ("1 scale + flip", (1.0,), True),
        ("4 scales + flip", SCALES, True),
        ("4 scales + flip, grid of scale 2", (2.0, 1.5, 1.0, 0.5), True),
    ]
    for label, scales, flip in configs if "tta" in parts else []:
        for where in ("feature", "input"):
            results, times = [], []
            for image_id, per_scale in cache:
                t0 = time.perf_counter()
                f_base, (h_base, w_base), _, _ = per_scale[scales[0]]
                if where == "feature":
                    out_stride, out_shape, decoder = s, (-(-h_base // s), -(-w_base // s)), est.decoder
                else:
                    out_stride, out_shape, decoder = 1, (h_base, w_base), fine_decoder
                parts = []
                for scale in scales:
                    f, _, plain, flipped = per_scale[scale]
                    field = flipped if flip else plain
                    if out_stride != s or scale != scales[0]:
                        field = resample(field, f_base, f, s, out_stride, out_shape)
                    parts.append(field)
                mean = torch.stack(parts).mean(0)[0]
                people = to_image(decoder.decode(mean[:nh], mean[nh:]), f_base)
                times.append(time.perf_counter() - t0)
                results.extend(coco_results(people, image_id))
            m = coco_eval(gt, results, image_ids)
            ap, ap50 = m["AP"], m["AP50"]
            rows.append({"config": label, "average_at": where, "AP": round(ap, 4), "AP50": round(ap50, 4),
                         "ms_per_image": round(statistics.median(times) * 1e3, 2)})
            print(f"{label:34s} {where:8s} AP {ap:.3f}  AP50 {ap50:.3f}  "
                  f"average+decode {statistics.median(times) * 1e3:7.1f} ms/image (median)", flush=True)
    # shrinking: area averaging (the Estimator's) against bicubic (the reference recipes'), 1 scale
    import cv2

    for name, interp in ((("area", cv2.INTER_AREA), ("linear", cv2.INTER_LINEAR), ("cubic", cv2.INTER_CUBIC))
                         if "resize" in parts else ()):
        results = []
        for image_id in image_ids:
            img = read_image(root / "images" / gt.imgs[image_id]["file_name"])
            f = est._factor(img.shape, 1.0)
            size = (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f)))
            a = cv2.resize(img, size, interpolation=interp if f < 1 else cv2.INTER_CUBIC)
            with torch.inference_mode():
                hm, paf = est.backend(est._batch([a]))
            gh, gw = -(-a.shape[0] // s), -(-a.shape[1] // s)
            people = to_image(est.decoder.decode(hm[0, :, :gh, :gw], paf[0, :, :gh, :gw]), f)
            results.extend(coco_results(people, image_id))
        m = coco_eval(gt, results, image_ids)
        ap, ap50 = m["AP"], m["AP50"]
        rows.append({"config": f"1 scale, shrink by {name}", "AP": round(ap, 4), "AP50": round(ap50, 4)})
        print(f"1 scale, shrink by {name:5s} AP {ap:.3f}  AP50 {ap50:.3f}", flush=True)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    if net_s:
        print(f"{len(image_ids)} images of {args.set}; network for all scales and flips: "
              f"{statistics.median(net_s):.2f} s/image (median)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
