"""Backends side by side: OpenVINO running human-pose-estimation-0001 alone (network only,
the reference) against pafpose end to end (decoded frame -> poses) on each backend.

    .venv/bin/python benchmarks/backends.py [--rounds 7] [--threads N] [--sequential]

Frames: ../shared/images photos cropped to 16:9 and resized to 1280x720, decoded once and
kept in memory, so the network input is 256x456 as in the reference. Every figure is a
median over rounds of all frames, after a warm-up round, measured in one process with the
rounds of the reference and of each backend taking turns. Figures are images/s; the ratio
is against the reference.
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


class OpenVINOAlone:
    """The reference: the IR as Open Model Zoo ships it, OpenVINO's defaults, one 256x456 input."""

    def __init__(self, xml: Path, threads: int | None) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(xml))
        model.reshape([1, 3, 256, 456])
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.request = core.compile_model(model, "CPU", config).create_infer_request()
        self.x = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 456)).astype(np.float32)

    def run(self, n: int) -> None:
        for _ in range(n):
            self.request.infer({0: self.x})


class EndToEnd:
    """pafpose, decoded frame -> poses, as `pafpose predict` runs a video (``stream()``, i.e.
    ``Estimator.pipeline``: the network on the next frame while this one is decoded, except
    for torch on the CPU), or ``sequential``: frame by frame. Without tracking, which a video
    run adds on top (``Tracker.update``: 0.3-0.5 ms a frame for 10 people, benchmarks/tracking.py),
    so that the figures stay comparable with the earlier ones."""

    def __init__(self, backend: str, threads: int | None, sequential: bool) -> None:
        from pafpose.predict import Estimator

        backend, _, precision = backend.partition(":")  # e.g. torch:bfloat16
        self.est = Estimator("human-pose-estimation-0001", backend=backend, height=256, threads=threads,
                             device="cpu", precision=precision or "auto")
        self.sequential = sequential
        self.shares: list[dict[str, float]] = []

    def run(self, images: list[np.ndarray]) -> None:
        for key in self.est.timings:
            self.est.timings[key] = 0.0
        t = time.perf_counter()
        if self.sequential:
            for im in images:
                self.est.predict(im)
        else:
            for _ in self.est.pipeline(images, track=False):  # the photos are no sequence
                pass
        elapsed = time.perf_counter() - t
        self.shares.append({k: v / elapsed for k, v in self.est.timings.items()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, help="threads for every runtime (default: each runtime's choice)")
    p.add_argument("--backends", nargs="+", help="backends, BACKEND[:PRECISION] (default: openvino onnxruntime "
                   "torch, and torch:bfloat16 on CPUs with bfloat16 instructions)")
    p.add_argument("--sequential", action="store_true", help="run pafpose frame by frame (Estimator.predict), "
                   "never overlapping the network with decoding")
    args = p.parse_args()
    shared = Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared"))
    if not (shared / "images").is_dir():
        sys.exit(f"benchmarks/backends.py: {shared}/images not found (set PAFPOSE_SHARED)")
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    if args.backends is None:
        from pafpose.predict import cpu_has_bfloat16

        args.backends = ["openvino", "onnxruntime", "torch"] + (["torch:bfloat16"] if cpu_has_bfloat16() else [])
    images = frames(shared)
    xml = next((shared / "weights" / "human-pose-estimation-0001").rglob("*.xml"))
    ref = OpenVINOAlone(xml, args.threads)
    runs = {b: EndToEnd(b, args.threads, args.sequential) for b in args.backends}
    ref.run(len(images))  # warm-up round
    for r in runs.values():
        r.run(images)
        r.shares.clear()
    times: dict[str, list[float]] = {"ref": [], **{b: [] for b in runs}}
    # Rounds interleave the reference and every backend, so that a machine that drifts
    # (other jobs, clocks) moves all of them alike; each figure is the median round.
    for _ in range(args.rounds):
        t = time.perf_counter()
        ref.run(len(images))
        times["ref"].append((time.perf_counter() - t) / len(images))
        for b, r in runs.items():
            t = time.perf_counter()
            r.run(images)
            times[b].append((time.perf_counter() - t) / len(images))
    how = "frame by frame" if args.sequential else "as pafpose predict runs a video (Estimator.pipeline)"
    ref_rate = 1.0 / statistics.median(times["ref"])
    print(f"{len(images)} frames 1280x720 -> network input 256x456, batch 1, median of {args.rounds} "
          f"interleaved rounds; pafpose {how}")
    print(f"{'OpenVINO alone (network only)':<40}{ref_rate:8.1f} images/s   1.00x   ({1000 / ref_rate:.1f} ms)")
    for b, r in runs.items():
        rate = 1.0 / statistics.median(times[b])
        share = r.shares[int(np.argsort(times[b])[len(times[b]) // 2])]
        split = ", ".join(f"{k} {100 * v:.0f} %" for k, v in share.items())
        ratios = sorted(t_ref / t for t_ref, t in zip(times["ref"], times[b], strict=True))
        print(f"{'pafpose frame->poses, ' + b:<40}{rate:8.1f} images/s   {rate / ref_rate:.2f}x   "
              f"({1000 / rate:.1f} ms: {split}; per-round ratio {ratios[0]:.2f}-{ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
