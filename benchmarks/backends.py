"""Backends side by side: OpenVINO running human-pose-estimation-0001 alone (network only,
the reference) against pafpose end to end (decoded frame -> poses) on each backend.

    .venv/bin/python benchmarks/backends.py [--rounds 5] [--threads N]

Frames: ../shared/images photos cropped to 16:9 and resized to 1280x720, decoded once and
kept in memory, so the network input is 256x456 as in the reference. Every figure is a
median over rounds of all frames, after a warm-up round, measured in the same process one
after the other. Figures are images/s; the ratio is against the reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def frames(shared: Path) -> list[np.ndarray]:
    out = []
    for p in sorted((shared / "images").glob("*.*")):
        im = cv2.imread(str(p))
        if im is None:
            continue
        h, w = im.shape[:2]
        if w / h > 16 / 9:
            cw = round(h * 16 / 9)
            im = im[:, (w - cw) // 2 : (w - cw) // 2 + cw]
        else:
            ch = round(w * 9 / 16)
            im = im[(h - ch) // 2 : (h - ch) // 2 + ch]
        out.append(cv2.resize(im, (1280, 720), interpolation=cv2.INTER_AREA))
    return out


def openvino_alone(xml: Path, rounds: int, n: int, threads: int | None) -> float:
    """The reference: the IR as Open Model Zoo ships it, OpenVINO's defaults, one 256x456 input."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(xml))
    model.reshape([1, 3, 256, 456])
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    request = core.compile_model(model, "CPU", config).create_infer_request()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 456)).astype(np.float32)
    for _ in range(n):
        request.infer({0: x})
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            request.infer({0: x})
        times.append((time.perf_counter() - t) / n)
    return 1.0 / statistics.median(times)


def pafpose_end_to_end(backend: str, images: list[np.ndarray], rounds: int, threads: int | None) -> tuple[float, dict]:
    from pafpose.predict import Estimator

    est = Estimator("human-pose-estimation-0001", backend=backend, height=256, threads=threads, device="cpu")
    for im in images:
        est.predict(im)
    times, shares = [], []
    for _ in range(rounds):
        for key in est.timings:
            est.timings[key] = 0.0
        t = time.perf_counter()
        for _ in est.pipeline(images):  # as `pafpose predict` runs a video: decoding overlaps the next frame
            pass
        elapsed = time.perf_counter() - t
        times.append(elapsed / len(images))
        shares.append({k: v / elapsed for k, v in est.timings.items()})
    best = shares[int(np.argsort(times)[len(times) // 2])]
    return 1.0 / statistics.median(times), best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, help="threads for every runtime (default: each runtime's choice)")
    p.add_argument("--backends", nargs="+", default=["openvino", "onnxruntime", "torch"])
    args = p.parse_args()
    shared = Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared"))
    if not (shared / "images").is_dir():
        sys.exit(f"benchmarks/backends.py: {shared}/images not found (set PAFPOSE_SHARED)")
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    images = frames(shared)
    xml = next((shared / "weights" / "human-pose-estimation-0001").rglob("*.xml"))
    ref = openvino_alone(xml, args.rounds, len(images), args.threads)
    print(f"{len(images)} frames 1280x720 -> network input 256x456, batch 1, median of {args.rounds} rounds")
    print(f"{'OpenVINO alone (network only)':<40}{ref:8.1f} images/s   1.00x   ({1000 / ref:.1f} ms)")
    for backend in args.backends:
        rate, share = pafpose_end_to_end(backend, images, args.rounds, args.threads)
        split = ", ".join(f"{k} {100 * v:.0f} %" for k, v in share.items())
        print(f"{'pafpose frame->poses, ' + backend:<40}{rate:8.1f} images/s   {rate / ref:.2f}x   "
              f"({1000 / rate:.1f} ms: {split})")


if __name__ == "__main__":
    main()
