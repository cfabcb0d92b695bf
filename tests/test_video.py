"""Videos in and out when things go wrong: a hard kill, a full disk, a frame size that
changes, a truncated file, a stream that never answers, a camera index that isn't one."""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from pafpose import PafposeError
from pafpose.video import VideoWriter, open_capture
from test_predict_cli import EXE, count_frames, make_video, pafpose


def test_frames_of_another_size_are_fitted_not_stretched(tmp_path):
    a = np.full((120, 160, 3), 200, np.uint8)
    b = np.full((120, 80, 3), 200, np.uint8)  # half as wide: must keep its shape, with black beside it
    with VideoWriter(tmp_path / "v.mp4", fps=10) as w:
        for frame in (a, a, b, b):
            w.write(frame)
    assert w.resized == 2
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    frames = [cap.read()[1] for _ in range(4)]
    assert all(f.shape == (120, 160, 3) for f in frames)
    last = frames[-1].mean(axis=(0, 2))
    assert last[:30].max() < 30 and last[-30:].max() < 30 and last[60:100].min() > 170


def test_odd_sizes_and_unknown_containers(tmp_path):
    with VideoWriter(tmp_path / "odd.mkv", fps=7) as w:
        for _ in range(3):
            w.write(np.zeros((31, 45, 3), np.uint8))
    assert count_frames(tmp_path / "odd.mkv") == 3
    with pytest.raises(PafposeError, match="cannot write this kind of video"):
        VideoWriter(tmp_path / "x.xyz", fps=5)


def test_camera_indices_that_are_not_cameras_are_one_line_errors():
    # in a child: before the check, -1 crashed OpenCV (a segfault) and a huge index raised OverflowError
    code = ("from pafpose.video import open_capture\nfrom pafpose import PafposeError\n"
            "for bad in (-1, 10**12, True):\n"
            "    try:\n        open_capture(bad)\n    except PafposeError as e:\n        print('refused', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("refused") == 3 and "no such camera index" in r.stdout


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def test_a_stream_that_never_answers_times_out(silent_server):
    start = time.monotonic()
    with pytest.raises(PafposeError, match="cannot open this stream within 1 s"):
        open_capture(f"http://127.0.0.1:{silent_server}/live.mjpg", timeout=1)
    assert time.monotonic() - start < 10


def test_predict_says_it_waits_and_gives_up(env, silent_server, tmp_path):
    url = f"http://127.0.0.1:{silent_server}/live.mjpg"
    r = pafpose(env, "predict", url, "--out", tmp_path / "out", "--timeout", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"pafpose: opening {url} (waiting up to 1 s for it and for each frame)"
    assert "cannot open this stream within 1 s" in lines[1] and len(lines) == 2, r.stderr


def test_truncated_video_is_reported(env, dance_frame, tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (dance_frame.shape[1], dance_frame.shape[0]))
    for i in range(40):
        writer.write(np.roll(dance_frame, i, axis=1))
    writer.release()
    data = (tmp_path / "full.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    r = pafpose(env, "predict", tmp_path / "cut.avi", "--out", tmp_path / "out", "--height", "128")
    assert r.returncode == 1, r.stderr
    assert "cut.avi: the video ended after" in r.stderr and "of its 40 frames (truncated or damaged)" in r.stderr
    assert 10 < len(list((tmp_path / "out").glob("cut_*_keypoints.json"))) < 40  # the frames read are kept


def _fsize_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return apply


def test_full_disk_while_writing_a_video_is_an_error(env, dance_frame, tmp_path):
    make_video(tmp_path / "clip.mp4", np.random.default_rng(0).integers(0, 255, dance_frame.shape, np.uint8), 30)
    assert pafpose(env, "predict", tmp_path / "clip.mp4", "--out", tmp_path / "warm", "--height", "64").returncode == 0
    out = tmp_path / "out"
    r = subprocess.run([EXE, "predict", str(tmp_path / "clip.mp4"), "--out", str(out), "--save-video",
                        "--height", "64"], capture_output=True, text=True, env=env, timeout=300,
                       preexec_fn=_fsize_limit(150_000))
    assert r.returncode == 1, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pafpose: error: {out / 'clip_rendered.mp4'}: File too large")
    assert "Traceback" not in r.stderr
    assert "clip_rendered.partial.mp4" in last and "wrote" not in r.stdout
    assert not (out / "clip_rendered.mp4").exists()
    assert 0 < count_frames(out / "clip_rendered.partial.mp4") < 30  # what fitted, still playable


def test_hard_kill_keeps_a_playable_video_and_every_result(env, dance_frame, tmp_path):
    make_video(tmp_path / "long.mp4", dance_frame, 400)
    out = tmp_path / "out"
    proc = subprocess.Popen([EXE, "predict", str(tmp_path / "long.mp4"), "--out", str(out), "--save-video",
                             "--json", "coco", "--height", "128"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    journal = out / "coco_results.partial.jsonl"
    deadline = time.monotonic() + 180
    while proc.poll() is None and (not journal.exists() or journal.read_text().count("\n") < 35):
        assert time.monotonic() < deadline, "35 frames not done in 180 s"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs, no file is closed
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    lines = journal.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.endswith("}")]  # at most the last line is cut
    assert len(records) >= 35 and len(lines) - len(records) <= 1
    assert all(len(r["results"]) == 3 for r in records)  # the three dancers in every frame
    assert not (out / "long_rendered.mp4").exists()
    playable = count_frames(out / "long_rendered.partial.mp4")
    assert 10 <= playable <= len(records) + 1  # every finished fragment (a key frame a second) plays


def test_a_rerun_keeps_an_interrupted_runs_journal(env, images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "coco_results.partial.jsonl").write_text('{"image_id": 1, "name": "x", "results": []}\n')
    r = pafpose(env, "predict", images / "p3_dance.png", "--out", out, "--json", "coco", "--height", "128")
    assert r.returncode == 0, r.stderr
    assert "left by an interrupted run; kept as coco_results.partial.1.jsonl" in r.stderr
    assert (out / "coco_results.partial.1.jsonl").read_text().startswith('{"image_id": 1')
    assert not (out / "coco_results.partial.jsonl").exists() and (out / "coco_results.json").exists()


def test_unreadable_file_in_a_folder_is_skipped(env, images, tmp_path):
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(images / "p3_dance.png", folder / name)
    (folder / "a.png").chmod(0)  # nobody may read it...
    cmd = [EXE, "predict", str(folder), "--out", str(tmp_path / "out"), "--height", "128"]
    if os.geteuid() == 0:  # ...and root neither, without the capability to override file permissions
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "a.png: can't be read (Permission denied) (skipped)" in r.stderr and "Traceback" not in r.stderr
    assert "1 image: 3 people found, 1 failed" in r.stdout


def test_full_disk_while_writing_an_image_names_it(env, images, tmp_path):
    warm = pafpose(env, "predict", images / "p3_dance.png", "--out", tmp_path / "warm", "--height", "64")
    assert warm.returncode == 0  # the converted weights are cached before the limit
    out = tmp_path / "out"
    r = subprocess.run([EXE, "predict", str(images / "p3_dance.png"), "--out", str(out), "--save-images",
                        "--height", "64"], capture_output=True, text=True, env=env, timeout=300,
                       preexec_fn=_fsize_limit(20_000))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"pafpose: error: {out / 'p3_dance_rendered.png'}: File too large"
    assert not (out / "p3_dance_rendered.png").exists() and not list(out.glob(".*"))


def test_bench_skips_pipes_and_bombs_instead_of_hanging(env, images, tmp_path):
    import shutil

    from test_images import png_bomb

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(images / "p3_dance.png", folder / "dance.png")
    os.mkfifo(folder / "pipe.jpg")
    (folder / "bomb.png").write_bytes(png_bomb(12_000, 12_000))
    r = subprocess.run([EXE, "bench", "--images", str(folder), "--warmup", "0", "--repeat", "1", "--height", "64"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "skipped" in r.stdout and "pipe.jpg: not a regular file" in r.stdout
    assert "bomb.png: image too large: 12000 x 12000" in r.stdout and "1 images" in r.stdout


def test_frame_times_are_the_videos_own(tmp_path):
    """A video's frame times come from the file (a tracker then sees a dropped frame as a longer step)."""
    import cv2

    from pafpose.video import FrameRange, read_frames

    path = tmp_path / "t.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    times = [t for _, _, t in read_frames(cap)]
    cap.release()
    assert len(times) == 5 and all(t is not None for t in times)
    assert np.allclose(np.diff(times), 1 / 25)
    cap = cv2.VideoCapture(str(path))
    picked = [(i, t) for i, _, t in read_frames(cap, FrameRange(first=1, step=2))]
    cap.release()
    assert [i for i, _ in picked] == [1, 3] and np.isclose(picked[1][1] - picked[0][1], 2 / 25)
