"""Speed against accuracy, for choosing the options: for each input height and precision, the
frames/s of `pafpose predict` on a real 720p video and the COCO keypoint AP on val2017-dev,
with and without tracking, and with the whole body (hands, face, feet).

    .venv/bin/python benchmarks/speed_accuracy.py [--heights 256 368 480]
        [--precisions int8 bfloat16 float32] [--set val2017-dev] [--json OUT]

Every figure is a command run as a user runs it, in a fresh process:
* AP: ``pafpose eval --annotations .../person_keypoints.json --images .../images --height H
  --precision P`` (eval's defaults otherwise: one scale, completion), on ../shared/coco/<set>;
* frames/s: ``pafpose predict street.avi --json none --height H --precision P`` (../shared's
  205-frame 1280x720 street video, 50 fps), the rate predict prints (frames over the time
  from the first frame to the last: start-up apart), people tracked (the default, offline);
  ``--no-track``; and ``--whole-body`` (the hand, face and foot networks on every person).

The backend is ``auto`` (OpenVINO on a CPU). The machine's other jobs move single figures by
a few %: the table is one run of each; re-run it to see the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


def run(args: list[str], env: dict[str, str]) -> str:
    r = subprocess.run([EXE, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"pafpose {' '.join(args)} failed:\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def rate(stdout: str) -> float:
    """predict's summary line: "205 video frames: ... (73.1/s), after 0.5 s start-up"."""
    m = re.search(r"video frames: .*\(([\d.]+)/s\)", stdout)
    if m is None:
        raise SystemExit(f"no rate in predict's output:\n{stdout}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[256, 368, 480])
    ap.add_argument("--precisions", nargs="+", default=["int8", "bfloat16", "float32"])
    ap.add_argument("--set", default="val2017-dev")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared")))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data, video = args.shared / "coco" / args.set, args.shared / "videos" / "street.avi"
    env = {**os.environ, "PAFPOSE_WEIGHTS_PATH": str(args.shared / "weights")}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pafpose-speed-") as tmp:
        t = Path(tmp)
        for h in args.heights:
            for p in args.precisions:
                model = ["--height", str(h), "--precision", p]
                run(["eval", "--annotations", str(data / "person_keypoints.json"), "--images", str(data / "images"),
                     "--metrics-json", str(t / "m.json"), *model], env)
                ap_ = json.loads((t / "m.json").read_text())["AP"]
                video_args = ["predict", str(video), "--out", str(t / "v"), "--json", "none", *model]
                tracked = rate(run(video_args, env))
                untracked = rate(run([*video_args, "--no-track"], env))
                whole = rate(run([*video_args, "--whole-body"], env))
                row = {"height": h, "precision": p, "AP": round(ap_, 3), "fps_tracked": tracked,
                       "fps_untracked": untracked, "fps_whole_body": whole}
                rows.append(row)
                print(row, flush=True)
    print("\n| height | precision | val2017-dev AP | frames/s, tracked | untracked | whole body, tracked |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['height']} | {r['precision']} | {r['AP']:.3f} | {r['fps_tracked']:.1f} | "
              f"{r['fps_untracked']:.1f} | {r['fps_whole_body']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
