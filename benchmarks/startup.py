"""Start-up: loading pretrained weights, and the first `pafpose predict` as a newcomer runs it.

``weights``: each load runs in a fresh Python process (so nothing is cached in memory), with a
fresh ``PAFPOSE_HOME``: the first load parses the published format and writes a converted
``.pt`` state dict into the cache; the second load reads that instead.

``commands``: the commands themselves, before (``--backend torch``, the default until issue 18)
and after (no option: ``--backend auto``), each in a fresh process, wall time seen from outside
(interpreter start included): ``make demo``'s command (``pafpose predict
../shared/images/p3_dance.png --out DIR --save-images``, after the Makefile's one-time set-up)
and ``pafpose predict photo.jpg`` (a ../shared photo), each with a cold cache (an empty
``PAFPOSE_HOME``: weights converted, the network exported for OpenVINO) and again warm; then
throughput, warm: ``pafpose predict ../shared/images`` and ``pafpose predict
../shared/videos/street.avi`` (the rate it reports, start-up excluded). The variants take turns
in every repeat; figures are medians.

Usage::

    python benchmarks/startup.py [--shared ../shared] [--repeats 3] [--part weights|commands|all]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

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


VARIANTS = {"before: --backend torch": ["--backend", "torch"], "after: --backend auto (default)": []}


def run_predict(source: Path, out: Path, home: Path, extra: list[str], weights: Path) -> dict:
    """``pafpose predict`` in a fresh process: wall seconds, what it says it ran, its per-item rate."""
    env = {**os.environ, "PAFPOSE_HOME": str(home), "PAFPOSE_WEIGHTS_PATH": str(weights), "PAFPOSE_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pafpose.cli", "predict", str(source), "--out", str(out), *extra]
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    network = next((line.split(":", 1)[1].split("(")[0].strip() for line in r.stdout.splitlines()
                    if line.startswith("network:")), "?")
    rate = re.search(r"; (\d+) ms each \(([\d.]+)/s\), after ([\d.]+) s start-up", r.stdout)
    if rate is None:
        raise SystemExit(f"no rate in the output of {' '.join(cmd)}:\n{r.stdout}")
    return {"wall": wall, "network": network, "ms_each": float(rate[1]), "startup": float(rate[3])}


def commands(shared: Path, repeats: int) -> None:
    """Wall time of the demo and of a first predict (cold and warm), then images/s (see module doc)."""
    weights = shared / "weights"
    demo, photo = shared / "images" / "p3_dance.png", sorted((shared / "images").glob("*.jpg"))[0]
    video = shared / "videos" / "street.avi"
    walls: dict = {v: {} for v in VARIANTS}
    names: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(repeats):
            for j, (v, extra) in enumerate(VARIANTS.items()):
                for what, source, more in (("make demo", demo, ["--save-images"]), ("predict photo.jpg", photo, [])):
                    home = root / f"home-{i}-{j}-{what.split()[-1]}"
                    for cache in ("cold", "warm"):  # the first run fills the cache, the second reads it
                        res = run_predict(source, root / "out", home, [*extra, *more], weights)
                        walls[v].setdefault(f"{what}, {cache} cache", []).append(res["wall"])
                        names[v] = res["network"]
                warm = root / f"home-{i}-{j}-demo"  # filled by the demo's runs
                for what, source in (("../shared/images", shared / "images"), ("street.avi", video)):
                    res = run_predict(source, root / "out", warm, extra, weights)
                    walls[v].setdefault(f"{what}, items/s", []).append(1000 / res["ms_each"])
                print(f"round {i + 1}/{repeats} {v}: done", flush=True)
    print(f"\n`pafpose predict` in fresh processes, median of {repeats} (demo: {demo.name}, photo: {photo.name}, "
          f"video: {video.name})")
    keys = list(next(iter(walls.values())))
    print("| | " + " | ".join(f"{v} ({names[v]})" for v in VARIANTS) + " |")
    print("| --- |" + " --- |" * len(VARIANTS))
    for k in keys:
        unit = "" if "items/s" in k else " s"
        cells = [f"{statistics.median(walls[v][k]):.2f}{unit} ({', '.join(f'{x:.2f}' for x in walls[v][k])})"
                 for v in VARIANTS]
        print(f"| {k.replace('items/s', 'images/s' if 'images' in k else 'frames/s')} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared")))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=("weights", "commands", "all"), default="all")
    args = parser.parse_args(argv)
    weights = args.shared / "weights"
    if not weights.is_dir():
        print(f"no weights under {weights}: nothing to measure")
        return 0
    if args.part in ("weights", "all"):
        load_times(args, weights)
    if args.part in ("commands", "all"):
        commands(args.shared, args.repeats)
    return 0


def load_times(args: argparse.Namespace, weights: Path) -> None:
    """The converted-weights cache: a published file parsed vs the converted ``.pt`` read."""
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


if __name__ == "__main__":
    sys.exit(main())
