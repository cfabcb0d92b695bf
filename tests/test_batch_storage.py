"""pafpose batch on inputs in object storage: a real S3-compatible server (moto in server mode,
started here on 127.0.0.1), reached through pyarrow's S3 file system as any S3 endpoint
would be (AWS_ENDPOINT_URL). Prefixes, list files and manifests in the bucket, videos copied
locally while they run, a missing object an error row; --out as a URL refused in one line."""

import json
import os
import shutil
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
from test_predict_cli import make_video


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
    shutil.rmtree(scratch, ignore_errors=True)
    # resumed: nothing left to do, in seconds
    r = pafpose(e, "batch", "s3://poses-in/data", "s3://poses-in/lists/some.txt", "--out", out, *args)
    assert r.returncode == 0 and "nothing to do: all 4 inputs were done before" in r.stdout, r.stdout + r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 4 and np.isfinite(summary["startup"])


def test_out_as_a_url_is_refused_in_one_line(env, tmp_path):
    r = pafpose(env, "batch", tmp_path, "--out", "s3://bucket/poses")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "s3://bucket/poses: --out is a local or mounted folder" in r.stderr
    assert not (tmp_path.parent / "s3:").exists() and not os.path.exists("s3:")
