"""`pafpose batch` on real Ray (a local instance, as the command starts it) and the real model:
one row per input, the poses `pafpose predict` finds, Parquet that reads back into the
documented schema, exactly-once results after the driver is killed part-way, and one-line
failures. The pieces that need no Ray (inputs, ledger, reading results) are tested directly."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("ray.data")
import pyarrow.parquet as pq  # noqa: E402

from pafpose.batch import SCHEMA, read_results, results_frame  # noqa: E402
from pafpose.batch.inputs import enumerate_inputs  # noqa: E402
from pafpose.batch.ledger import scan, shard_name  # noqa: E402
from pafpose.batch.results import row, write_shard  # noqa: E402
from pafpose.errors import PafposeError  # noqa: E402
from test_predict_cli import EXE, make_video  # noqa: E402


def pafpose(env, *args, timeout=300):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def people_of(openpose_file):
    """``{id or order: K*3 keypoints}`` of an OpenPose JSON file."""
    doc = json.loads(Path(openpose_file).read_text())
    return [(p["person_id"][0], np.array(p["pose_keypoints_2d"])) for p in doc["people"]]


def people_of_row(r):
    """The same from a result row (missing keypoints null -> OpenPose's 0, 0, 0)."""
    out = []
    for p in r["people"]:
        kps = np.array([k if k is not None else (0.0, 0.0, 0.0) for k in p["keypoints"]], dtype=np.float64)
        out.append((-1 if p["track_id"] is None else p["track_id"], kps.ravel()))
    return out


def same_people(a, b):
    """The same people, ids and keypoints (to the 0.001 px OpenPose JSON keeps), in the same order."""
    pairs = zip(a, b, strict=True) if len(a) == len(b) else ()
    return len(a) == len(b) and all(i == j and np.allclose(x, y, atol=2e-3) for (i, x), (j, y) in pairs)


@pytest.fixture(scope="module")
def data_set(env, images, dance_frame, tmp_path_factory):
    """A folder of good and bad images and a short video, a list file naming a missing file,
    and one `pafpose batch` run (2 workers) and one `pafpose predict` run over them."""
    root = tmp_path_factory.mktemp("batch")
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    for name in ("p1.jpg", "cat.jpg"):
        (data / name).write_bytes((images / name).read_bytes())
    cv2.imwrite(str(data / "sub" / "dance.png"), dance_frame)
    (data / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (data / "empty.png").write_bytes(b"")
    make_video(data / "clip.mp4", dance_frame, 4)
    (root / "more.txt").write_text(f"# inputs by list\n{images / 'ski.jpg'}\ndata/p1.jpg\nmissing.jpg\n")
    out = root / "out"
    batch = pafpose(env, "batch", data, root / "more.txt", "--out", out, "--workers", "2", "--shard-size", "2",
                    "--json", "openpose", "--height", "256")
    predict = pafpose(env, "predict", data, images / "ski.jpg", "--out", root / "predicted", "--height", "256")
    return root, out, batch, predict


def test_one_row_per_input_and_the_poses_of_predict(data_set):
    root, out, batch, predict = data_set
    assert batch.returncode == 1, batch.stderr  # bad files are error rows: the run goes on, the exit code says so
    assert "Traceback" not in batch.stderr
    assert "7 images and 1 video (4 frames)" in batch.stdout and "3 failed" in batch.stdout, batch.stdout
    assert "8 of 8 inputs" in batch.stdout  # p1.jpg is named twice (in the folder and the list): once
    table = read_results(out)
    rows = table.to_pylist()
    by_source = {}
    for r in rows:
        by_source.setdefault(Path(r["source"]).name, []).append(r)
    assert sorted(by_source) == ["cat.jpg", "clip.mp4", "corrupt.jpg", "dance.png", "empty.png", "missing.jpg",
                                 "p1.jpg", "ski.jpg"]
    assert all(len(v) == 1 for k, v in by_source.items() if k != "clip.mp4")
    assert [r["frame"] for r in by_source["clip.mp4"]] == [0, 1, 2, 3]
    errors = {k: v[0]["error"] for k, v in by_source.items() if v[0]["error"]}
    assert sorted(errors) == ["corrupt.jpg", "empty.png", "missing.jpg"]
    assert "empty file" in errors["empty.png"] and "no such file" in errors["missing.jpg"]
    assert all(r["people"] == [] and r["width"] is None for k in errors for r in by_source[k])
    assert by_source["dance.png"][0]["width"] == 456 and by_source["dance.png"][0]["height"] == 256
    assert len(by_source["dance.png"][0]["people"]) == 3 and by_source["cat.jpg"][0]["people"] == []
    # the poses pafpose predict finds: images, and the video's frames with their track ids
    assert predict.returncode == 1 and "2 failed" in predict.stdout, predict.stderr
    pred = root / "predicted"
    for name, file in (("p1.jpg", "p1"), ("ski.jpg", "ski"), ("dance.png", "sub/dance"), ("cat.jpg", "cat")):
        assert same_people(people_of_row(by_source[name][0]), people_of(pred / f"{file}_keypoints.json")), name
    for r in by_source["clip.mp4"]:
        expected = people_of(pred / f"clip_{r['frame']:012d}_keypoints.json")
        assert same_people(people_of_row(r), expected) and sorted(i for i, _ in expected) == [0, 1, 2]
    # --json openpose: the files pafpose predict writes, under the same names (the workers' one thread each may
    # round a coordinate's last digit the other way than predict's two threads)
    for file in ("p1", "sub/dance", "cat", "clip_000000000003"):
        ours, theirs = (json.loads((d / f"{file}_keypoints.json").read_text()) for d in (out, pred))
        assert [sorted(p) for p in ours["people"]] == [sorted(p) for p in theirs["people"]]
        assert same_people(people_of(out / f"{file}_keypoints.json"), people_of(pred / f"{file}_keypoints.json"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 8 and summary["processed"] == 8 and summary["errors"] == 3
    assert summary["frames"] == 4 and summary["pool"] == 2


def test_parquet_reads_back_into_the_documented_schema(data_set, env, monkeypatch):
    _, out, _, _ = data_set
    shards = sorted((out / "results").glob("part-*.parquet"))
    assert len(shards) == 5  # 7 images in batches of 2, the video alone
    for shard in shards:
        table = pq.read_table(shard)
        assert table.schema.equals(SCHEMA), table.schema
    rows = read_results(out).to_pylist()
    assert len({(r["key"], r["frame"]) for r in rows}) == len(rows) == 11
    person = next(p for r in rows for p in r["people"])
    assert set(person) == {"track_id", "score", "keypoints", "parts"} and len(person["keypoints"]) == 18
    assert all(k is None or len(k) == 3 for k in person["keypoints"]) and person["parts"] is None
    assert all(r["skeleton"] == "coco18" and r["model"] == "human-pose-estimation-0001" for r in rows)
    options = json.loads(rows[0]["options"])
    assert options["height"] == 256 and options["backend"] == "auto"  # the options as given (auto: the default)
    assert not list((out / "results").glob(".*part*"))  # no temporary file left behind
    # what ran, on every row: "auto" resolved, the weights' digest, the version, the host, the time
    import hashlib

    import pafpose
    from pafpose.weights import get_pretrained_cfg, resolve_file

    for name in ("PAFPOSE_WEIGHTS_PATH", "PAFPOSE_HOME"):  # the weights the workers used
        if name in env:
            monkeypatch.setenv(name, env[name])
    cfg = get_pretrained_cfg("human-pose-estimation-0001")  # an IR: .xml and .bin, hashed together
    digests = [hashlib.sha256(resolve_file(cfg, f).read_bytes()).hexdigest() for f in cfg.files]
    sha = hashlib.sha256("".join(digests).encode()).hexdigest() if len(digests) > 1 else digests[0]
    for r in rows:
        assert r["backend"] in ("openvino", "torch", "onnxruntime") and r["precision"] != "auto"
        assert r["device"] == "cpu" and r["model_sha256"] == sha and r["pafpose_version"] == pafpose.__version__
        assert r["host"] == socket.gethostname() and r["written"] is not None
    written = sorted(r["written"] for r in rows)
    assert (written[-1] - written[0]).total_seconds() < 600
    # the keypoints' names are in the schema (for each skeleton)
    names = json.loads(pq.read_schema(shards[0]).metadata[b"pafpose.keypoints"])
    assert names["coco18"][:2] == ["nose", "neck"] and len(names["body25"]) == 25
    # pandas: integers stay integers (null frame for images), missing keypoints are None
    frame = results_frame(out)
    assert str(frame["frame"].dtype) == "Int64" and str(frame["width"].dtype) == "Int32"
    assert frame["frame"].isna().sum() == 7 and frame["frame"].max() == 3
    # SQL in one line (DuckDB on the Parquet files): the mean x of the noses found, nulls left out
    import duckdb

    mean_x = duckdb.sql(f"select avg(p.keypoints[1][1]) from (select unnest(people) as p from "
                        f"read_parquet('{out}/results/*.parquet'))").fetchall()[0][0]
    noses = [p["keypoints"][0][0] for r in rows for p in r["people"] if p["keypoints"][0] is not None]
    assert mean_x == pytest.approx(np.mean(noses), rel=1e-5)


def _files(folder):
    """Every file a run wrote under ``folder`` (relative paths), batch's own ledger and lock apart."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                  and p.parts[len(folder.parts)] != "results" and p.name not in ("summary.json", ".pafpose-batch.lock"))


def test_predict_and_batch_write_the_same_files(env, images, dance_frame, tmp_path):
    """The same inputs and output options (OpenPose's, drawings, ControlNet, PoseTrack for videos):
    the same files, with the same contents (one thread each, so the network's sums agree)."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "p1.jpg").write_bytes((images / "p1.jpg").read_bytes())
    cv2.imwrite(str(data / "sub" / "dance.png"), dance_frame)
    make_video(data / "clip.mp4", dance_frame, 3)
    common = ["--height", "256", "--threads", "1", "--batch-size", "2", "--save-images", "--save-video",
              "--number-people-max", "2", "--keypoints", "body25", "--keypoint-scale", "1", "--part-candidates",
              "--write-heatmaps", "--render", "controlnet", "--detect-resolution", "256", "--hand", "--face",
              "--controlnet-mode", "openpose_full"]  # whole body (issue 23) through the same writer
    r = pafpose(env, "predict", data, "--out", tmp_path / "p", *common)
    assert r.returncode == 0, r.stderr
    # (in this process, the default: its worker writes with the same code as Ray's actors, as
    # test_workers_0_runs_in_this_process... checks, and the COCO part below runs on two; a Ray start saved)
    r = pafpose(env, "batch", data, "--out", tmp_path / "b", "--json", "openpose", *common)
    assert r.returncode == 0, r.stderr
    files = _files(tmp_path / "p")
    assert files == _files(tmp_path / "b")
    assert {"p1_keypoints.json", "sub/dance_rendered.png", "p1_rendered.jpg", "clip_rendered.mp4",
            "clip_000000000002_controlnet.png", "sub/dance_pose_heatmaps.png"} <= set(files)
    for name in files:
        ours, theirs = ((tmp_path / d / name).read_bytes() for d in ("b", "p"))
        if name.endswith(".json"):
            ours, theirs = json.loads(ours), json.loads(theirs)
            if name.endswith("_keypoints.json"):
                assert len(ours["people"][0]["pose_keypoints_2d"]) == 25 * 3 and len(ours["people"]) <= 2
                assert [len(ours["people"][0][k]) for k in ("face_keypoints_2d", "hand_left_keypoints_2d")] == [210, 63]
        if not name.endswith(".mp4"):  # videos carry their own creation time
            assert ours == theirs, name
    # PoseTrack files for videos alike; images are no sequence in batch: said in one line (batch in this process:
    # its workers write with the same code, as test_workers_0_runs_in_this_process... checks; a Ray start saved)
    for d, cmd in (("p", "predict"), ("b", "batch")):
        extra = ["--workers", "0"] if cmd == "batch" else []
        r = pafpose(env, cmd, data / "clip.mp4", "--out", tmp_path / f"{d}t", "--height", "256", "--threads", "1",
                    "--json", "posetrack", *extra)
        assert r.returncode == 0, r.stderr
    pt = [json.loads((tmp_path / f"{d}t" / "clip_posetrack.json").read_text()) for d in ("p", "b")]
    assert pt[0] == pt[1] and len(pt[0]["images"]) == 3
    r = pafpose(env, "batch", data, "--out", tmp_path / "bad", "--json", "posetrack")
    assert r.returncode == 2 and "--json posetrack" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    # one COCO file for the run: the images as listed, then the video's frames, predict's ids and numbers
    (data / "000000000139.jpg").write_bytes((images / "ski.jpg").read_bytes())  # a COCO name keeps its id
    for d, cmd in (("p", "predict"), ("b", "batch")):
        extra = ["--workers", "2", "--shard-size", "1"] if cmd == "batch" else []
        r = pafpose(env, cmd, data, "--out", tmp_path / f"{d}c", "--height", "256", "--threads", "1", "--json", "coco",
                    *extra)
        assert r.returncode == 0, r.stderr
    for name in ("coco_results.json", "coco_image_ids.json"):
        ours, theirs = (json.loads((tmp_path / f"{d}c" / name).read_text()) for d in ("b", "p"))
        assert ours == theirs, name
    ids = json.loads((tmp_path / "bc" / "coco_image_ids.json").read_text())
    assert ids["139"] == "000000000139" and "clip_000000000002" in ids.values() and len(ids) == 6


def test_in_a_log_a_video_in_hand_advances_frame_by_frame(env, dance_frame, tmp_path):
    """A video is one unit of work: without its worker's progress file the log would say
    0/1 until its last frame. The lines count its frames while it runs; nothing is left."""
    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "long.mp4", dance_frame, 80)
    cv2.imwrite(str(data / "still.png"), dance_frame)
    out = tmp_path / "out"
    r = pafpose(env, "batch", data, "--out", out, "--height", "256", "--log-every", "0.1")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("pafpose batch: ")]
    under_way = [line for line in lines if "in videos under way)" in line]
    assert under_way, lines
    counts = [int(line.split("(+")[1].split(" ")[0]) for line in under_way]
    assert counts == sorted(counts)  # one video: its count only moves on
    assert 0 < max(counts) <= 80
    assert lines[-1].startswith("pafpose batch: 2/2 inputs (100 %)") and "under way" not in lines[-1]
    assert not list((out / "results").glob(".progress-*"))



def test_on_a_terminal_the_bar_shows_the_frames_of_a_video_in_hand(env, dance_frame, tmp_path):
    """The same on a terminal (stderr a pseudo-terminal): the bar counts inputs, and beside it
    the frames of the video under way move on while it runs."""
    import fcntl
    import pty
    import struct
    import termios

    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "long.mp4", dance_frame, 240)  # several seconds: the bar's counts move once a second
    cv2.imwrite(str(data / "still.png"), dance_frame)
    main, other = pty.openpty()
    fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # a terminal 200 columns wide
    proc = subprocess.Popen([EXE, "batch", str(data), "--out", str(tmp_path / "out"), "--height", "256"], env=env,
                            stdout=subprocess.PIPE, stderr=other, stdin=subprocess.DEVNULL)
    os.close(other)
    seen = b""
    while True:
        try:
            block = os.read(main, 65536)
        except OSError:  # the other end closed: the run is over
            break
        if not block:
            break
        seen += block
    os.close(main)
    assert proc.wait(timeout=300) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    counts = [int(part.split(" in videos under way")[0].rsplit("(", 1)[1]) for part in text.split("\r")
              if " in videos under way)" in part]
    assert counts and 0 < max(counts) <= 240, text[-2000:]
    assert counts == sorted(counts)  # one video: its count only moves on


def test_workers_0_runs_in_this_process_with_the_same_rows_files_and_resume(env, data_set, tmp_path):
    """--workers 0: no Ray at all (no local instance started), the same rows and per-file
    outputs as the Ray run of the same inputs, and the same ledger: run again, nothing to do."""
    root, ray_out, _, _ = data_set
    out = tmp_path / "out"
    args = ["batch", root / "data", root / "more.txt", "--out", out, "--workers", "0", "--shard-size", "2",
            "--json", "openpose", "--height", "256"]
    r = pafpose(env, *args)
    assert r.returncode == 1 and "3 failed" in r.stdout and "8 of 8 inputs" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "ray" not in r.stderr.lower()
    assert "(0 workers)" not in r.stdout and "after 0.0 s start-up" in r.stdout, r.stdout
    ours = {x["key"]: x for x in read_results(out).to_pylist()}
    theirs = {x["key"]: x for x in read_results(ray_out).to_pylist()}
    assert ours.keys() == theirs.keys()
    for key, mine in ours.items():
        twin = theirs[key]
        assert (mine["error"] is None) == (twin["error"] is None), key
        assert same_people(people_of_row(mine), people_of_row(twin)), key
    assert sorted(p.name for p in out.glob("*.json") if p.name != "summary.json") == \
        sorted(p.name for p in ray_out.glob("*.json") if p.name != "summary.json")
    r = pafpose(env, *args)
    assert r.returncode == 0 and "nothing to do: all 8 inputs were done before" in r.stdout, r.stdout + r.stderr
    r = pafpose(env, *args, "--max-workers", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--max-workers is for Ray's workers; --workers 0 runs in this process, without Ray" in r.stderr


def test_no_work_waits_behind_a_long_video_while_another_worker_is_free(env, dance_frame, tmp_path):
    """Two workers, one long video and six images of one per shard: one task in flight per
    actor, so every image is done by the other worker while the video runs (with tasks queued
    per actor, some wait behind the video; on a cluster, behind a lost node)."""
    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "long.mp4", dance_frame, 90)
    for i in range(6):
        cv2.imwrite(str(data / f"img{i}.jpg"), cv2.resize(dance_frame[:, i * 20: i * 20 + 300], (200, 150)))
    out = tmp_path / "out"
    r = pafpose(env, "batch", data, "--out", out, "--height", "256", "--workers", "2", "--shard-size", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = read_results(out, ["key", "kind", "written"]).to_pylist()
    video = max(x["written"] for x in rows if x["kind"] == "video")
    images = [x["written"] for x in rows if x["kind"] == "image"]
    assert len(images) == 6 and max(images) < video, (images, video)


def test_workers_0_opens_no_port(env, dance_frame, tmp_path):
    """A local Ray listens on every interface while it runs; --workers 0 listens on none:
    the command and anything it starts are looked at while a video runs."""
    import psutil

    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "long.mp4", dance_frame, 60)
    proc = subprocess.Popen([EXE, "batch", str(data), "--out", str(tmp_path / "out"), "--height", "256",
                             "--workers", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    looks, listening = 0, set()
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            me = psutil.Process(proc.pid)
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    listening |= {(p.name(), c.laddr) for c in p.net_connections(kind="inet")
                                  if c.status == psutil.CONN_LISTEN}
            looks += 1
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, out.decode() + err.decode()
    assert looks >= 10 and not listening, (looks, listening)

def test_a_finished_run_run_again_does_nothing(env, data_set):
    root, out, _, _ = data_set
    before = sorted(p.name for p in (out / "results").iterdir())
    r = pafpose(env, "batch", root / "data", root / "more.txt", "--out", out, "--height", "256")
    assert r.returncode == 0, r.stderr  # nothing left to do: a scheduler's retry succeeds ...
    assert "nothing to do: all 8 inputs were done before" in r.stdout, r.stdout
    assert "8 of 8 inputs" in r.stdout and "3 with errors" in r.stdout
    # ... and is told how to try the error rows again
    assert "3 inputs stand as error rows; to try them again: pafpose batch " in r.stdout
    assert r.stdout.rstrip().endswith("--height 256 --retry-errors")
    assert sorted(p.name for p in (out / "results").iterdir()) == before


def test_retry_errors_runs_the_error_rows_again_and_keeps_every_input_once(env, images, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jpg").write_bytes((images / "p1.jpg").read_bytes())
    (data / "late.jpg").write_bytes(b"not yet an image")  # e.g. a file still being copied
    out = tmp_path / "out"
    r = pafpose(env, "batch", data, "--out", out, "--height", "256", "--log-every", "0.2", "--workers", "1",
                "--max-workers", "2")  # an autoscaling pool
    assert r.returncode == 1 and "1 failed" in r.stdout, r.stdout + r.stderr
    # stderr is no terminal here (a log): progress comes as lines, the last one at the end
    lines = [line for line in r.stderr.splitlines() if line.startswith("pafpose batch: ")]
    assert lines and lines[-1].startswith("pafpose batch: 2/2 images (100 %) after "), r.stderr
    assert lines[-1].endswith(", 1 failed") and "\r" not in r.stderr  # no bar redrawn in the log
    (data / "late.jpg").write_bytes((images / "ski.jpg").read_bytes())
    r = pafpose(env, "batch", data, "--out", out, "--height", "256", "--retry-errors")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--retry-errors: 1 input with error rows done again" in r.stderr
    assert "1 image: " in r.stdout and "0 failed, 1 done before" in r.stdout, r.stdout
    table = read_results(out)
    assert table.num_rows == 2
    keys = []
    for path in (out / "results").glob("part-*"):
        keys += pq.read_table(path, columns=["key"]).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 2  # in the files themselves: no error row left beside the new one
    assert all(e is None for e in table.column("error").to_pylist())


def test_a_killed_driver_resumes_with_every_input_exactly_once(env, dance_frame, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    total, shard, workers = 64, 4, 2
    for i in range(total):  # distinct, deterministic crops, small: the network's time is not what is tested
        x = (i * 7) % 200
        cv2.imwrite(str(data / f"img{i:03d}.jpg"), cv2.resize(dance_frame[:, x : x + 256], (128, 128)))
    out = tmp_path / "out"
    args = [EXE, "batch", str(data), "--out", str(out), "--workers", str(workers), "--shard-size", str(shard),
            "--json", "openpose", "--height", "128"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "results").glob("part-*"))) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no shard written in 120 s"
            time.sleep(0.01)
        proc.kill()  # the driver alone, SIGKILL: no clean-up of its own
        proc.wait(timeout=30)
        # its local Ray stops with it; a worker in the middle of a unit may still finish it: wait for quiet
        files, deadline = None, time.monotonic() + 60
        while files != (files := sorted(p.name for p in out.rglob("*"))) and time.monotonic() < deadline:
            time.sleep(1.0)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of the killed run's Ray (its agents)
    done = scan(out)
    processed = {p.name.removesuffix("_keypoints.json") for p in out.glob("*_keypoints.json")}
    assert 0 < len(done.keys) < total, "the kill came too late (or too early) to test resuming"
    lost = processed - {Path(k).stem for k in done.keys}  # done by a worker, not yet in a shard: done again
    assert len(lost) <= workers * shard
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(done.keys)} done before" in r.stdout and f"{total} of {total} inputs" in r.stdout
    keys = []
    for path in (out / "results").glob("part-*"):
        keys += pq.read_table(path, columns=["key"]).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == total  # every input exactly once, in the files themselves
    assert read_results(out).num_rows == total
    assert len(list(out.glob("*_keypoints.json"))) == total


def test_a_cluster_that_does_not_exist_fails_fast_in_one_line(env, images, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = pafpose(env, "batch", images / "p1.jpg", "--out", tmp_path / "out", "--address", f"127.0.0.1:{port}",
                timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there" in r.stderr
    assert time.monotonic() - t0 < 30
    r = pafpose(env, "batch", images / "p1.jpg", "--out", tmp_path / "out2", "--model", "nosuch", timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("pafpose: error: unknown model 'nosuch'")  # before Ray starts
    assert r.stderr.count("\n") == 1 and not (tmp_path / "out2").exists()


def test_an_address_that_answers_but_is_not_ray_fails_in_seconds_in_one_line(env, images, tmp_path):
    """The silent hang: a port that accepts connections but speaks no gRPC (here a server that
    holds them open and says nothing, as a wrong service would) made Ray retry for minutes; it
    is now a one-line error within the connect timeout. Given by RAY_ADDRESS, the message says so."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    held = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        for args, extra, named in (
            (["--address", f"127.0.0.1:{port}"], {}, f"--address 127.0.0.1:{port}"),
            ([], {"RAY_ADDRESS": f"127.0.0.1:{port}"}, f"RAY_ADDRESS=127.0.0.1:{port}"),
        ):
            t0 = time.monotonic()
            r = pafpose({**env, **extra}, "batch", images / "p1.jpg", "--out", tmp_path / "out", *args, timeout=120)
            assert r.returncode == 2 and r.stdout == "", r.stderr
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
            assert f"{named}: something answers there, but not Ray" in r.stderr
            assert time.monotonic() - t0 < 30
            assert not (tmp_path / "out").exists()
    finally:
        server.close()
        for c in held:
            c.close()


# ------------------------------------------------------------------ without Ray
def test_inputs_from_folders_lists_and_manifests(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("a.jpg", "b.png", "clip.mp4", "notes.md"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# comment\n\nimgs/a.jpg\n/elsewhere/c.jpg\nhttp://host/d.jpg?x=1\n"
                                       "rtsp://cam/live\n")
    pq.write_table(pa.table({"path": ["imgs/b.png", "e.jpg", None], "label": [1, 2, 3]}), tmp_path / "m.parquet")
    (tmp_path / "m.csv").write_text("file,label\nimgs/clip.mp4,1\nf.avi,2\n")
    got = enumerate_inputs([str(tmp_path / "imgs"), str(tmp_path / "list.txt"), str(tmp_path / "m.parquet")])
    assert got.errors == [] and got.ignored == 1
    keys = [(i.key.replace(str(tmp_path), "T"), i.kind, i.name) for i in got.items]
    assert keys == [("T/imgs/a.jpg", "image", "a"), ("T/imgs/b.png", "image", "b"),
                    ("T/imgs/clip.mp4", "video", "clip"), ("/elsewhere/c.jpg", "image", "c"),
                    ("http://host/d.jpg?x=1", "image", "d"), ("rtsp://cam/live", "video", "live"),
                    ("T/e.jpg", "image", "e")]  # relative to the list's folder; each file once
    got = enumerate_inputs([str(tmp_path / "m.csv")])
    assert got.items == [] and "no column 'path' (it has: file, label)" in got.errors[0]
    got = enumerate_inputs([str(tmp_path / "m.csv")], path_column="file")
    assert [(Path(i.key).name, i.kind) for i in got.items] == [("clip.mp4", "video"), ("f.avi", "video")]
    got = enumerate_inputs(["0", str(tmp_path / "nothing")])
    assert len(got.errors) == 2 and "camera" in got.errors[0] and "no such file" in got.errors[1]


def test_batch_folders_take_every_image_format_the_reader_reads(tmp_path):
    """Issue 22: batch runs expand folders as pafpose predict does, with the reader's extensions."""
    from helpers_images import image_of_every_extension

    written, _ = image_of_every_extension(tmp_path / "in", np.full((24, 32, 3), 128, np.uint8))
    got = enumerate_inputs([str(tmp_path / "in")])
    assert (got.errors, got.ignored) == ([], 0)
    assert sorted((Path(i.key).name, i.kind) for i in got.items) == [(name, "image") for name in sorted(written)]


def test_ledger_and_reading_results(tmp_path):
    def shard(keys, error=None, fmt="parquet"):
        rows = [row(k, k, "image", None, (4, 3), [], "coco18", "m", "{}", error) for k in keys]
        return write_shard(tmp_path / "results" / shard_name(keys, fmt), fmt, lambda w: w.write(rows))

    assert shard_name(["a", "b"], "parquet") == shard_name(["a", "b"], "parquet") != shard_name(["b", "a"], "parquet")
    shard(["/a", "/b"])
    shard(["/c"], error="broken", fmt="jsonl")  # a run with --format jsonl into the same folder
    shard(["/b", "/d"])  # /b twice (not something a run does): read back once
    (tmp_path / "results" / "part-0000.parquet").write_bytes(b"PAR1 damaged")
    done = scan(tmp_path)
    assert done.keys == {"/a", "/b", "/c", "/d"} and done.error_keys == {"/c"} and done.bad == ["part-0000.parquet"]
    assert (tmp_path / "results" / "part-0000.parquet.bad").exists()  # set aside: its inputs are done again
    table = read_results(tmp_path)
    assert sorted(table.column("key").to_pylist()) == ["/a", "/b", "/c", "/d"] and table.schema.equals(SCHEMA)
    assert read_results(tmp_path, ["key", "error"]).column_names == ["key", "error"]
    assert read_results(tmp_path / "nothing").num_rows == 0


def test_options_are_checked():
    from pafpose.batch import BatchOptions

    with pytest.raises(PafposeError, match="shard_size"):
        BatchOptions(out=Path("x"), shard_size=0)
    with pytest.raises(PafposeError, match="gpus_per_worker"):
        BatchOptions(out=Path("x"), gpus_per_worker=float("nan"))


def test_the_cluster_example_is_a_valid_ray_up_config():
    import jsonschema
    import ray
    import yaml

    from conftest import REPO

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((REPO / "examples" / "ray-cluster-aws.yaml").read_text())
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}  # the head runs no pose work
    assert "g5.xlarge" in str(types) and "c6i.4xlarge" in str(types)  # GPU and CPU workers
    assert config["docker"]["image"].startswith("rayproject/ray:")


def test_cpus_are_shared_out_leaving_room_for_ray_data():
    from pafpose.batch.cluster import Resources
    from pafpose.batch.runner import BatchOptions, _plan

    here = Resources(cpus=2, gpus=0, node_cpus=2, node_gpus=0, nodes=1, local=True, cpu_nodes=1, smallest_cpus=2)
    assert _plan(BatchOptions(out=Path("x"), workers=1), here, tasks=50) == (1, 1, 1.75, 2)
    assert _plan(BatchOptions(out=Path("x"), workers=2), here, tasks=50) == (2, 2, 0.875, 1)  # never a whole CPU each
    assert _plan(BatchOptions(out=Path("x"), workers=8), here, tasks=3)[0] == 3  # no idle actors
    with pytest.raises(PafposeError, match="this machine has 0 GPUs"):
        _plan(BatchOptions(out=Path("x"), gpus_per_worker=1), here, tasks=5)
    with pytest.raises(PafposeError, match="this machine has 2 CPUs"):
        _plan(BatchOptions(out=Path("x"), cpus_per_worker=3), here, tasks=5)
    # a cluster: a head with no CPUs for work, four 16-CPU nodes; one whose workers are still to come
    cluster = Resources(cpus=64, gpus=0, node_cpus=16, node_gpus=0, nodes=5, local=False, cpu_nodes=4,
                        smallest_cpus=16)
    assert _plan(BatchOptions(out=Path("x"), workers=32), cluster, tasks=1000) == (32, 32, 1.969, 2)
    empty = Resources(cpus=0, gpus=0, node_cpus=0, node_gpus=0, nodes=1, local=False)
    assert _plan(BatchOptions(out=Path("x"), workers=32), empty, tasks=1000) == (32, 32, 1.0, 1)
    assert _plan(BatchOptions(out=Path("x"), workers=4, gpus_per_worker=1), empty, tasks=9) == (4, 4, 1.0, 1)
    # an autoscaling pool: the CPUs are shared out for its largest size, never more actors than tasks
    assert _plan(BatchOptions(out=Path("x"), workers=1, max_workers=2), here, tasks=50) == (1, 2, 0.875, 1)
    assert _plan(BatchOptions(out=Path("x"), workers=8, max_workers=64), cluster, tasks=40) == (8, 40, 1.575, 2)
    with pytest.raises(PafposeError, match="--max-workers 1 is below --workers 2"):
        BatchOptions(out=Path("x"), workers=2, max_workers=1)


def test_a_rerun_with_other_options_is_told(tmp_path):
    from pafpose.batch.ledger import changed_options
    from pafpose.estimator_config import EstimatorConfig

    config = EstimatorConfig(height=256, threads=2).to_dict()
    rows = [row("/a", "/a", "image", None, (4, 3), [], "coco18", "m", json.dumps(config), None)]
    write_shard(tmp_path / "results" / shard_name(["/a"], "jsonl"), "jsonl", lambda w: w.write(rows))
    assert changed_options(tmp_path, "m", EstimatorConfig(height=256, threads=1).to_dict()) == []  # speed only
    assert changed_options(tmp_path, "m", EstimatorConfig(height=368, flip=True).to_dict()) == ["flip", "height"]
    assert changed_options(tmp_path, "other", config) == ["model"]


def test_a_worker_counts_a_video_with_no_frame_asked_for_as_done(env, dance_frame, tmp_path, monkeypatch):
    """--frame-first past a video's end: no frame, no error, and one row, so a rerun knows it is done."""
    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", env["PAFPOSE_WEIGHTS_PATH"])
    from pafpose.batch.inputs import Item
    from pafpose.batch.worker import WorkerSettings, worker_class
    from pafpose.estimator_config import EstimatorConfig
    from pafpose.outputs import OutputOptions

    make_video(tmp_path / "clip.mp4", dance_frame, 3)
    (tmp_path / "out" / "results").mkdir(parents=True)
    config = EstimatorConfig(height=128, device="cpu", threads=1)
    settings = WorkerSettings(config=config.to_dict(), out=str(tmp_path / "out"),
                              outputs=OutputOptions(out=tmp_path / "out", json="coco").to_dict(), frames=(10, 1, None))
    worker = worker_class(settings)()
    item = Item(key=str(tmp_path / "clip.mp4"), source="clip.mp4", kind="video", name="clip")
    summary = worker.video(item)
    assert [(s["rows"], s["frames"], s["error"]) for s in summary] == [(1, 0, None)]
    assert scan(tmp_path / "out").keys == {item.key}
    assert read_results(tmp_path / "out").to_pylist()[0]["people"] == []


def test_an_older_results_folder_is_refused_not_mixed(env, images, tmp_path):
    """Shards whose people are the layout before Pose.to_dict ({id, flat keypoints}): a run adding today's
    would leave a folder that no longer reads as one table, so it says so before starting Ray."""
    old = pa.schema([("key", pa.string()), ("people", pa.list_(pa.struct([
        ("id", pa.int64()), ("score", pa.float32()), ("keypoints", pa.list_(pa.float32()))])))])
    (tmp_path / "out" / "results").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"key": "/a", "people": []}], schema=old),
                   tmp_path / "out" / "results" / "part-000.parquet")
    r = pafpose(env, "batch", images / "p1.jpg", "--out", tmp_path / "out", timeout=120)
    assert r.returncode == 2 and "older pafpose" in r.stderr and r.stderr.count("\n") == 1, r.stderr


# ---------------------------------------------------------------- issue 24: one bad input never stops a run
def _bare_worker(tmp_path):
    """A PoseWorker without its Estimator: enough to read inputs."""
    from types import SimpleNamespace

    from pafpose.batch.worker import PoseWorker, WorkerSettings

    w = PoseWorker.__new__(PoseWorker)
    w.s = WorkerSettings(config={}, out=str(tmp_path), timeout=2.0)
    w.est = SimpleNamespace(timings={})
    return w


def test_a_path_with_a_nul_byte_is_an_error_row_not_a_crash(tmp_path):
    from pafpose.batch.inputs import Item
    from pafpose.images import ImageError

    w = _bare_worker(tmp_path)
    for key in ("/data/a\x00b.jpg", "file:///data/a\x00b.jpg"):
        with pytest.raises(ImageError, match="NUL"):
            w._read(Item(key, key, "image", "a"))
    inputs = enumerate_inputs([str(_list_with(tmp_path, "/data/a\x00b.jpg\n/data/c.jpg\n"))])
    assert [i.source for i in inputs.items] == ["/data/a\x00b.jpg", "/data/c.jpg"] and not inputs.errors


def _list_with(tmp_path, text):
    p = tmp_path / "inputs.txt"
    p.write_text(text)
    return p


def test_a_file_url_naming_a_fifo_is_refused_not_waited_on(tmp_path):
    from pafpose.batch.worker import fetch
    from pafpose.images import ImageError

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(ImageError, match="not a regular file"):
        fetch(fifo.as_uri(), timeout=2.0)
    with pytest.raises(ImageError, match="folder"):
        fetch(tmp_path.as_uri(), timeout=2.0)
    assert time.monotonic() - t0 < 1.5
    (tmp_path / "ok.jpg").write_bytes(b"\xff\xd8abc")
    assert fetch((tmp_path / "ok.jpg").as_uri(), timeout=2.0) == b"\xff\xd8abc"


@contextlib.contextmanager
def _dripping_server(size=10_000, every=0.2):
    """A local HTTP server that sends ``size`` bytes one at a time, ``every`` seconds apart."""
    import http.server
    import threading

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                for _ in range(size):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(every)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.jpg"
    finally:
        server.shutdown()
        server.server_close()


def test_timeout_is_a_deadline_for_the_whole_fetch_not_each_read():
    from pafpose.batch.worker import fetch
    from pafpose.images import ImageError

    with _dripping_server() as url:
        t0 = time.monotonic()
        with pytest.raises(ImageError, match="within 1 s"):
            fetch(url, timeout=1.0)
        assert time.monotonic() - t0 < 2.0


def test_timeout_bounds_a_server_dripping_its_headers_too():
    """urllib's timeout bounds each read until the headers are in: the deadline cuts the connection."""
    import socketserver
    import threading

    from pafpose.batch.worker import fetch
    from pafpose.images import ImageError

    class Drip(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"x" * 1000:
                    self.request.sendall(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        with pytest.raises(ImageError, match="not fetched within 1 s"):
            fetch(f"http://127.0.0.1:{server.server_address[1]}/slow.jpg", timeout=1.0)
        assert time.monotonic() - t0 < 2.0
    finally:
        server.shutdown()
        server.server_close()


def test_a_workers_failure_says_its_cause_not_rays_wrapper():
    from ray.exceptions import UserCodeException

    from pafpose.batch.cluster import worker_error

    try:
        try:
            raise ValueError("embedded null byte")
        except ValueError as cause:
            raise UserCodeException("UDF failed to process a data block.") from cause
    except UserCodeException as err:
        wrapped = err
    assert worker_error(wrapped) == "ValueError: embedded null byte"


def _alive(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux's /proc")
def test_a_killed_driver_takes_the_local_rays_agents_with_it(tmp_path):
    from pafpose.batch.cluster import AGENTS

    found = tmp_path / "agents"
    code = ("import os, sys, time\n"
            "from pafpose.batch.cluster import AGENTS, _processes, ray_session\n"
            "with ray_session():\n"
            "    me = os.getpid()\n"
            "    procs = _processes()\n"
            "    kids = {p for p, (pp, _, _) in procs.items() if pp == me}\n"
            "    agents = [p for p, (pp, _, c) in procs.items() if pp in kids and c.startswith(AGENTS)]\n"
            f"    open({str(found)!r} + '.part', 'w').write(' '.join(map(str, agents)))\n"
            f"    os.rename({str(found)!r} + '.part', {str(found)!r})\n"
            "    time.sleep(300)\n")
    driver = subprocess.Popen([os.sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "RAY_ADDRESS": ""})
    try:
        deadline = time.monotonic() + 120
        while not found.exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        agents = [int(p) for p in found.read_text().split()]
    finally:
        driver.kill()
        driver.wait()
    assert len(agents) == len(AGENTS)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(map(_alive, agents)):
        time.sleep(0.2)
    left = [p for p in agents if _alive(p)]
    for p in left:  # not to leave them behind
        os.kill(p, signal.SIGKILL)
    assert not left


def test_a_remote_workers_cause_is_found_in_rays_text():
    """Across processes Ray keeps the cause only as the remote traceback's text."""
    from ray.exceptions import UserCodeException

    from pafpose.batch.cluster import worker_error

    class RemoteError(UserCodeException):  # as RayTaskError(UserCodeException): the traceback in its text
        def __init__(self):
            super().__init__("\x1b[36mray::MapWorker(MapBatches(PoseWorker)).submit()\x1b[39m (pid=1)\n"
                             "  File \"worker.py\", line 9, in images\n"
                             "    raise ValueError(\"the real cause: boom\")\n"
                             "ValueError: the real cause: boom\n\nThe above exception was the direct cause of "
                             "the following exception:\n\n"
                             "ray.exceptions.UserCodeException: UDF failed to process a data block.")
            self.cause = UserCodeException("UDF failed to process a data block.")

    assert worker_error(RemoteError()) == "ValueError: the real cause: boom"


def test_an_image_controlnet_cannot_take_is_an_error_row_the_others_done(env, dance_frame, tmp_path):
    """Issue 24: as in predict, an image whose ControlNet canvas is too large fails alone, before the network."""
    data = tmp_path / "data"
    data.mkdir()
    cv2.imwrite(str(data / "a_wide.png"), np.full((100, 5000, 3), 90, np.uint8))  # 51200 x 1024 at 1024
    cv2.imwrite(str(data / "b_dance.png"), dance_frame)
    r = pafpose(env, "batch", data, "--out", tmp_path / "out", "--height", "256", "--render", "controlnet",
                "--detect-resolution", "128", "--image-resolution", "1024")  # in this process: the worker's code
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    rows = {Path(row["source"]).name: row for row in read_results(tmp_path / "out").to_pylist()}
    assert "Mpixel" in rows["a_wide.png"]["error"] and rows["b_dance.png"]["error"] is None
    assert (tmp_path / "out" / "b_dance_controlnet.png").exists() and not list((tmp_path / "out").glob("a_wide*"))
