"""What the result object costs per image: ``Estimator.predict_batch`` from a decoded image
to its ``Poses`` (reading arrays, mapping people back to the image's pixels, the result's
metadata), the network left out (its fields are computed once and replayed), this checkout
side by side with an older commit's, in the same run.

Usage::

    python benchmarks/result_object.py                       # this checkout vs f7a1f2b (before issue 22)
    python benchmarks/result_object.py --baseline REV --repeat 200

Each side runs in a fresh process of its own (PYTHONPATH set to that checkout's ``src``),
alternating, on ../shared/images with the default model's decoder (torch float32 fields);
the figure is the median over the images of each image's median time, and the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(images: Path, repeat: int) -> dict[str, float]:
    """Per image, the median seconds of ``predict_batch([image])`` with the network replayed."""
    import cv2

    from pafpose.predict import Estimator

    est = Estimator(backend="torch", precision="float32", device="cpu", threads=1)
    out = {}
    for path in sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        image = cv2.imread(str(path))
        cached = est.fields([image])
        est.fields = lambda _images, cached=cached: cached  # the network's output, replayed
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            people = est.predict_batch([image])[0]
            _ = [p.keypoints for p in people]
            times.append(time.perf_counter() - t0)
        out[path.name] = statistics.median(times)
        del est.fields
    return out


def child(src: Path, images: Path, repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, __file__, "--measure", "--images", str(images), "--repeat", str(repeat)],
                       env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", default="f7a1f2b", help="the commit compared with (default: before issue 22)")
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each side")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.images.parent / "weights"))
    if args.measure:
        print(json.dumps(measure(args.images, args.repeat)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        made = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.baseline],
                              capture_output=True, text=True)
        if made.returncode != 0:  # a shallow clone, an unknown commit
            print(f"result_object.py: can't check out {args.baseline} beside this one: {made.stderr.strip()}",
                  file=sys.stderr)
            return 2
        try:
            sides: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
            for _ in range(args.rounds):
                sides["before"].append(child(base / "src", args.images, args.repeat))
                sides["now"].append(child(REPO / "src", args.images, args.repeat))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], capture_output=True)
    names = sorted(sides["now"][0])
    per = {side: [min(r[n] for r in runs) for n in names] for side, runs in sides.items()}  # best round per image
    before, now = statistics.median(per["before"]), statistics.median(per["now"])
    diffs = [b - a for a, b in zip(per["before"], per["now"], strict=True)]
    print(f"predict_batch from a decoded image to its result, network replayed ({len(names)} images of "
          f"{args.images}, {args.repeat} calls each, best of {args.rounds} alternating rounds):")
    print(f"  {args.baseline}: {before * 1e3:.3f} ms per image (median)")
    print(f"  this checkout: {now * 1e3:.3f} ms per image (median)")
    print(f"  difference: median {statistics.median(diffs) * 1e3:+.3f} ms, largest {max(diffs) * 1e3:+.3f} ms "
          "per image (target: at most +0.1 ms)")
    print(f"command: python benchmarks/result_object.py --baseline {args.baseline} --repeat {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
