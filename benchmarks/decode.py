"""Decoder benchmark on synthetic scenes: speed, peak refinement accuracy, PAF sampling, recovery.

Fields are made by :class:`pafpose.Encoder` from :func:`pafpose.synthetic.random_scene`, so the
ground truth is exact and every number can be reproduced from the seeds below. Sections:

1. decode time and peak memory per image against the number of people (368x656 input);
2. localisation error of each peak refinement mode on clean, noisy and blurred maps;
3. fixed against adaptive PAF line-integral sampling;
4. person and keypoint recovery on overlapping scenes with the default configuration.

Usage::

    python benchmarks/decode.py            # full run, about 2 minutes
    python benchmarks/decode.py --quick    # smaller samples, under 30 s
    python benchmarks/decode.py --json bench-results/decode.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pafpose import OPENPOSE_COCO18, Decoder, DecoderConfig, Encoder, EncoderConfig, Pose, Poses, Targets
from pafpose.synthetic import Recovery, Scene, components, keypoint_distances, random_scene

IMAGE_SIZE = (368, 656)
SPEC = OPENPOSE_COCO18
FIELD_SIZE = SPEC.field_size(*IMAGE_SIZE)
REFINE_MODES = ("none", "quadratic", "centroid", "gaussian", "upsample")

# Seed roots per section: scene i of a section uses default_rng((root, ..., i)), so a --quick
# run decodes a prefix of the full run's scenes.
SEED_SPEED, SEED_REFINE, SEED_SAMPLING, SEED_RECOVERY = 101, 202, 303, 404

# Matching radii in input pixels.
LOCALISATION_RADIUS = 8.0  # section 2: a keypoint within this counts as found
KEYPOINT_RADIUS = SPEC.stride / 2.0  # section 4: keypoint recall (half the stride)
OKS_THRESHOLD = 0.5
MIN_GT_KEYPOINTS = 4  # GT people with fewer visible keypoints are ignored (neither hit nor miss)


@dataclass(frozen=True)
class Plan:
    """Sample sizes of one run."""

    speed_scenes: int
    speed_repeats: int
    upsample_scenes: int
    upsample_repeats: int
    refine_scenes: int
    sampling_scenes: int
    recovery_scenes: int


FULL = Plan(speed_scenes=10, speed_repeats=20, upsample_scenes=10, upsample_repeats=3,
            refine_scenes=40, sampling_scenes=60, recovery_scenes=30)
QUICK = Plan(speed_scenes=3, speed_repeats=5, upsample_scenes=2, upsample_repeats=2,
             refine_scenes=10, sampling_scenes=20, recovery_scenes=8)


# ----------------------------------------------------------------------------- output


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def heading(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}", flush=True)


def pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the timings depend on."""
    import cv2

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


# ----------------------------------------------------------------------------- data


def encode(scene: Scene, config: EncoderConfig | None = None) -> Targets:
    """Target fields of a scene at the benchmark's field size."""
    return Encoder(SPEC, config)(scene.people, FIELD_SIZE)


def overlapping_scene(root: int, n_people: int, index: int) -> Scene:
    """Scene ``index`` of ``n_people`` placed freely (overlapping), from a fixed seed."""
    return random_scene(np.random.default_rng((root, n_people, index)), n_people, IMAGE_SIZE, separated=False)


def add_noise(fields: Targets, std: float, seed: Sequence[int]) -> Targets:
    """A copy of ``fields`` with Gaussian noise added to heatmaps and PAFs."""
    rng = np.random.default_rng(seed)
    noisy_hm = fields.heatmaps + rng.normal(0.0, std, fields.heatmaps.shape).astype(np.float32)
    noisy_paf = fields.pafs + rng.normal(0.0, std, fields.pafs.shape).astype(np.float32)
    return Targets(noisy_hm, noisy_paf, fields.mask)


# ----------------------------------------------------------------------------- measurement


def time_decode(decoder: Decoder, fields: Targets, repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` decodes of one image, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        decoder.decode(fields.heatmaps, fields.pafs)
    out = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            decoder.decode(fields.heatmaps, fields.pafs)
            out.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def decode_one(decoder: Decoder, fields: Targets) -> Poses:
    """The poses of one image."""
    poses = decoder.decode(fields.heatmaps, fields.pafs)
    assert isinstance(poses, Poses)  # 3-D inputs give one image's Poses
    return poses


def timed_decode(decoder: Decoder, fields: Targets) -> tuple[Poses, float]:
    """Decode once; the poses and the milliseconds it took."""
    t0 = time.perf_counter_ns()
    poses = decode_one(decoder, fields)
    return poses, (time.perf_counter_ns() - t0) / 1e6


def peak_memory(decoder: Decoder, fields: Targets) -> int:
    """Peak bytes allocated (Python and numpy, by tracemalloc) during one decode."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        decoder.decode(fields.heatmaps, fields.pafs)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def match_by_shared_keypoints(gt_person: np.ndarray, poses: Sequence[Pose], radius: float) -> int:
    """Index of the pose with the most keypoints within ``radius`` of ``gt_person``'s, or -1 if none."""
    if not poses:
        return -1
    close = (keypoint_distances(gt_person, poses) <= radius).sum(axis=1)
    best = int(np.argmax(close))
    return best if close[best] > 0 else -1


def localisation_errors(
    scene: Scene, poses: Sequence[Pose], radius: float = LOCALISATION_RADIUS
) -> tuple[list[float], int]:
    """Errors (px) of the GT keypoints found within ``radius``, and the number of visible GT keypoints.

    Each GT person is matched to the pose sharing the most keypoints within ``radius``.
    """
    errors: list[float] = []
    n_visible = 0
    for person in scene.people:
        n_visible += int((person[:, 2] > 0).sum())
        best = match_by_shared_keypoints(person, poses, radius)
        if best < 0:
            continue
        d = keypoint_distances(person, [poses[best]])[0]
        errors.extend(d[d <= radius].tolist())
    return errors, n_visible


def recoverable_keypoints(person: np.ndarray, min_keypoints: int = MIN_GT_KEYPOINTS) -> int:
    """Visible keypoints in the person's largest limb-connected part, if it has ``min_keypoints`` or more.

    A decoder assembles people along limbs, so this bounds what one matched pose can hold.
    """
    largest = max((len(c) for c in components(person)), default=0)
    return largest if largest >= min_keypoints else 0


def stats_ms(times: Sequence[float]) -> dict[str, float]:
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


# ----------------------------------------------------------------------------- sections


def bench_speed(plan: Plan) -> dict[str, Any]:
    """Section 1: decode time and memory against the number of people."""
    heading(f"1. Decode time per image, {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} input, fields {FIELD_SIZE[0]}x{FIELD_SIZE[1]} "
            f"(stride {SPEC.stride}), overlapping scenes")
    print(f"{plan.speed_scenes} scenes per count, each decoded {plan.speed_repeats}x after 1 warm-up; "
          f"peak memory by tracemalloc in a separate pass (max over scenes); default DecoderConfig.")
    counts = (1, 5, 10, 20, 50)
    decoder = Decoder(SPEC)
    fields: dict[int, list[Targets]] = {}
    scenes: dict[int, list[Scene]] = {}
    rows, results = [], []
    for n in counts:
        scenes[n] = [overlapping_scene(SEED_SPEED, n, i) for i in range(plan.speed_scenes)]
        fields[n] = [encode(s) for s in scenes[n]]
        times = [t for f in fields[n] for t in time_decode(decoder, f, plan.speed_repeats)]
        mem = max(peak_memory(decoder, f) for f in fields[n])
        found = np.mean([len(decode_one(decoder, f)) for f in fields[n]])
        st = stats_ms(times)
        res = {"people": n, **st, "per_person_ms": st["median_ms"] / n, "peak_mem_bytes": mem,
               "mean_poses_decoded": float(found)}
        results.append(res)
        rows.append([str(n), f"{st['median_ms']:.2f}", f"{st['p90_ms']:.2f}", f"{st['median_ms'] / n:.3f}",
                     f"{mem / 2**20:.2f}", f"{found:.1f}"])
    print_table(["people", "median ms", "p90 ms", "ms/person", "peak MiB", "poses found"], rows)
    by_n = {r["people"]: r for r in results}
    ratio = by_n[50]["median_ms"] / by_n[5]["median_ms"]
    print(f"\ntime(50) / time(5) = {ratio:.2f}  (10x the people; 10.0 would be linear)")
    targets = [(5, 2.0), (50, 15.0)]
    verdicts = []
    for n, limit in targets:
        ok = by_n[n]["median_ms"] <= limit
        verdicts.append(ok)
        print(f"target: median <= {limit:g} ms for {n} people: {by_n[n]['median_ms']:.2f} ms -> "
              f"{'PASS' if ok else 'FAIL'}")

    print(f"\nComparison: refine='upsample' (8x bicubic upsampling of the heatmaps, the anchors' approach); "
          f"{plan.upsample_scenes} scenes x {plan.upsample_repeats} decodes")
    upsample = Decoder(SPEC, DecoderConfig(refine="upsample"))
    up_rows, up_results = [], []
    for n in (5, 50):
        times = [t for f in fields[n][: plan.upsample_scenes] for t in time_decode(upsample, f, plan.upsample_repeats)]
        st = stats_ms(times)
        default_ms = by_n[n]["median_ms"]
        up_results.append({"people": n, **st, "slowdown_vs_default": st["median_ms"] / default_ms})
        up_rows.append([str(n), f"{default_ms:.2f}", f"{st['median_ms']:.2f}", f"{st['p90_ms']:.2f}",
                        f"{st['median_ms'] / default_ms:.1f}x"])
    print_table(["people", "default median ms", "upsample median ms", "upsample p90 ms", "upsample / default"], up_rows)
    verdict_list = [{"people": n, "limit_ms": lim, "pass": ok} for (n, lim), ok in zip(targets, verdicts, strict=True)]
    return {"per_count": results, "ratio_50_over_5": ratio, "targets": verdict_list, "upsample": up_results}


def bench_refine(plan: Plan) -> dict[str, Any]:
    """Section 2: localisation error of each refine mode under clean, noisy and blurred maps."""
    heading("2. Peak refinement accuracy, separated scenes")
    print(f"{plan.refine_scenes} scenes, 1-30 people each. Each GT person is matched to the pose sharing the most "
          f"keypoints within {LOCALISATION_RADIUS:g} px;\nerrors are over GT keypoints found within "
          f"{LOCALISATION_RADIUS:g} px ('found' = their share of all visible GT keypoints). Times: one decode per "
          f"image, median.")
    scenes = []
    for i in range(plan.refine_scenes):
        rng = np.random.default_rng((SEED_REFINE, i))
        scenes.append(random_scene(rng, int(rng.integers(1, 31)), IMAGE_SIZE, separated=True))
    clean = [encode(s) for s in scenes]
    conditions: dict[str, list[Targets]] = {
        "clean": clean,
        "noisy (std 0.05)": [add_noise(f, 0.05, (SEED_REFINE, i, 1)) for i, f in enumerate(clean)],
        "sigma 9.0 maps": [encode(s, EncoderConfig(sigma=9.0)) for s in scenes],
    }
    n_people = sum(len(s.people) for s in scenes)
    visible = sum(int((s.people[:, :, 2] > 0).sum()) for s in scenes)
    ceiling = sum(recoverable_keypoints(p) for s in scenes for p in s.people) / max(visible, 1)
    print(f"{n_people} people, {visible} visible keypoints; {pct(ceiling)} lie in each person's largest connected "
          f"part of >= {MIN_GT_KEYPOINTS} keypoints\n(the most 'found' can reach). truncated = images where some "
          f"keypoint type had more than max_peaks_per_part candidates.")
    rows, results = [], []
    for cond, fields in conditions.items():
        for mode in REFINE_MODES:
            decoder = Decoder(SPEC, DecoderConfig(refine=mode))
            decode_one(decoder, fields[0])  # warm-up (imports, caches)
            errors: list[float] = []
            visible, times = 0, []
            truncated = 0
            for scene, f in zip(scenes, fields, strict=True):
                poses, ms = timed_decode(decoder, f)
                e, v = localisation_errors(scene, poses)
                errors.extend(e)
                visible += v
                times.append(ms)
                truncated += int(poses.truncated)
            err = np.array(errors) if errors else np.array([np.nan])
            res = {"condition": cond, "refine": mode, "mean_px": float(err.mean()),
                   "median_px": float(np.median(err)), "p95_px": float(np.percentile(err, 95)),
                   "within_2px": float((err <= 2.0).mean()), "found": len(errors) / max(visible, 1),
                   "median_ms": float(np.median(times)), "truncated_images": truncated}
            results.append(res)
            rows.append([cond if mode == REFINE_MODES[0] else "", mode, f"{res['mean_px']:.3f}",
                         f"{res['median_px']:.3f}", f"{res['p95_px']:.3f}", pct(res["within_2px"]),
                         pct(res["found"]), f"{res['median_ms']:.2f}", f"{truncated}/{len(scenes)}"])
    print_table(["maps", "refine", "mean px", "median px", "p95 px", "<= 2 px", "found", "median ms", "truncated"],
                rows)
    clean_rows = [r for r in results if r["condition"] == "clean"]
    best = min(clean_rows, key=lambda r: r["mean_px"])
    print(f"\nmost accurate on clean maps: {best['refine']} (mean {best['mean_px']:.3f} px)")
    for cond in list(conditions)[1:]:
        cond_rows = [r for r in results if r["condition"] == cond]
        b = min(cond_rows, key=lambda r: r["mean_px"])
        print(f"most accurate on {cond}: {b['refine']} (mean {b['mean_px']:.3f} px)")
    return {"scenes": len(scenes), "people": n_people, "results": results}


def bench_sampling(plan: Plan) -> dict[str, Any]:
    """Section 3: fixed against adaptive PAF sampling, on overlapping scenes."""
    heading("3. PAF sampling, overlapping scenes")
    configs: dict[str, DecoderConfig] = {
        "fixed 5": DecoderConfig(paf_samples=5),
        "fixed 10 (default)": DecoderConfig(),
        "fixed 20": DecoderConfig(paf_samples=20),
        "adaptive <= 20, 1/cell": DecoderConfig(paf_samples=20, paf_samples_per_cell=1.0),
    }
    counts = [2 + i % 11 for i in range(plan.sampling_scenes)]  # 2..12 people, evenly
    scenes = [overlapping_scene(SEED_SAMPLING, n, i) for i, n in enumerate(counts)]
    fields = [encode(s) for s in scenes]
    print(f"{len(scenes)} scenes, 2-12 people each ({sum(counts)} people); times: median of 3 decodes per image. "
          f"Metrics as in section 4.")
    rows, results = [], []
    for name, cfg in configs.items():
        decoder = Decoder(SPEC, cfg)
        rec = Recovery()
        times = []
        for scene, f in zip(scenes, fields, strict=True):
            times.append(float(np.median(time_decode(decoder, f, repeats=3))))
            rec.add(scene, decode_one(decoder, f))
        res = {"config": name, **rec.summary(), "median_ms": float(np.median(times))}
        results.append(res)
        rows.append([name, pct(rec.person_recall), pct(rec.precision), pct(rec.keypoint_recall),
                     f"{rec.mean_oks:.3f}", str(rec.poses), f"{res['median_ms']:.2f}"])
    print_table(["PAF samples", "person recall", "precision", "kp recall", "mean OKS", "poses", "median ms"], rows)
    return {"scenes": len(scenes), "results": results}


def bench_recovery(plan: Plan) -> dict[str, Any]:
    """Section 4: person and keypoint recovery with the default configuration."""
    heading("4. Recovery on overlapping scenes, default DecoderConfig")
    print(f"{plan.recovery_scenes} scenes per count. GT people with >= {MIN_GT_KEYPOINTS} visible keypoints; "
          f"greedy one-to-one matching by OKS (area = height^2 / 2, COCO sigmas), OKS >= {OKS_THRESHOLD:g}.\n"
          f"person recall = matched GT / GT; precision = matched poses / poses (poses matched to GT with "
          f"< {MIN_GT_KEYPOINTS} keypoints ignored);\nkp recall = visible keypoints of matched GT found within "
          f"{KEYPOINT_RADIUS:g} px by the matched pose; mean OKS over matched pairs.")
    decoder = Decoder(SPEC)
    rows, results = [], []
    total = Recovery()
    for n in (2, 5, 10, 20):
        rec = Recovery()
        for i in range(plan.recovery_scenes):
            scene = overlapping_scene(SEED_RECOVERY, n, i)
            poses = decode_one(decoder, encode(scene))
            rec.add(scene, poses)
            total.add(scene, poses)
        results.append({"people": n, **rec.summary()})
        rows.append(_recovery_row(str(n), rec))
    rows.append(_recovery_row("all", total))
    print_table(["people", "GT people", "poses", "person recall", "precision", "kp recall", "mean OKS"], rows)
    return {"scenes_per_count": plan.recovery_scenes, "per_count": results, "all": total.summary()}


def _recovery_row(label: str, rec: Recovery) -> list[str]:
    return [label, str(rec.gt_people), str(rec.poses), pct(rec.person_recall), pct(rec.precision),
            pct(rec.keypoint_recall), f"{rec.mean_oks:.3f}"]


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples (under 30 s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    machine = machine_info()
    print(f"command: {command}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
          f"{machine['platform']}")
    print(f"python {machine['python']}, numpy {machine['numpy']}, opencv {machine['opencv']}; "
          f"plan: {'quick' if args.quick else 'full'}")

    started = time.perf_counter()
    sections: dict[str, Callable[[Plan], dict[str, Any]]] = {
        "speed": bench_speed, "refine": bench_refine, "paf_sampling": bench_sampling, "recovery": bench_recovery,
    }
    results: dict[str, Any] = {}
    for key, fn in sections.items():
        t0 = time.perf_counter()
        results[key] = fn(plan)
        results[key]["seconds"] = time.perf_counter() - t0
    total = time.perf_counter() - started
    print(f"\ntotal benchmark time: {total:.1f} s")

    if args.json:
        payload = {"command": command, "machine": machine, "plan": asdict(plan), "seconds": total, **results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
