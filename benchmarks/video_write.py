"""What writing the drawn video costs per frame: pafpose's writer (PyAV, fragmented H.264 that
survives a hard kill) against OpenCV's ``cv2.VideoWriter`` (mp4v, what pafpose used before,
unplayable after ``kill -9``), on the same frames, interleaved rounds; and what a hard kill
leaves of each.

Usage::

    python benchmarks/video_write.py [--video ../shared/videos/street.avi] [--frames 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

KILL_CHILD = """
import os, sys, cv2, numpy as np
from pafpose.video import VideoWriter
frames = np.load(sys.argv[2])
if sys.argv[1] == "pafpose":
    w = VideoWriter(sys.argv[3], fps=25)
    write = w.write
else:
    w = cv2.VideoWriter(sys.argv[3], cv2.VideoWriter_fourcc(*"mp4v"), 25, (frames.shape[2], frames.shape[1]))
    write = w.write
for f in frames:
    write(f)
os.kill(os.getpid(), 9)
"""


def read_frames(path: Path, n: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def write_pafpose(frames: np.ndarray, path: Path) -> None:
    from pafpose.video import VideoWriter

    with VideoWriter(path, fps=25) as w:
        for f in frames:
            w.write(f)


def write_opencv(frames: np.ndarray, path: Path) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (frames.shape[2], frames.shape[1]))
    for f in frames:
        w.write(f)
    w.release()


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--video", type=Path, default=repo.parent / "shared" / "videos" / "street.avi")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"video_write: {args.video} not found; give --video", file=sys.stderr)
        return 1
    frames = read_frames(args.video, args.frames)
    n, h, w = frames.shape[:3]
    times: dict[str, list[float]] = {"pafpose": [], "opencv": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # interleaved, so that a busy host hits both alike
            for name, fn in (("pafpose", write_pafpose), ("opencv", write_opencv)):
                out = Path(tmp) / f"{name}.mp4"
                t0 = time.perf_counter()
                fn(frames, out)
                times[name].append((time.perf_counter() - t0) / n * 1e3)
                sizes[name] = out.stat().st_size
        np.save(Path(tmp) / "frames.npy", frames)
        killed = {}
        for name in ("pafpose", "opencv"):
            out = Path(tmp) / f"killed-{name}.mp4"
            subprocess.run([sys.executable, "-c", KILL_CHILD, name, str(Path(tmp) / "frames.npy"), str(out)],
                           capture_output=True, env=dict(os.environ, OPENCV_FFMPEG_LOGLEVEL="-8"))
            partial = out.with_name(f"{out.stem}.partial{out.suffix}") if name == "pafpose" else out
            killed[name] = count(partial) if partial.exists() else 0
    pa, cv = statistics.median(times["pafpose"]), statistics.median(times["opencv"])
    print(f"writing {n} frames of {w}x{h} from {args.video.name}, median of {args.rounds} interleaved rounds")
    print(f"  pafpose VideoWriter (PyAV, fragmented H.264): {pa:6.2f} ms/frame, {sizes['pafpose'] / n / 1e3:6.1f} "
          f"KB/frame; after kill -9 at frame {n}: {killed['pafpose']} frames play")
    print(f"  cv2.VideoWriter (mp4v):                       {cv:6.2f} ms/frame, {sizes['opencv'] / n / 1e3:6.1f} "
          f"KB/frame; after kill -9 at frame {n}: {killed['opencv']} frames play")
    print(f"  ratio pafpose / OpenCV: {pa / cv:.2f}x the time")
    print(f"reproduce: python benchmarks/video_write.py --video {args.video} --frames {args.frames} "
          f"--rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
