"""Training-data throughput: augmented samples (read, augment, encode targets) per second.

One process (= one core) over ../shared/coco/train2017-mini, then a DataLoader with 2
workers. Crop 368, the human-pose-estimation-0001 field layout (COCO-18, stride 8).

Usage::

    python benchmarks/data.py [--shared ../shared] [--samples 176]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--samples", type=int, default=176)
    args = parser.parse_args(argv)
    root = args.shared / "coco" / "train2017-mini"
    if not (root / "person_keypoints.json").is_file():
        print(f"no {root}: nothing to measure")
        return 0
    import torch

    from pafpose.data import CocoKeypoints, collate
    from pafpose.models import build_architecture

    net = build_architecture("human-pose-estimation-0001")
    ds = CocoKeypoints(root / "person_keypoints.json", root / "images", net.spec, net.input_config)
    n = min(args.samples, len(ds))
    ds[0]
    t0 = time.perf_counter()
    for i in range(n):
        ds[i]
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n):
        ds._read(ds.ids[i])
    read = time.perf_counter() - t0
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"1 process: {n / one:.1f} samples/s ({one / n * 1e3:.1f} ms each, of which reading the image "
          f"{read / n * 1e3:.1f} ms)")
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate)
    t0 = time.perf_counter()
    seen = sum(len(batch["image_id"]) for batch in loader)
    two = time.perf_counter() - t0
    print(f"DataLoader, 2 workers, batch 8: {seen / two:.1f} samples/s (incl. worker start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
