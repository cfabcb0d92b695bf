"""Load benchmark of `pafpose serve`: requests/s and latency under concurrent clients, batching off and on.

Starts the real server (``pafpose serve --port 0``, loopback only) in a subprocess for each
``--max-batch`` setting, warms them up, then a bounded load generator (``--concurrency``
threads, each with its own HTTP connection, ``--requests`` requests per measurement, at most
``--time-limit`` seconds) posts images to ``POST /v1/poses``. Two workloads from
../shared/images: ``photos`` (the photos as they are, nearly every one another size) and
``frames`` (the same photos resized to 640x480, as webcam frames from several clients: all
one size, so they can share network calls). First, in this process, the network's time per
image at batch sizes 1 to 8 on one 640x480 frame, which says what batching can gain on this
machine. The settings are measured in turn, ``--rounds``
times over (an idle server costs nothing), so that a change in the machine's background load
hits them alike; each row is the median round. Reports requests/s, p50/p95 latency, the mean
number of requests per network call and errors.

Usage::

    python benchmarks/serve_load.py [--shared ../shared] [--concurrency 1 8] [--requests 60] [--rounds 3]
                                    [--max-batch 1 8] [--workloads photos frames] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from _serve_process import Server, shared_inputs


def workloads(images_dir: Path) -> dict[str, list[tuple[bytes, str]]]:
    """``photos``: the files as they are; ``frames``: each resized to 640x480 JPEG."""
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = [(p.read_bytes(), "image/png" if p.suffix.lower() == ".png" else "image/jpeg") for p in files]
    frames = []
    for p in files:
        img = cv2.resize(cv2.imread(str(p)), (640, 480), interpolation=cv2.INTER_AREA)
        frames.append((cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes(), "image/jpeg"))
    return {"photos": photos, "frames": frames}


def load(url: str, payloads: list[tuple[bytes, str]], concurrency: int, requests: int,
         time_limit: float) -> dict[str, float]:
    """``requests`` POSTs from ``concurrency`` threads (bounded in count and time); the figures."""
    latencies: list[float] = []
    batch_sizes: list[int] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                data, kind = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                try:
                    r = http.post("/v1/poses", content=data, headers={"content-type": kind})
                    body = r.json()
                except (httpx.HTTPError, ValueError) as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                        batch_sizes.append(body["batch_size"])
                    else:
                        errors.append(f"{r.status_code}: {body.get('detail')}")

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return {"requests": len(latencies), "errors": len(errors), "seconds": wall,
            "requests_per_s": len(latencies) / wall if wall > 0 else 0.0,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
            "p95_ms": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
            "mean_batch": statistics.fmean(batch_sizes) if batch_sizes else float("nan"),
            "first_error": errors[0] if errors else ""}


def network_per_image(model: str | None, sizes: tuple[int, ...] = (1, 2, 4, 8), repeats: int = 15) -> dict[int, float]:
    """Median ms per image of the Estimator's network alone, by batch size, on one 640x480 frame.

    The sizes take turns in every repeat, so that background load hits them alike.
    """
    from pafpose.predict import Estimator

    est = Estimator(model) if model else Estimator()
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    one = est._prepare(frame, est._geometry(frame.shape, 1.0))
    batches = {n: est._batch([one] * n) for n in sizes}
    for x in batches.values():
        est._run(x)  # the first call at a shape sets the convolutions up
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n, x in batches.items():
            t0 = time.perf_counter()
            est._run(x)
            times[n].append((time.perf_counter() - t0) / n)
    return {n: statistics.median(t) * 1e3 for n, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client threads (default: 1 8)")
    parser.add_argument("--requests", type=int, default=60, help="requests per measurement (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per row; the median is kept")
    parser.add_argument("--warmup", type=int, default=48, help="requests under load before measuring")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds at most per measurement")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 8], help="settings compared (1: no batching)")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--workloads", nargs="+", choices=("photos", "frames"), default=["photos", "frames"])
    parser.add_argument("--model", help="zoo name (default: pafpose serve's)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    inputs = shared_inputs(args.shared)
    if inputs is None:
        return 0
    images_dir, env = inputs
    data = workloads(images_dir)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}; server and load generator on the same machine (loopback)")
    os.environ.update({k: v for k, v in env.items() if k == "PAFPOSE_WEIGHTS_PATH"})
    per_image = network_per_image(args.model)
    print("network alone, ms per image by batch size (640x480 frame): "
          + ", ".join(f"{n}: {ms:.1f}" for n, ms in per_image.items()), flush=True)
    print(f"{' or '.join(map(str, args.concurrency))} concurrent clients, {args.requests} requests per measurement, "
          f"median of {args.rounds} rounds, after {args.warmup} warm-up requests; images from {images_dir}")
    servers = {}
    runs: dict[tuple[str, int, int], list[dict[str, float]]] = {}
    try:
        for max_batch in args.max_batch:
            model = ["--model", args.model] if args.model else []
            servers[max_batch] = Server(["--max-batch", str(max_batch), "--batch-wait-ms", str(args.batch_wait_ms),
                                         *model], env=env)
            for name in args.workloads:  # every input size and batch size the measurements will see
                load(servers[max_batch].url, data[name], max(args.concurrency), args.warmup, args.time_limit)
        for _ in range(args.rounds):
            for name in args.workloads:
                for clients in args.concurrency:
                    for max_batch, server in servers.items():
                        runs.setdefault((name, clients, max_batch), []).append(
                            load(server.url, data[name], clients, args.requests, args.time_limit))
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for (name, clients, max_batch), measured in runs.items():
        row = sorted(measured, key=lambda r: r["requests_per_s"])[len(measured) // 2]
        rows.append({"workload": name, "clients": clients, "max_batch": max_batch,
                     "requests_per_s_all": [round(r["requests_per_s"], 2) for r in measured], **row})
        failed = f"; {row['first_error']}" if row["errors"] else ""
        print(f"  {name:7s} {clients:2d} clients, max-batch {max_batch}: {row['requests_per_s']:5.2f} requests/s "
              f"(rounds: {', '.join(f'{r:.2f}' for r in rows[-1]['requests_per_s_all'])}), "
              f"p50 {row['p50_ms']:5.0f} ms, p95 {row['p95_ms']:5.0f} ms, "
              f"{row['mean_batch']:.2f} requests per network call, {row['errors']} errors{failed}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"network_ms_per_image": per_image, "rows": rows}, indent=1))
    return 1 if any(r["errors"] for measured in runs.values() for r in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
