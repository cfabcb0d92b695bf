"""Poses of every photo in a folder, saved or compared to the bit: the check that a
refactoring changed no result.

Usage::

    python benchmarks/snapshot_poses.py --save before.npz      # on the old code
    python benchmarks/snapshot_poses.py --compare before.npz   # on the new code: exit 1 on any difference

Runs the default model on ../shared/images with a few option sets (plain, multi-scale +
flip, onnxruntime and openvino backends where installed), and writes or compares every
person's keypoints and score exactly.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

CONFIGS = {  # torch by name: the default became "auto" (issue 18); snapshots from before stay comparable
    "plain": {"backend": "torch"},
    "tta": {"backend": "torch", "scales": (1.0, 0.5, 1.5), "flip": True},
    "h256": {"backend": "torch", "height": 256},
    "onnxruntime": {"backend": "onnxruntime", "height": 256},
    "openvino": {"backend": "openvino", "height": 256},
}


def snapshot(images: Path) -> dict[str, np.ndarray]:
    import importlib.util

    from pafpose.predict import Estimator

    out: dict[str, np.ndarray] = {}
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for name, kwargs in CONFIGS.items():
        backend = kwargs.get("backend")
        if backend and backend != "torch" and importlib.util.find_spec(backend) is None:
            continue
        est = Estimator(device="cpu", threads=1, **kwargs)
        for p in paths:
            poses = est.predict(p)
            arr = np.array([np.append(q.keypoints.ravel(), q.score) for q in poses], dtype=np.float64)
            out[f"{name}/{p.name}"] = arr if len(poses) else np.zeros((0, 0))
    return out


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=Path, default=repo.parent / "shared" / "images")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path)
    group.add_argument("--compare", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.images.parent / "weights"))
    got = snapshot(args.images)
    if args.save:
        np.savez(args.save, **got)
        print(f"saved {len(got)} results to {args.save}")
        return 0
    ref = dict(np.load(args.compare))
    differ = [k for k in sorted(set(ref) | set(got))
              if k not in ref or k not in got or ref[k].shape != got[k].shape
              or not np.array_equal(ref[k], got[k], equal_nan=True)]
    for k in differ[:20]:
        print(f"differs: {k}")
    print(f"{len(got)} results compared with {args.compare}: {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
