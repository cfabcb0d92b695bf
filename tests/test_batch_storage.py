"""pafpose batch on inputs in object storage: a real S3-compatible server (moto in server mode,
started here on 127.0.0.1), reached through pyarrow's S3 file system as any S3 endpoint
would be (AWS_ENDPOINT_URL). Prefixes, list files and manifests in the bucket, videos copied
locally while they run, a missing object an error row; --out in the bucket, killed and resumed."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data")
pytest.importorskip("moto.server")
pytest.importorskip("flask")  # moto's server mode

from pafpose.batch import read_results
from pafpose.batch.inputs import enumerate_inputs
from test_batch import pafpose, people_of, people_of_row, same_people
from test_predict_cli import EXE, make_video


@pytest.fixture(scope="module")
def s3():
    """``(AWS environment for the server, pyarrow S3 file system)``: moto's S3 on a free
    loopback port, one bucket, stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.2)
        aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                               endpoint_override=f"http://127.0.0.1:{port}", allow_bucket_creation=True)
        fs.create_dir("poses-in")
        yield aws, fs
    finally:
        server.terminate()
        server.wait(timeout=30)


def put(fs, path, data: bytes) -> None:
    with fs.open_output_stream(path) as f:
        f.write(data)


def test_inputs_in_object_storage_give_the_poses_of_local_files(env, images, dance_frame, tmp_path, s3):
    aws, fs = s3
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    for name in ("p1.jpg", "ski.jpg"):
        (local / name).write_bytes((images / name).read_bytes())
    make_video(local / "sub" / "clip.mp4", dance_frame, 3)
    for rel in ("p1.jpg", "ski.jpg", "sub/clip.mp4"):
        put(fs, f"poses-in/data/{rel}", (local / rel).read_bytes())
    put(fs, "poses-in/data/README.md", b"not an input")
    put(fs, "poses-in/lists/some.txt", b"# relative to the list's prefix\n../data/p1.jpg\nmissing.jpg\n")
    # the workers' temporary files, where the video's local copy goes (a short path: Ray puts its sockets there too)
    scratch = Path(tempfile.mkdtemp(prefix="pp-", dir="/tmp"))
    e = {**env, **aws, "TMPDIR": str(scratch)}

    # enumeration: a prefix (recursive, non-media ignored), a list object; keys are the URLs
    os.environ.update(aws)
    try:
        found = enumerate_inputs(["s3://poses-in/data", "s3://poses-in/lists/some.txt"])
        nothing = enumerate_inputs(["s3://poses-in/nothing-here"])
    finally:
        for k in aws:
            os.environ.pop(k, None)
    assert [(i.key, i.kind) for i in found.items] == [
        ("s3://poses-in/data/p1.jpg", "image"), ("s3://poses-in/data/ski.jpg", "image"),
        ("s3://poses-in/data/sub/clip.mp4", "video"), ("s3://poses-in/lists/missing.jpg", "image")]
    assert found.ignored == 1 and not found.errors
    assert nothing.errors == ["s3://poses-in/nothing-here: no such object or prefix"]

    out = tmp_path / "out"
    args = ["--height", "256", "--json", "openpose"]
    r = pafpose(e, "batch", "s3://poses-in/data", "s3://poses-in/lists/some.txt", "--out", out, *args)
    assert r.returncode == 1, r.stdout + r.stderr  # the missing object is an error row
    assert "3 images and 1 video (3 frames)" in r.stdout and "1 failed" in r.stdout, r.stdout
    rows = read_results(out).to_pylist()
    by_key = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    assert "no such object" in by_key["s3://poses-in/lists/missing.jpg"][0]["error"]
    assert [row["frame"] for row in by_key["s3://poses-in/data/sub/clip.mp4"]] == [0, 1, 2]
    # the same poses as the same files read from disk
    ref = tmp_path / "ref"
    r2 = pafpose(env, "batch", local, "--out", ref, *args)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    local_rows = {(os.path.basename(x["key"]), x["frame"]): x for x in read_results(ref).to_pylist()}
    for row in rows:
        if row["error"] is None:
            twin = local_rows[(os.path.basename(row["key"]), row["frame"])]
            assert same_people(people_of_row(row), people_of_row(twin)), row["key"]
    assert same_people(people_of(out / "p1_keypoints.json"), people_of(ref / "p1_keypoints.json"))
    assert not list(scratch.glob("pafpose-*"))  # no local copy of the video left behind
    # the same run with --out in the bucket: its per-file outputs are the same bytes under the same names
    r3 = pafpose(e, "batch", "s3://poses-in/data", "s3://poses-in/lists/some.txt", "--out", "s3://poses-in/out",
                 *args)
    assert r3.returncode == 1 and "1 failed" in r3.stdout, r3.stdout + r3.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json") if p.name != "summary.json")
    assert len(files) == 5  # p1, ski and the video's 3 frames
    assert objects(fs, "poses-in/out") == sorted(["summary.json", *files, *(f"results/{p.name}" for p in
                                                                             (out / "results").glob("part-*"))])
    for name in files:
        assert fs.open_input_stream(f"poses-in/out/{name}").read() == (out / name).read_bytes(), name
    assert scratch.is_dir() and not list(scratch.glob("pafpose-*"))  # the units' local files went with their upload
    # the missing object appears; --retry-errors rewrites the shard in the bucket without its error row
    put(fs, "poses-in/lists/missing.jpg", (local / "p1.jpg").read_bytes())
    r4 = pafpose(e, "batch", "s3://poses-in/data", "s3://poses-in/lists/some.txt", "--out", "s3://poses-in/out",
                 *args, "--retry-errors")
    assert r4.returncode == 0 and "--retry-errors: 1 input with error rows done again" in r4.stderr, r4.stderr
    keys = shard_keys(fs, "poses-in/out")
    assert len(keys) == 6 and len(set(keys)) == 4  # 3 images and the video's 3 frames, each once
    assert keys.count("s3://poses-in/lists/missing.jpg") == 1
    os.environ.update(aws)
    try:
        assert read_results("s3://poses-in/out", ["error"]).column("error").null_count == 6
    finally:
        for k in aws:
            os.environ.pop(k, None)
    shutil.rmtree(scratch, ignore_errors=True)
    # resumed: nothing left to do, in seconds
    r = pafpose(e, "batch", "s3://poses-in/data", "s3://poses-in/lists/some.txt", "--out", out, *args)
    assert r.returncode == 0 and "nothing to do: all 4 inputs were done before" in r.stdout, r.stdout + r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 4 and np.isfinite(summary["startup"])


def shard_keys(fs, prefix: str) -> list[str]:
    """Every key of every shard object under ``prefix``/results, read from the objects themselves."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    keys = []
    for info in fs.get_file_info(pafs.FileSelector(f"{prefix}/results", allow_not_found=True)):
        name = info.path.rsplit("/", 1)[-1]
        if name.startswith("part-") and name.endswith(".parquet"):
            with fs.open_input_file(info.path) as f:
                keys += pq.read_table(f, columns=["key"]).column("key").to_pylist()
    return keys


def objects(fs, prefix: str) -> list[str]:
    import pyarrow.fs as pafs

    return sorted(i.path.removeprefix(prefix + "/")
                  for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
                  if i.type == pafs.FileType.File)


def test_out_in_object_storage_holds_the_shards_each_input_once_after_a_kill(env, dance_frame, tmp_path, s3):
    """--out s3://...: the shards and summary.json are objects (no local folder made); a run
    killed (SIGKILL) after some shards resumes with every input exactly once, the lock object
    the killed run left taken over (its process is gone)."""
    import cv2

    from pafpose.batch.results import results_frame

    aws, fs = s3
    fs.create_dir("poses-out")
    data = tmp_path / "data"
    data.mkdir()
    total, shard = 32, 2
    for i in range(total):  # distinct, deterministic crops, small: the network's time is not what is tested
        x = (i * 7) % 200
        cv2.imwrite(str(data / f"img{i:03d}.jpg"), cv2.resize(dance_frame[:, x: x + 256], (128, 128)))
    scratch = Path(tempfile.mkdtemp(prefix="pp-", dir="/tmp"))
    e = {**env, **aws, "TMPDIR": str(scratch)}
    out = "s3://poses-out/run1"
    # killed: Ray's actors writing to the bucket; resumed: in this process (the default), from the same objects
    args = [EXE, "batch", str(data), "--out", out, "--shard-size", str(shard), "--height", "128", "--workers", "2"]
    proc = subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while len(shard_keys(fs, "poses-out/run1")) < 2 * shard:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no shard written in 180 s"
            time.sleep(0.05)
        proc.kill()  # the driver alone, SIGKILL: no clean-up of its own
        proc.wait(timeout=30)
        keys, deadline = None, time.monotonic() + 60  # a worker in the middle of a unit may still finish it
        while keys != (keys := objects(fs, "poses-out/run1")) and time.monotonic() < deadline:
            time.sleep(1.0)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of the killed run's Ray (its agents)
    before = shard_keys(fs, "poses-out/run1")
    assert 0 < len(before) < total, "the kill came too late (or too early) to test resuming"
    assert ".pafpose-batch.lock" in objects(fs, "poses-out/run1")  # left by the killed run: its process is gone
    r = pafpose(e, "batch", data, "--out", out, "--shard-size", str(shard), "--height", "128")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(before)} done before" in r.stdout and f"{total} of {total} inputs in {out}/results" in r.stdout
    keys = shard_keys(fs, "poses-out/run1")
    assert len(keys) == len(set(keys)) == total  # every input exactly once, in the objects themselves
    left = objects(fs, "poses-out/run1")
    assert "summary.json" in left and ".pafpose-batch.lock" not in left
    # and the killed run's marker (a later run cleans markers an hour old, as on disk)
    assert len([n for n in left if not (n.startswith("results/part-") or n == "summary.json")]) == 1, left
    assert [n for n in left if n.startswith("results/.run-")], left
    assert not (tmp_path / "s3:").exists()  # nothing local named after the URL
    os.environ.update(aws)
    try:
        frame = results_frame(out, ["key", "people", "error"])
    finally:
        for k in aws:
            os.environ.pop(k, None)
    assert len(frame) == total and frame["error"].isna().all()
    # the same poses as a local --out
    ref = tmp_path / "ref"
    r = pafpose(env, "batch", data, "--out", ref, "--height", "128")
    assert r.returncode == 0, r.stdout + r.stderr
    local = {x["key"]: x for x in read_results(ref).to_pylist()}
    for row in frame.to_dict("records"):
        assert same_people(people_of_row(row), people_of_row(local[row["key"]])), row["key"]
    shutil.rmtree(scratch, ignore_errors=True)


def test_out_in_object_storage_refuses_coco_and_other_urls_in_one_line(env, tmp_path, images, s3):
    aws, _ = s3
    r = pafpose({**env, **aws}, "batch", images / "p1.jpg", "--out", "s3://poses-out/x", "--json", "coco")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--json coco: its one file for the run is merged in a local or mounted --out" in r.stderr
    r = pafpose(env, "batch", tmp_path, "--out", "http://example.com/poses")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "http://example.com/poses: --out is a folder or an object-store prefix" in r.stderr
    assert not (tmp_path.parent / "s3:").exists() and not os.path.exists("s3:") and not os.path.exists("http:")


def test_the_lock_in_object_storage_stops_a_second_run_and_frees_a_dead_ones(s3, monkeypatch):
    """The run's lock object: held by a live run (here this process, or a run elsewhere that
    renewed it just now), a second run stops with one line; left by a dead process on this
    host, or not renewed for LOCK_STALE seconds, it is taken over; a run removes its own."""
    import pyarrow.fs as pafs

    from pafpose import storage
    from pafpose.batch import ledger
    from pafpose.errors import PafposeError

    aws, fs = s3
    for k, v in aws.items():
        monkeypatch.setenv(k, v)
    fs.create_dir("poses-lock")
    out, lock = "s3://poses-lock/run", "poses-lock/run/.pafpose-batch.lock"
    host = socket.gethostname()

    def left(**held):
        put(fs, lock, json.dumps({"run": "other", **held}).encode())

    left(host=host, pid=os.getpid(), beat=time.time())  # alive, here
    with pytest.raises(PafposeError, match=f"another pafpose batch is writing there \\(host {host}, pid {os.getpid()}"):
        with ledger.exclusive(out):
            pass
    left(host="elsewhere", pid=1, beat=time.time() - 5)  # alive elsewhere, renewed 5 s ago
    with pytest.raises(PafposeError, match="lock renewed 5 s ago"):
        with ledger.exclusive(out):
            pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for held in ({"host": host, "pid": dead.pid, "beat": time.time()},  # its process is gone
                 {"host": "elsewhere", "pid": 1, "beat": time.time() - ledger.LOCK_STALE - 1}):  # not renewed
        left(**held)
        with ledger.exclusive(out):
            mine = json.loads(fs.open_input_stream(lock).read())
            assert mine["run"] != "other" and mine["pid"] == os.getpid()
        assert fs.get_file_info(lock).type == pafs.FileType.NotFound  # a run removes its own lock
    # renewed while held
    monkeypatch.setattr(ledger, "LOCK_BEAT", 0.2)

    def beat():  # the lock as it is now; read as its renewal replaces it, a stream can mix two versions: again
        for _ in range(20):
            with contextlib.suppress(ValueError):
                return json.loads(fs.open_input_stream(lock).read())["beat"]
            time.sleep(0.05)
        raise AssertionError("the lock never read whole")

    with ledger.exclusive(out):
        first = beat()
        until = time.monotonic() + 15.0  # a beat every 0.2 s; a busy machine's object store may take seconds
        while beat() <= first and time.monotonic() < until:
            time.sleep(0.2)
        assert beat() > first
    # a lock read half renewed (two versions mixed) is read again, not taken for none and taken over
    real = storage.read_bytes
    torn = [json.dumps({"run": "other", "host": "elsewhere", "pid": 1, "beat": time.time()}).encode() + b"}"]
    monkeypatch.setattr(storage, "read_bytes", lambda url, n: torn.pop() if torn else real(url, n))
    left(host="elsewhere", pid=1, beat=time.time())
    with pytest.raises(PafposeError, match="another pafpose batch is writing there"):
        with ledger.exclusive(out):
            pass
    assert not torn
