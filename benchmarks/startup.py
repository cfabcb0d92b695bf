"""Start-up cost of loading pretrained weights: parsing the published file vs the converted cache.

Each measurement runs in a fresh Python process (so nothing is cached in memory), with a
fresh ``PAFPOSE_HOME``: the first load parses the published format and writes a converted
``.pt`` state dict into the cache; the second load reads that instead.

Usage::

    python benchmarks/startup.py [--shared ../shared] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import time, sys
t0 = time.perf_counter()
import pafpose.weights as W
t1 = time.perf_counter()
W.load(sys.argv[1])
print(f"{t1 - t0:.4f} {time.perf_counter() - t1:.4f}")
"""


def timed_load(name: str, env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, name], env=env, capture_output=True, text=True, check=True)
    imp, load = out.stdout.split()
    return float(imp), float(load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    weights = args.shared / "weights"
    if not weights.is_dir():
        print(f"no weights under {weights}: nothing to measure")
        return 0
    os.environ["PAFPOSE_WEIGHTS_PATH"] = str(weights)
    from pafpose.weights import ZOO
    from pafpose.weights._download import _find_in_mirrors

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print("model                              file load ms   converted load ms   speed-up   (median of "
          f"{args.repeats}; `import pafpose.weights` itself: see last column)")
    for name, cfg in ZOO.items():
        if not all(_find_in_mirrors(wf) for wf in cfg.files):
            continue  # not in ../shared (or no hash/folder identifies it there)
        first, second, imports = [], [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as home:
                env = {**os.environ, "PAFPOSE_HOME": home, "PAFPOSE_WEIGHTS_PATH": str(weights), "PAFPOSE_OFFLINE": "1"}
                try:
                    imp, a = timed_load(name, env)
                    _, b = timed_load(name, env)
                except subprocess.CalledProcessError as err:
                    print(f"{name:34s} failed: {err.stderr.strip().splitlines()[-1]}")
                    break
                first.append(a)
                second.append(b)
                imports.append(imp)
        if first:
            f, s = statistics.median(first) * 1e3, statistics.median(second) * 1e3
            print(f"{name:34s} {f:12.0f} {s:19.0f} {f / s:9.1f}x   import {statistics.median(imports) * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
