"""What ``backend="auto"`` picks on a CPU, by measurement: COCO AP and speed of every CPU
backend and precision, and the ranking that ``pafpose.backends.AUTO_CPU`` must follow.

    .venv/bin/python benchmarks/backend_choice.py [--set val2017-dev] [--rounds 5] [--json PATH]

Accuracy: ``pafpose eval`` on ../shared/coco/<set> (default val2017-dev), one fresh process
per variant, eval's defaults (height 368, one scale, completion); a variant is *accurate* when
its AP is at most 0.005 below torch float32's (a higher AP is no loss; the table shows it).
Beside AP: how far its keypoints are from torch float32's (people matched per image by
mean keypoint distance, keypoints both report; median and 95th percentile, image pixels).

Speed, in one process, the variants taking turns in every round (a shared machine drifts:
every variant sees the same drift), median round: the network alone at 256x456 (a 1280x720
video frame at height 256) and 368x656 (the default height 368), and ``Estimator.predict``
frame -> poses on the ../shared/images photos as they are (every photo another input
size), after two warm-up rounds (OpenVINO compiles a shape on its second sight).

The ranking printed last (accurate variants, fastest first at 368x656) is what
``AUTO_CPU`` lists; the script says whether the code agrees.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
TOLERANCE = 0.005  # COCO AP a variant may lose against torch float32 (issue 18's bar)
VARIANTS = (("torch", "float32"), ("torch", "bfloat16"), ("onnxruntime", "float32"), ("openvino", "float32"),
            ("openvino", "bfloat16"), ("openvino", "int8"))


def available(variants: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    from pafpose.backends import runtime_missing
    from pafpose.device import cpu_has_bfloat16

    return [(b, p) for b, p in variants
            if (b == "torch" or runtime_missing(b) is None) and (p != "bfloat16" or cpu_has_bfloat16())]


def evaluate(backend: str, precision: str, root: Path, out: Path, env: dict[str, str]) -> dict:
    """``pafpose eval`` in a fresh process: its metrics JSON, images/s and the results file."""
    metrics, results = out / f"{backend}-{precision}.json", out / f"{backend}-{precision}-results.json"
    cmd = [sys.executable, "-m", "pafpose.cli", "eval", "--annotations", str(root / "person_keypoints.json"),
           "--images", str(root / "images"), "--device", "cpu", "--backend", backend, "--precision", precision,
           "--metrics-json", str(metrics), "--out", str(results)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    words = r.stdout.split()
    rate = next((float(w) for w, nxt in itertools.pairwise(words) if nxt == "images/s"), float("nan"))
    return {"metrics": json.loads(metrics.read_text()), "images_per_s": rate, "results": results}


def displacement(ref: Path, got: Path) -> tuple[float, float]:
    """Median and 95th percentile distance (px) between the keypoints of matched people."""
    by_image: dict[int, list[list[np.ndarray]]] = defaultdict(lambda: [[], []])
    for i, path in enumerate((ref, got)):
        for r in json.loads(path.read_text()):
            by_image[r["image_id"]][i].append(np.asarray(r["keypoints"], np.float64).reshape(-1, 3))
    errors: list[np.ndarray] = []
    for a, b in by_image.values():
        free = list(range(len(b)))
        for pa in a:
            best, best_d = None, np.inf
            for j in free:
                both = (pa[:, 2] > 0) & (b[j][:, 2] > 0)
                if both.sum() >= 3:
                    d = float(np.hypot(*(pa[both, :2] - b[j][both, :2]).T).mean())
                    if d < best_d:
                        best, best_d = j, d
            if best is not None and best_d < 50:
                free.remove(best)
                both = (pa[:, 2] > 0) & (b[best][:, 2] > 0)
                errors.append(np.hypot(*(pa[both, :2] - b[best][both, :2]).T))
    e = np.concatenate(errors) if errors else np.zeros(1)
    return float(np.median(e)), float(np.percentile(e, 95))


def speeds(variants: list[tuple[str, str]], photos: list[np.ndarray], rounds: int) -> dict:
    """Median ms: the network at two sizes, and predict per photo; variants take turns each round."""
    import torch

    from pafpose.predict import Estimator

    default_threads = torch.get_num_threads()
    ests = {v: Estimator(device="cpu", backend=v[0], precision=v[1]) for v in variants}
    rng = np.random.default_rng(0)
    inputs = {size: torch.from_numpy(rng.integers(0, 256, (1, *size, 3), dtype=np.uint8))
              for size in ((256, 456), (368, 656))}
    times: dict = {v: defaultdict(list) for v in variants}

    def one_round(record: bool) -> None:
        for v, est in ests.items():
            # each runtime as it runs alone: torch's pool for torch, one thread beside the CPU runtimes
            torch.set_num_threads(default_threads if v[0] == "torch" else 1)
            with torch.inference_mode():
                for size, x in inputs.items():
                    calls = []
                    for _ in range(5):
                        t = time.perf_counter()
                        est.backend(x)
                        calls.append(time.perf_counter() - t)
                    if record:
                        times[v][size].append(1000 * statistics.median(calls))
            t = time.perf_counter()
            for im in photos:
                est.predict(im)
            if record:
                times[v]["photos"].append(1000 * (time.perf_counter() - t) / len(photos))

    one_round(False)
    one_round(False)
    for _ in range(rounds):
        one_round(True)
    torch.set_num_threads(default_threads)
    return {v: {k: statistics.median(t) for k, t in d.items()} for v, d in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared")))
    p.add_argument("--set", default="val2017-dev")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-eval", action="store_true", help="speed only")
    p.add_argument("--skip-speed", action="store_true", help="accuracy only")
    p.add_argument("--variants", nargs="+", help="BACKEND:PRECISION, e.g. torch:float32 openvino:bfloat16 "
                   "(default: all this machine runs; torch:float32, the reference, is always measured)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    root = args.shared / "coco" / args.set
    if not (root / "person_keypoints.json").is_file() or not (args.shared / "images").is_dir():
        sys.exit(f"benchmarks/backend_choice.py: {root} or {args.shared}/images not found (set PAFPOSE_SHARED)")
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    import torch

    from pafpose.backends import AUTO_CPU, auto_candidates, choose_backend

    wanted = VARIANTS if not args.variants else tuple(tuple(v.split(":", 1)) for v in args.variants)
    variants = available(tuple(dict.fromkeys((("torch", "float32"), *wanted))))  # type: ignore[arg-type]
    report: dict = {"set": args.set, "variants": {}}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    acc: dict = {}
    if not args.skip_eval:
        with tempfile.TemporaryDirectory() as tmp:
            for v in variants:
                acc[v] = evaluate(*v, root, Path(tmp), env)
                m = acc[v]["metrics"]
                print(f"eval {v[0]:<12}{v[1]:<9} AP {m['AP']:.4f}  AP50 {m['AP50']:.4f}  AR {m['AR']:.4f}  "
                      f"({acc[v]['images_per_s']:.2f} images/s)", flush=True)
            for v in variants:
                acc[v]["displacement"] = displacement(acc[("torch", "float32")]["results"], acc[v]["results"])
    photos = [im for im in (cv2.imread(str(f)) for f in sorted((args.shared / "images").glob("*.*"))) if im is not None]
    speed = {v: defaultdict(lambda: float("nan")) for v in variants} if args.skip_speed else \
        speeds(variants, photos, args.rounds)
    ref_ap = acc[("torch", "float32")]["metrics"]["AP"] if acc else None
    print(f"\nCOCO {args.set} (`pafpose eval`, eval defaults) and speed (median of {args.rounds} interleaved rounds)")
    print("| backend | precision | AP | AP - torch float32 | AP50 | keypoints from torch float32, median / p95 px "
          "| network 256x456 ms | network 368x656 ms | predict on ../shared/images, ms / photo | accurate |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    accurate = []
    for v in variants:
        s = speed[v]
        row = [v[0], v[1]]
        if acc:
            m, (med, p95) = acc[v]["metrics"], acc[v]["displacement"]
            ok = m["AP"] >= ref_ap - TOLERANCE - 1e-9
            row += [f"{m['AP']:.4f}", f"{m['AP'] - ref_ap:+.4f}", f"{m['AP50']:.4f}", f"{med:.2f} / {p95:.2f}"]
        else:
            ok = None
            row += ["", "", "", ""]
        row += [f"{s[(256, 456)]:.1f}", f"{s[(368, 656)]:.1f}", f"{s['photos']:.1f}", {True: "yes", False: "no",
                                                                                          None: "?"}[ok]]
        if ok:
            accurate.append(v)
        print("| " + " | ".join(row) + " |")
        report["variants"][f"{v[0]}:{v[1]}"] = {
            "speed_ms": {"network_256x456": s[(256, 456)], "network_368x656": s[(368, 656)], "photos": s["photos"]},
            **({"metrics": acc[v]["metrics"], "displacement_px": acc[v]["displacement"], "accurate": ok,
                "eval_images_per_s": acc[v]["images_per_s"]} if acc else {})}
    chosen = choose_backend("auto", "auto", torch.device("cpu"))
    print(f"\nAUTO_CPU (the code's order): {AUTO_CPU}; on this machine: {auto_candidates()}; auto runs {chosen}")
    if accurate and not args.skip_speed:
        ranking = sorted(accurate, key=lambda v: speed[v][(368, 656)])
        print(f"measured: accurate, fastest first (network at 368x656): {ranking}")
        agrees = ranking[0] == chosen
        print("the code agrees with the measurement" if agrees else
              f"MISMATCH: the fastest accurate variant here is {ranking[0]}, auto runs {chosen}")
        report.update(ranking=[f"{b}:{p}" for b, p in ranking], auto=f"{chosen[0]}:{chosen[1]}", agrees=agrees)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
