"""pafpose bench: images/s end to end and per stage, on real photos, with the machine named.

Each round reads every photo from disk, finds the people (preprocess, network, decode) and
draws them, BATCH images at a time, after --warmup rounds that are not counted (the
runtimes plan per input shape on first sight, the openvino backend compiles one on its
second). Stage times are per image: median and 90th
percentile over the measured batches. "frame -> poses" is what a video or camera loop
pays per decoded frame (preprocess + network + decode); "file -> drawing" adds reading the
file and drawing. Peak memory is the process' resident maximum (and CUDA's, on a GPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("read", "preprocess", "network", "decode", "draw")  # and "parts" with --parts (whole body)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number
    from pafpose.cli.options import add_model_arguments

    p = sub.add_parser("bench", help="measure images/s and per-stage times on real photos",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, help="folder of photos (default: ../shared/images when present)")
    p.add_argument("--batch", type=number(1, 256, integer=True), default=1, help="images per network call")
    p.add_argument("--warmup", type=number(0, 1000, integer=True), default=2,
                   help="rounds over the photos before measuring (two: the "
                   "openvino backend compiles a model for an input size on its second sight)")
    p.add_argument("--repeat", type=number(1, 1000, integer=True), default=3, help="measured rounds over the photos")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    add_model_arguments(p)
    p.set_defaults(func=run)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "os": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def default_images() -> Path | None:
    env = os.environ.get("PAFPOSE_SHARED")
    for base in ([Path(env)] if env else []) + [Path.cwd().parent / "shared", Path.cwd() / "shared"]:
        if (base / "images").is_dir():
            return base / "images"
    return None


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def measure(est: Any, paths: list[Path], batch: int, warmup: int, repeat: int,
            progress: bool = True) -> dict[str, Any]:
    """Per-image stage times (seconds) of every measured batch, and the wall time they took."""
    from tqdm import tqdm

    from pafpose.draw import poses as draw_poses
    from pafpose.images import read_image

    batches = [paths[i:i + batch] for i in range(0, len(paths), batch)]
    stages = [*STAGES[:4], "parts", *STAGES[4:]] if "parts" in est.timings else list(STAGES)
    per_stage: dict[str, list[float]] = {k: [] for k in stages}
    images, people, wall = 0, 0, 0.0
    total = (warmup + repeat) * len(batches)
    with tqdm(total=total, unit="batch", disable=not progress, desc="bench") as bar:
        for round_ in range(warmup + repeat):
            for group in batches:
                for key in est.timings:
                    est.timings[key] = 0.0
                t0 = time.perf_counter()
                frames = [read_image(p) for p in group]  # as every command reads them
                t1 = time.perf_counter()
                found = est.predict_batch(frames)
                t2 = time.perf_counter()
                for frame, poses in zip(frames, found, strict=True):
                    draw_poses(frame, poses)
                t3 = time.perf_counter()
                bar.update()
                if round_ < warmup:
                    continue
                n = len(group)
                images += n
                people += sum(len(p) for p in found)
                wall += t3 - t0
                per_stage["read"].append((t1 - t0) / n)
                for key in ("preprocess", "network", "decode", "parts"):
                    if key in per_stage:
                        per_stage[key].append(est.timings[key] / n)
                per_stage["draw"].append((t3 - t2) / n)
    return {"per_stage": per_stage, "images": images, "people": people, "wall": wall}


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    st = raw["per_stage"]
    parts = st.get("parts", [0.0] * len(st["network"]))
    frame = [a + b + c + d for a, b, c, d in zip(st["preprocess"], st["network"], st["decode"], parts, strict=True)]
    out: dict[str, Any] = {
        "stages_ms": {k: {"median": 1000 * percentile(v, 50), "p90": 1000 * percentile(v, 90)} for k, v in st.items()},
        "frame_to_poses_ms": {"median": 1000 * percentile(frame, 50), "p90": 1000 * percentile(frame, 90)},
        "frame_to_poses_images_per_s": len(frame) and 1.0 / (sum(frame) / len(frame)),
        "file_to_drawing_images_per_s": raw["images"] / raw["wall"] if raw["wall"] else float("nan"),
        "images": raw["images"], "people": raw["people"],
    }
    net = st["network"]
    out["network_share"] = sum(net) / sum(frame) if sum(frame) else float("nan")
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from pafpose.cli.options import make_estimator
    from pafpose.errors import PafposeError
    from pafpose.formats import write_json_atomic
    from pafpose.images import IMAGE_EXTENSIONS, read_image

    folder = args.images or default_images()
    if folder is None:
        raise PafposeError("no photos: give --images DIR (../shared/images is used when present)")
    if not folder.is_dir():
        raise PafposeError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    readable = []
    for p in paths:  # a FIFO, a file that can't be read or a gigapixel bomb is skipped, never a hang
        try:
            read_image(p)
        except PafposeError as err:
            print(f"pafpose: skipped {err}")
        else:
            readable.append(p)
    if not readable:
        raise PafposeError(f"{folder}: no readable image")
    est = make_estimator(args)
    raw = measure(est, readable, args.batch, args.warmup, args.repeat)
    result = summarise(raw)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result["peak_memory_mib"] = {"resident": round(peak, 1)}
    if est.device.type == "cuda":
        result["peak_memory_mib"]["cuda"] = round(torch.cuda.max_memory_allocated(est.device) / 2**20, 1)
    result["machine"] = machine()
    result["settings"] = {"model": args.model or str(args.weights or "human-pose-estimation-0001"),
                          "backend": est.config.backend, "device": str(est.device), "precision": est.precision,
                          "height": est.height, "batch": args.batch, "threads": args.threads,
                          "scales": list(est.scales), "flip": est.flip, "images": str(folder),
                          "photos": len(readable), "warmup": args.warmup, "repeat": args.repeat}
    print(format_report(result))
    if args.json:
        write_json_atomic(result, args.json)
        print(f"wrote {args.json}")
    return 0


def format_report(r: dict[str, Any]) -> str:
    s, m = r["settings"], r["machine"]
    lines = [f"{s['model']} on {s['backend']} ({s['device']}, {s['precision']}), height {s['height']}, "
             f"batch {s['batch']}: {r['images']} images, {r['people']} people",
             f"{'stage':<12}{'median ms':>10}{'p90 ms':>10}   (per image)"]
    for k, v in r["stages_ms"].items():
        lines.append(f"{k:<12}{v['median']:>10.2f}{v['p90']:>10.2f}")
    fp = r["frame_to_poses_ms"]
    lines += [f"{'frame->poses':<12}{fp['median']:>10.2f}{fp['p90']:>10.2f}",
              f"frame -> poses: {r['frame_to_poses_images_per_s']:.1f} images/s "
              f"(network {100 * r['network_share']:.0f} % of it); file -> drawing: "
              f"{r['file_to_drawing_images_per_s']:.1f} images/s",
              f"peak memory: {r['peak_memory_mib']['resident']:.0f} MiB resident"
              + (f", {r['peak_memory_mib']['cuda']:.0f} MiB CUDA" if "cuda" in r["peak_memory_mib"] else ""),
              f"machine: {m['cpu']}, {m['cores']} cores" + (f", {m['gpu']}" if "gpu" in m else "")
              + f"; torch {m['torch']}, {m['torch_threads']} threads; python {m['python']}"]
    return "\n".join(lines)


__all__ = ["format_report", "machine", "measure", "summarise"]
