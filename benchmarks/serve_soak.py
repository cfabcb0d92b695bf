"""Soak benchmark of `pafpose serve`: memory and connections over a few thousand mixed requests.

Starts the real server (``pafpose serve --port 0``, loopback only, under an address-space
limit) and sends it, from ``--concurrency`` client threads, up to ``--requests`` requests in
at most ``--seconds`` seconds: the photos of ../shared/images resized deterministically to
many sizes (so nearly every request has another network input size) and encoded as JPEG,
PNG, WebP or BMP, with every tenth request a bad upload (not an image, truncated, empty, a
decompression bomb's header, a wrong content type). Meanwhile ``--slowloris`` connections
send request heads a byte a second, never finishing, and are reopened when the server
closes them. Every ``--sample-s`` seconds the server's resident memory (``/proc/PID/status``)
and open sockets (``/proc/PID/fd``) are sampled. Prints the timeline, RSS at start, after
the warm-up, at the end and at its peak, the statuses and any 5xx, with the command to
reproduce. Exit status 1 when a request got a 5xx or no answer.

Usage::

    python benchmarks/serve_soak.py [--shared ../shared] [--requests 2000] [--seconds 600] [--concurrency 4]
                                    [--slowloris 50] [--warmup 100] [--json out.json] [-- SERVE OPTIONS...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np

from _serve_process import Server, shared_inputs

# an 80000 x 60000 PNG's header: refused (413) from the header, never decoded
PNG_BOMB = bytes.fromhex("89504e470d0a1a0a0000000d49484452000138800000ea600802000000f4c4f271"
                         "000000004944415435af061e0000000049454e44ae426082")
ENCODINGS = ((".jpg", "image/jpeg", [cv2.IMWRITE_JPEG_QUALITY, 85]), (".png", "image/png", []),
             (".webp", "image/webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".bmp", "image/bmp", []))


def payloads(images_dir: Path, count: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """``count`` uploads: the photos resized to deterministic random sizes (longer side 160-1600
    pixels, aspect ratio jittered), mostly JPEG, a quarter PNG, WebP or BMP."""
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = [cv2.imread(str(p)) for p in files]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        img = photos[i % len(photos)]
        side = int(rng.integers(160, 1601))
        aspect = img.shape[1] / img.shape[0] * float(rng.uniform(0.7, 1.4))
        w, h = (side, max(16, round(side / aspect))) if aspect >= 1 else (max(16, round(side * aspect)), side)
        resized = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        ext, kind, params = ENCODINGS[0] if i % 4 else ENCODINGS[1 + (i // 4) % 3]
        out.append((cv2.imencode(ext, resized, params)[1].tobytes(), kind))
    return out


def bad_uploads(good: bytes) -> list[tuple[bytes, str, int]]:
    """(body, content type, expected status) of uploads the server must refuse."""
    return [(b"not a picture at all", "image/png", 415), (good[: len(good) // 3], "image/jpeg", 422),
            (b"", "image/jpeg", 400), (PNG_BOMB, "image/png", 413), (good, "text/plain", 415)]


def slowloris(port: int, count: int, stop: threading.Event, stats: Counter) -> None:
    """Keep ``count`` connections sending a request head a byte a second; reopen those the server closes."""
    conns: list[socket.socket] = []
    try:
        while not stop.is_set():
            while len(conns) < count and not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"POST /v1/poses HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    s.setblocking(False)
                    conns.append(s)
                    stats["opened"] += 1
                except OSError:
                    stats["refused"] += 1
                    break
            for s in list(conns):
                try:
                    if s.recv(4096) == b"":
                        raise ConnectionResetError
                    stats["answered"] += 1  # the 408 (or 503): the close follows
                except BlockingIOError:
                    try:
                        s.send(b"X")
                        continue
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                except OSError:
                    pass
                s.close()
                conns.remove(s)
                stats["closed by server"] += 1
            stop.wait(1.0)
    finally:
        for s in conns:
            s.close()


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    parser.add_argument("--requests", type=int, default=2000, help="requests at most (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds at most (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default: %(default)s)")
    parser.add_argument("--slowloris", type=int, default=50, help="slow connections kept open (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=100, help="requests before the 'after warm-up' RSS")
    parser.add_argument("--sizes", type=int, default=300, help="distinct uploads (sizes and formats)")
    parser.add_argument("--sample-s", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--memory-limit-gb", type=float, default=8.0, help="the server's address-space limit")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("serve_args", nargs="*", help="more pafpose serve options (after --)")
    args = parser.parse_args(argv)
    inputs = shared_inputs(args.shared)
    if inputs is None:
        return 0
    images_dir, env = inputs
    uploads = payloads(images_dir, args.sizes)
    bad = bad_uploads(uploads[0][0])
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}; server and clients on the same machine (loopback)")
    print(f"{args.requests} requests at most in {args.seconds:g} s at most, {args.concurrency} clients, "
          f"{len(uploads)} distinct uploads, every 10th a bad one, {args.slowloris} slowloris connections",
          flush=True)
    server = Server(args.serve_args, env, int(args.memory_limit_gb * 2**30))
    statuses: Counter = Counter()
    server_errors: list[str] = []
    loris: Counter = Counter()
    samples: list[tuple[float, int, float, int]] = []
    done = 0
    lock = threading.Lock()
    counter = iter(range(args.requests))
    stop = threading.Event()
    start = time.monotonic()
    deadline = start + args.seconds
    rss_start = server.rss_mb()
    rss_warm: float | None = None

    def client() -> None:
        nonlocal done, rss_warm
        with httpx.Client(base_url=server.url, timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                if i % 10 == 9:
                    data, kind, expected = bad[(i // 10) % len(bad)]
                else:
                    (data, kind), expected = uploads[i % len(uploads)], 200
                try:
                    r = http.post("/v1/poses", content=data, headers={"content-type": kind})
                    status = r.status_code
                except httpx.HTTPError as err:
                    status, r = 0, None
                    server_errors.append(f"no answer: {type(err).__name__}: {err}")
                with lock:
                    statuses[status] += 1
                    done += 1
                    if status >= 500 or (status and status != expected and status != 503):
                        server_errors.append(f"request {i}: {status} (expected {expected}): {r.text[:200]}")
                    if done == args.warmup:
                        rss_warm = server.rss_mb()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - start, done, server.rss_mb(), server.sockets()))
            stop.wait(args.sample_s)

    threads = [threading.Thread(target=sampler), threading.Thread(target=slowloris,
                                                                   args=(server.port, args.slowloris, stop, loris))]
    clients = [threading.Thread(target=client) for _ in range(args.concurrency)]
    try:
        for t in threads + clients:
            t.start()
        for t in clients:
            t.join()
        wall = time.monotonic() - start
        samples.append((wall, done, server.rss_mb(), server.sockets()))
    finally:
        stop.set()
        for t in threads:
            t.join()
        log = server.stop()
    rss = [s[2] for s in samples]
    step = max(1, len(samples) // 12)
    print("  seconds  requests  RSS MB  open sockets")
    for t, n, mb, socks in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"  {t:7.0f}  {n:8d}  {mb:6.0f}  {socks:5d}")
    print(f"RSS: start {rss_start:.0f} MB, after {args.warmup} requests {rss_warm or float('nan'):.0f} MB, "
          f"end {rss[-1]:.0f} MB, peak {max(rss):.0f} MB; {done} requests in {wall:.0f} s "
          f"({done / wall:.1f}/s)")
    socks = [s[3] for s in samples]
    print(f"open sockets: at most {max(socks)}, at the end {socks[-1]} (listening socket included); slowloris: "
          f"{loris['opened']} opened, {loris['closed by server']} closed by the server, {loris['refused']} refused")
    print("statuses: " + ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(statuses.items())))
    fives = sum(v for k, v in statuses.items() if k >= 500 or k == 0)
    print(f"5xx or no answer: {fives}" + (f"; first: {server_errors[0]}" if server_errors else ""))
    if "Traceback" in log:
        print("server log has a traceback:\n" + log[-3000:])
    if args.json:
        args.json.write_text(json.dumps({"rss_start": rss_start, "rss_warm": rss_warm, "rss_end": rss[-1],
                                         "rss_peak": max(rss), "samples": samples, "statuses": statuses,
                                         "slowloris": loris, "errors": server_errors[:20]}, indent=1))
    return 1 if fives or "Traceback" in log else 0


if __name__ == "__main__":
    sys.exit(main())
