"""Tracker cost per frame with and without whole-body parts (issue 23): the same generated
people tracked body only and with hands, face and feet (6 + 21 + 21 + 70 more points each).

    .venv/bin/python benchmarks/tracking_parts.py [--people 10] [--frames 300] [--repeat 5]

People: COCO-18 bodies moving with noise, 10 % of keypoints missing, each with both hands,
a face and feet (5 % of their points missing). Online (``Tracker``): the median time of a
frame's ``update`` after 20 warm-up frames, the best of ``--repeat`` runs; offline
(``OfflineTracker``, ``max_gap=3``): the whole sequence's push and flush time per frame,
the best of the runs. Building the poses is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pafpose.pose import Pose
from pafpose.skeleton import COCO18, PART_KEYPOINTS
from pafpose.tracking import OfflineTracker, Tracker, TrackerConfig


def people(seed: int, count: int, frames: int, parts: bool) -> list[list[Pose]]:
    """``frames`` frames of ``count`` moving people, with or without their parts."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([50, 50], [1800, 1000], size=(count, 1, 2)) + rng.normal(0, 40, size=(count, 18, 2))
    shapes = {name: rng.normal(0, 10, size=(count, len(names), 2)) for name, names in PART_KEYPOINTS.items()}
    vel = rng.normal(0, 3, size=(count, 1, 2))
    out = []
    for f in range(frames):
        pts = base + vel * f + rng.normal(0, 2, size=base.shape)
        kp = np.concatenate([pts, np.full((count, 18, 1), 0.8)], axis=2)
        kp[rng.random((count, 18)) < 0.1] = [np.nan, np.nan, 0.0]
        frame = []
        for i in range(count):
            extra = {}
            if parts:
                for name, shape in shapes.items():
                    k = np.concatenate([pts[i, :1] + shape[i] + rng.normal(0, 1.5, shape[i].shape),
                                        np.full((len(shape[i]), 1), 0.7)], axis=1)
                    k[rng.random(len(k)) < 0.05] = [np.nan, np.nan, 0.0]
                    extra[name] = k
            frame.append(Pose(kp[i], 0.8, COCO18, parts=extra))
        out.append(frame)
    return out


def online_ms(seq: list[list[Pose]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        tracker, times = Tracker(), []
        for poses in seq:
            t0 = time.perf_counter()
            tracker.update(poses)
            times.append(time.perf_counter() - t0)
        best = min(best, 1e3 * statistics.median(times[20:]))
    return best


def offline_ms(seq: list[list[Pose]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        tracker = OfflineTracker(TrackerConfig(max_gap=3))
        t0 = time.perf_counter()
        for poses in seq:
            tracker.push(poses)
        tracker.flush()
        best = min(best, 1e3 * (time.perf_counter() - t0) / len(seq))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{args.people} people, {args.frames} frames\n")
    print("| tracker | body only ms/frame | with parts ms/frame | ratio |")
    print("| --- | --- | --- | --- |")
    body, full = (people(args.seed, args.people, args.frames, parts) for parts in (False, True))
    for name, measure in (("online", online_ms), ("offline", offline_ms)):
        a, b = measure(body, args.repeat), measure(full, args.repeat)
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
