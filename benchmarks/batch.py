"""`pafpose batch` against `pafpose predict`, and what a crash costs (issue 17).

    .venv/bin/python benchmarks/batch.py [--images 1000] [--backend openvino] [--rounds 2]
                                         [--skip-speed] [--skip-ceiling] [--skip-resume] [--json FILE]

Speed: 1000+ deterministic images made from ../shared/images (seeded crops of 55-100 % of
each side, resized to 640 px on the longer side, JPEG quality 90) in a temporary folder.
Each command runs on the whole set and on its first fifth (a folder of hard links), and the
rate is the marginal one, (N - n) / (T_N - T_n): start-up (Python, Ray, loading the model)
cancels out, what is left is the steady images/s from file to written result. Configurations
take turns within each round; the figure is the best round. `pafpose predict` writes one
OpenPose JSON per image; `pafpose batch` writes its Parquet shards. Same backend and height.

Ceiling: a list of 20,000 paths that don't exist: every input is an error row, so the run
measures what Ray Data, the driver and the shard writing sustain with no model work: the
rate no number of nodes can pass with one driver.

Resume: a run of 300 images (shards of 8, 2 workers) is hit at a seeded random point: (a)
the driver alone is killed (SIGKILL), then the same command runs again; (b) the driver, its
Ray and the workers are all killed at once (SIGKILL, as a crash or power cut), then the
same command runs again; (c) one worker actor is killed (SIGKILL) and the run goes on (Ray
restarts it and retries its task). Each input must end up in the shards exactly once; the
work redone is counted from the per-file OpenPose JSON (`--json openpose`): a file present
when the kill came that is written again afterwards (a new inode) was done twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
EXE = [sys.executable, "-m", "pafpose.cli"]


def make_images(shared: Path, folder: Path, n: int, side: int = 640) -> None:
    """``n`` JPEGs: seeded crops of the ../shared photos, longer side ``side``."""
    photos = [cv2.imread(str(p)) for p in sorted((shared / "images").glob("*.*"))]
    photos = [p for p in photos if p is not None]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        im = photos[i % len(photos)]
        h, w = im.shape[:2]
        ch, cw = int(h * rng.uniform(0.55, 1.0)), int(w * rng.uniform(0.55, 1.0))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = im[y : y + ch, x : x + cw]
        f = side / max(ch, cw)
        crop = cv2.resize(crop, (max(1, round(cw * f)), max(1, round(ch * f))),
                          interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"img{i:05d}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])


def become_subreaper() -> None:
    """Processes a command leaves behind (Ray's, when their parent has gone) become ours, so
    that their CPU time is counted (RUSAGE_CHILDREN) when :func:`reap` waits for them."""
    import ctypes

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap(limit: float = 120.0) -> None:
    """Wait for every process left of the last command (killed after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                for child in _children(os.getpid()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
            time.sleep(0.1)


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,),
          ) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and CPU seconds (of every process the command started) of a command."""
    reap()
    c0, t0 = cpu_seconds(), time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    t = time.perf_counter() - t0
    reap()
    c = cpu_seconds() - c0
    if r.returncode not in ok:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr[-3000:]}")
    return t, c, r


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def speed(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict:
    full, part = work / "full", work / "part"
    make_images(args.shared, full, args.images)
    part.mkdir()
    small = args.images // 5
    for p in sorted(full.iterdir())[:small]:
        os.link(p, part / p.name)
    model = ["--backend", args.backend, "--height", str(args.height)]
    configs = {
        "predict": lambda src, out: [*EXE, "predict", str(src), "--out", str(out), *model],
        "batch, 1 worker": lambda src, out: [*EXE, "batch", str(src), "--out", str(out), "--workers", "1", *model],
        "batch, 2 workers": lambda src, out: [*EXE, "batch", str(src), "--out", str(out), "--workers", "2", *model],
        "batch, in this process (--workers 0)": lambda src, out: [*EXE, "batch", str(src), "--out", str(out),
                                                                  "--workers", "0", *model],
    }
    if args.three:
        configs["batch, 3 workers"] = lambda src, out: [*EXE, "batch", str(src), "--out", str(out), "--workers", "3",
                                                        *model]
    results: dict[str, dict] = {name: {"rounds": []} for name in configs}
    mean = sum(p.stat().st_size for p in full.iterdir()) / args.images
    print(f"{args.images} images, {mean / 1e3:.0f} kB each on average", flush=True)
    results["input_bytes_per_image"] = round(mean)
    for rnd in range(args.rounds):
        names = list(configs)
        for name in names[rnd % len(names):] + names[: rnd % len(names)]:  # each round starts elsewhere
            cmd = configs[name]
            times, cpu, lines = {}, {}, {}
            for label, src in (("part", part), ("full", full)):
                out = work / f"out-{rnd}-{name.replace(' ', '').replace(',', '')}-{label}"
                times[label], cpu[label], r = timed(cmd(src, out), env)
                lines[label] = r.stdout.strip().splitlines()
                if label == "full" and (out / "results").is_dir():
                    size = sum(p.stat().st_size for p in (out / "results").iterdir())
                    results[name]["result_bytes_per_image"] = round(size / args.images)
                if label == "full":  # the command's own pace after its start-up
                    if (out / "summary.json").exists():
                        summary = json.loads((out / "summary.json").read_text())
                        own = summary["steady"]
                        stages = {k: round(sum(w[k] for w in summary["workers"].values()) / args.images * 1e3, 2)
                                  for k in ("read", "infer", "write")}
                    else:
                        # predict's summary line ("N images: ... (R/s), after S s start-up"), after "network: ..."
                        own = float(next(m.group(1) for line in lines[label]
                                         if (m := re.search(r"\(([\d.]+)/s\)", line))))
                        stages = {}
                shutil.rmtree(out)
            n = args.images - small
            marginal = n / (times["full"] - times["part"])
            cpu_ms = (cpu["full"] - cpu["part"]) / n * 1e3
            results[name]["rounds"].append({"own_images_per_s": round(own, 2), "worker_ms_per_image": stages,
                                            "T_full": round(times["full"], 2), "T_part": round(times["part"], 2),
                                            "cpu_full": round(cpu["full"], 2), "cpu_part": round(cpu["part"], 2),
                                            "marginal_images_per_s": round(marginal, 2),
                                            "cpu_ms_per_image": round(cpu_ms, 2), "load": load(),
                                            # everything the command spent (start-up included), per image
                                            "cpu_ms_per_image_all": round(cpu["full"] / args.images * 1e3, 2),
                                            "cpu_ms_per_image_all_part": round(cpu["part"] / small * 1e3, 2),
                                            "output": lines["full"][:4]})
            print(f"round {rnd}: {name}: {own:.2f} images/s after its start-up {stages or ''}; "
                  f"{args.images} images in {times['full']:.1f} s ({cpu['full']:.1f} CPU s), "
                  f"{small} in {times['part']:.1f} s ({cpu['part']:.1f} CPU s): {marginal:.2f} images/s, "
                  f"{cpu_ms:.1f} CPU ms per image, marginal (load {load()})", flush=True)
    for res in (r for r in results.values() if isinstance(r, dict)):
        res["best"] = max(r["marginal_images_per_s"] for r in res["rounds"])
        res["own_best"] = max(r["own_images_per_s"] for r in res["rounds"])
        res["cpu_ms_median"] = round(float(np.median([r["cpu_ms_per_image"] for r in res["rounds"]])), 2)
        res["cpu_all_median"] = round(float(np.median([r["cpu_ms_per_image_all"] for r in res["rounds"]])), 2)
        res["cpu_all_part_median"] = round(float(np.median([r["cpu_ms_per_image_all_part"] for r in res["rounds"]])),
                                           2)
    ref, ref_cpu = results["predict"]["best"], results["predict"]["cpu_ms_median"]
    ref_own = results["predict"]["own_best"]
    print("\n| command | images/s after start-up (best round) | vs predict | images/s marginal (best round) "
          "| vs predict | CPU ms per image (marginal, median) | vs predict |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, res in ((n, r) for n, r in results.items() if isinstance(r, dict)):
        print(f"| {name} | {res['own_best']:.2f} | {res['own_best'] / ref_own:.2f}x | {res['best']:.2f} | "
              f"{res['best'] / ref:.2f}x | {res['cpu_ms_median']:.1f} | {res['cpu_ms_median'] / ref_cpu:.2f}x |")
    small = args.images // 5
    p_all, p_part = results["predict"]["cpu_all_median"], results["predict"]["cpu_all_part_median"]
    print(f"\n| command | CPU ms per image, all of it, at {small} images | vs predict | at {args.images} images "
          "| vs predict | start-up s (driver, Ray, model) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, res in ((n, r) for n, r in results.items() if isinstance(r, dict)):
        start = [r["T_full"] - args.images / r["own_images_per_s"] for r in res["rounds"] if r["own_images_per_s"]]
        print(f"| {name} | {res['cpu_all_part_median']:.1f} | {res['cpu_all_part_median'] / p_part:.2f}x | "
              f"{res['cpu_all_median']:.1f} | {res['cpu_all_median'] / p_all:.2f}x | "
              f"{fmt_s(min(start)) if start else '-'} |")
    return results


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f}"


def ceiling(work: Path, env: dict[str, str], n: int = 20000) -> dict:
    """``n`` inputs that are all error rows: Ray Data, the driver and the shards with no model work."""
    from pafpose.batch.ledger import scan

    listing = work / "missing.txt"
    listing.write_text("".join(f"{work}/nowhere/img{i:06d}.jpg\n" for i in range(n)))
    out = work / "out-ceiling"
    res = {}
    for workers, shard in ((1, 64), (2, 64), (2, 256)):
        t, cpu, _ = timed([*EXE, "batch", str(listing), "--out", str(out), "--workers", str(workers),
                           "--shard-size", str(shard)], env, ok=(1,))
        summary = json.loads((out / "summary.json").read_text())
        shards = len(list((out / "results").glob("part-*")))
        t1 = time.perf_counter()
        done = scan(out)
        scan_s = time.perf_counter() - t1
        res[f"{workers} workers, shards of {shard}"] = {
            "inputs": n, "wall_s": round(t, 2), "cpu_s": round(cpu, 2), "pool_s": round(summary["seconds"], 2),
            "startup_s": round(summary["startup"], 2), "shards": shards,
            "inputs_per_s": round(n / summary["seconds"], 1), "tasks_per_s": round(shards / summary["seconds"], 1),
            "scan_s": round(scan_s, 3), "scanned_keys": len(done.keys), "load": load()}
        print(f"ceiling, {workers} worker(s), shards of {shard}: {n} error rows in {t:.1f} s ({cpu:.1f} CPU s; "
              f"{summary['seconds']:.1f} s in the pool, {summary['startup']:.1f} s start-up): "
              f"{n / summary['seconds']:.0f} inputs/s, {shards} shards ({shards / summary['seconds']:.0f}/s); "
              f"ledger scan of the shards {scan_s * 1e3:.0f} ms (load {load()})", flush=True)
        shutil.rmtree(out)
    return res


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _actors(driver: int) -> list[int]:
    out = []
    for p in _descendants(driver):
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(p) / "cmdline").read_bytes().startswith(b"ray::MapWorker"):
                out.append(p)
    return out


def _snapshot(out: Path) -> dict[str, tuple[int, int]]:
    snap = {}
    for p in out.glob("*_keypoints.json"):
        with contextlib.suppress(OSError):
            st = p.stat()
            snap[p.name] = (st.st_ino, st.st_mtime_ns)
    return snap


def _check(out: Path, n: int) -> int:
    import pyarrow.parquet as pq

    keys = []
    for p in (out / "results").glob("part-*.parquet"):
        keys += pq.read_table(p, columns=["key"]).column("key").to_pylist()
    if len(keys) != len(set(keys)) or len(keys) != n:
        raise SystemExit(f"NOT exactly once: {len(keys)} rows, {len(set(keys))} keys, {n} inputs")
    return len(keys)


def resume(args: argparse.Namespace, work: Path, env: dict[str, str], trials: int, n: int = 300, shard: int = 8,
           workers: int = 2) -> dict:
    src = work / "resume-images"
    make_images(args.shared, src, n, side=480)
    shards = n // shard
    rng = random.Random(17)
    report: dict[str, list] = {"driver": [], "everything": [], "worker": []}
    for what in report:
        for trial in range(trials):
            out = work / f"out-resume-{what}-{trial}"
            cmd = [*EXE, "batch", str(src), "--out", str(out), "--workers", str(workers), "--shard-size", str(shard),
                   "--json", "openpose", "--backend", args.backend, "--height", str(args.height)]
            at = rng.randint(2, shards - 4)  # kill when this many shards are written
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
            while len(list((out / "results").glob("part-*"))) < at and proc.poll() is None:
                time.sleep(0.005)
            if proc.poll() is not None:
                raise SystemExit(f"the run ended before the kill: {proc.communicate()}")
            t0 = time.perf_counter()
            if what in ("driver", "everything"):
                victims = [proc.pid] + (_descendants(proc.pid) if what == "everything" else [])
                for pid in victims:  # "everything": the driver, its Ray and the workers at once, as a crash would
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait()
                # its local Ray goes with it; wait until its workers are gone (no file changes any more)
                while True:
                    before = _snapshot(out)
                    time.sleep(1.0)
                    if _snapshot(out) == before:
                        break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the agents Ray leaves for a minute
                done_at_kill = len(list((out / "results").glob("part-*")))
                snap = _snapshot(out)
                r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
                exit_code = r.returncode
                second = r.stdout.strip().splitlines()[0]
            else:
                actors = []
                while not actors:
                    actors = _actors(proc.pid)
                victim = rng.choice(actors)
                os.kill(victim, signal.SIGKILL)
                snap = _snapshot(out)
                done_at_kill = len(list((out / "results").glob("part-*")))
                stdout, _ = proc.communicate(timeout=600)
                exit_code = proc.returncode
                second = stdout.strip().splitlines()[0] if stdout.strip() else ""
            total = _check(out, n)
            after = _snapshot(out)
            redone = sum(1 for k, v in snap.items() if after.get(k) != v)
            entry = {"kill_after_shards": at, "shards_at_kill": done_at_kill, "redone_images": redone,
                     "bound": workers * shard, "exit": exit_code, "rows": total,
                     "recovery_s": round(time.perf_counter() - t0, 1), "summary": second}
            report[what].append(entry)
            reap()
            print(f"resume, {what} killed after {at} shards: exit {exit_code}, {total} inputs exactly once, "
                  f"{redone} images redone (bound {workers * shard}); {second}", flush=True)
            shutil.rmtree(out)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--trials", type=int, default=3, help="resume: kills of each kind")
    ap.add_argument("--three", action="store_true", help="also 3 workers (more actors than cores)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-ceiling", action="store_true")
    ap.add_argument("--skip-resume", action="store_true")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", REPO.parent / "shared")))
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    become_subreaper()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PAFPOSE_OFFLINE="1")
    if (args.shared / "weights").is_dir():
        env.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    import pyarrow
    import ray

    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
               "pyarrow": pyarrow.__version__, "processor": platform.processor() or platform.machine(),
               "load_at_start": load()}
    figures: dict = {"machine": machine,
                     "backend": args.backend, "height": args.height, "images": args.images}
    print(f"machine: {figures['machine']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pafpose-batch-bench-") as tmp:
        work = Path(tmp)
        env["PAFPOSE_HOME"] = str(work / "home")  # the exported models are cached once for all runs
        if not args.skip_speed:
            figures["speed"] = speed(args, work, env)
        if not args.skip_ceiling:
            figures["ceiling"] = ceiling(work, env)
        if not args.skip_resume:
            figures["resume"] = resume(args, work, env, args.trials)
    figures["machine"]["load_at_end"] = load()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
