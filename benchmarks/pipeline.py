"""End-to-end pipeline benchmark: images/s of the Estimator, split by stage.

Stages per image (batch 1, default model and height): read (cv2 decode of the file),
preprocess (resize, pad, normalise), network, decode (fields -> people in image pixels).
Each image is run ``--repeats`` times after a warm-up; medians per image are summed.
Then the real command, ``pafpose predict`` on the same folder (JSON written), in a fresh
process: its own figure of time per image after start-up, and its peak memory.

Usage::

    python benchmarks/pipeline.py [--shared ../shared] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--model", default="human-pose-estimation-0001")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backend", default="torch", help="the Estimator's backend (default torch, which the "
                        "recorded figures use; auto is the Estimator's own default)")
    args = parser.parse_args(argv)
    images_dir = args.shared / "images"
    if not images_dir.is_dir():
        print(f"no images under {images_dir}: nothing to measure")
        return 0
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    if args.threads:
        torch.set_num_threads(args.threads)
    from pafpose.io import read_image
    from pafpose.predict import Estimator, to_image

    est = Estimator(args.model, device="cpu", backend=args.backend)
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    stages: dict[str, list[float]] = {"read": [], "preprocess": [], "network": [], "decode": []}
    people = 0
    for path in files:
        per: dict[str, list[float]] = {k: [] for k in stages}
        for rep in range(args.repeats + 1):
            t0 = time.perf_counter()
            img = read_image(path)
            t1 = time.perf_counter()
            g = est._geometry(img.shape, 1.0)
            x = est._batch([est._prepare(img, g)])
            t2 = time.perf_counter()
            hm, paf = est._run(x)
            t3 = time.perf_counter()
            poses = to_image(est.decoder.decode(hm[0], paf[0]), g)
            t4 = time.perf_counter()
            if rep:  # the first run is a warm-up
                for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    per[key].append(dt)
        people += len(poses)
        for key in stages:
            stages[key].append(statistics.median(per[key]))
    total = {k: float(np.sum(v)) for k, v in stages.items()}
    n = len(files)
    all_ms = sum(total.values()) / n * 1e3
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"torch threads {torch.get_num_threads()}, {n} images from {images_dir}, {people} people found, "
          f"height {est.height}, model {args.model}")
    for key, value in total.items():
        print(f"  {key:10s} {value / n * 1e3:8.2f} ms/image  {value / sum(total.values()):6.1%}")
    not_net = (total["preprocess"] + total["decode"]) / (total["preprocess"] + total["network"] + total["decode"])
    print(f"  end to end {all_ms:8.2f} ms/image = {1e3 / all_ms:.1f} images/s "
          f"(from a decoded frame: {n / (sum(total.values()) - total['read']):.1f} images/s)")
    print(f"  preprocess + decode = {not_net:.1%} of frame -> poses (target <= 10 %)")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    exe = Path(sys.executable).with_name("pafpose")
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(exe), "predict", str(images_dir), "--out", out, "--model", args.model, "--backend", args.backend]
        r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    lines = [line for line in r.stdout.splitlines() if not line.startswith("network:")]  # the summary, not the
    summary = lines[0] if r.returncode == 0 and lines else f"failed: {r.stderr.strip()}"  # backend line above it
    print(f"pafpose predict {images_dir} (fresh process): {summary}")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
