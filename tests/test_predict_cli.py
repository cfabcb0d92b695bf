"""`pafpose predict` and `pafpose explain` as a user runs them: the real console script."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.cli import build_parser, main

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


def pafpose(env, *args, cwd=None):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def check_openpose_json(path, num_keypoints=18, tracked=False):
    """The OpenPose 1.3 layout; returns the people as (N, K, 3) arrays. ``person_id`` is
    OpenPose's ``[-1]``, or with ``tracked`` a ``[track id]``."""
    doc = json.loads(Path(path).read_text())
    assert doc["version"] == 1.3 and isinstance(doc["people"], list)
    people = []
    for person in doc["people"]:
        if tracked:
            assert len(person["person_id"]) == 1 and isinstance(person["person_id"][0], int)
            assert person["person_id"][0] >= 0
        else:
            assert person["person_id"] == [-1]
        assert person["face_keypoints_2d"] == [] and person["hand_left_keypoints_2d"] == []
        kps = np.array(person["pose_keypoints_2d"], dtype=float)
        assert kps.shape == (num_keypoints * 3,) and np.isfinite(kps).all()
        kps = kps.reshape(-1, 3)
        assert ((kps[:, 2] >= 0) & (kps[:, 2] <= 1)).all()
        assert (kps[kps[:, 2] == 0, :2] == 0).all()  # missing keypoints are 0, 0, 0
        people.append(kps)
    return people


def upright(kps):
    """Nose above neck above the hips (COCO-18: 0 nose, 1 neck, 8 / 11 hips)."""
    hips = [kps[i, 1] for i in (8, 11) if kps[i, 2] > 0]
    return kps[0, 2] > 0 and kps[1, 2] > 0 and hips and kps[0, 1] < kps[1, 1] < np.mean(hips)


def test_three_dancers_no_cat_drawn_and_json(env, images, tmp_path):
    r = pafpose(env, "predict", images / "p3_dance.png", images / "cat.jpg", "--out", tmp_path / "out",
                "--save-images", "--show")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "no display found" in r.stderr  # --show without a display: a warning
    assert "2 images: 3 people found, 0 failed" in r.stdout
    dancers = check_openpose_json(tmp_path / "out" / "p3_dance_keypoints.json")
    assert len(dancers) == 3 and all(upright(k) for k in dancers)
    assert check_openpose_json(tmp_path / "out" / "cat_keypoints.json") == []
    drawn = cv2.imread(str(tmp_path / "out" / "p3_dance_rendered.png"))
    original = cv2.imread(str(images / "p3_dance.png"))
    assert drawn.shape == original.shape and (drawn != original).any()
    assert cv2.imread(str(tmp_path / "out" / "cat_rendered.jpg")) is not None
    assert f"wrote {tmp_path / 'out' / 'p3_dance_keypoints.json'}" in r.stdout
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_folder_with_bad_files_processes_the_good_ones(env, images, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(images / "p3_dance.png", src / "dance.png")
    shutil.copy(images / "ski.jpg", src / "sub" / "ski.jpg")
    shutil.copy(images / "apink1.jpg", src / "sub" / "dance.jpg")  # same stem as a file above: no collision
    jpeg = (images / "golf.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "notes.png").write_text("this is text, not a picture\n")
    (src / "readme.txt").write_text("not an image extension: ignored\n")
    (src / "broken.mp4").write_text("not a video either\n")
    r = pafpose(env, "predict", src, "--out", tmp_path / "out", "--batch-size", "2")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("pafpose: error:")]
    assert len(errors) == 4
    for name in ("truncated.jpg", "empty.png", "notes.png", "broken.mp4"):
        assert sum(name in line for line in errors) == 1
    assert "3 images: " in r.stdout and "4 failed" in r.stdout and "ignored 1 file" in r.stdout
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.json")) == [
        "dance_keypoints.json", "sub/dance_keypoints.json", "sub/ski_keypoints.json"]
    assert len(check_openpose_json(out / "dance_keypoints.json")) == 3


def test_a_folder_of_every_image_format_is_all_read(env, images, tmp_path):
    """Issue 22: what counts as an image in a folder is what the reader reads (GIF, AVIF, MPO,
    .jpe, .pbm... were read when named, ignored in a folder)."""
    from helpers_images import image_of_every_extension
    from pafpose.images import JPEG_EXTENSIONS

    dancers = cv2.resize(cv2.imread(str(images / "p3_dance.png")), (320, 180), interpolation=cv2.INTER_AREA)
    written, unwritable = image_of_every_extension(tmp_path / "in", dancers)
    r = pafpose(env, "predict", tmp_path / "in", "--json", "openpose", "--out", tmp_path / "out", "--save-images")
    assert r.returncode == 0, r.stderr
    assert "ignored" not in r.stdout + r.stderr and "error" not in r.stderr
    assert f"{len(written)} images: " in r.stdout and " 0 failed" in r.stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*_keypoints.json")) == sorted(
        f"{Path(name).stem}_keypoints.json" for name in written)
    found = {name: len(check_openpose_json(out / f"{Path(name).stem}_keypoints.json")) for name in written}
    assert found["png_png.png"] > 0 and found["gif_gif.gif"] > 0, found
    # the drawn copy of a JPEG (.jpe, .jfif, MPO too) is a .jpg, of anything else a .png
    assert sorted(p.name for p in out.glob("*_rendered.*")) == sorted(
        f"{Path(name).stem}_rendered.{'jpg' if Path(name).suffix.lower() in JPEG_EXTENSIONS else 'png'}"
        for name in written)
    assert {".jpe", ".jfif", ".mpo"} <= set(JPEG_EXTENSIONS)
    if unwritable:
        pytest.skip("every other format is read; " + "; ".join(unwritable.values()))


def test_user_mistakes_are_one_line(env, images, tmp_path):
    r = pafpose(env, "predict", tmp_path / "missing.jpg", "--out", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing.jpg: no such file or folder" in r.stderr and "nothing to process" in r.stderr
    for args, expected in (
        (["--model", "no-such-model"], "no-such-model"),
        (["--batch-size", "0"], "--batch-size"),
        (["--device", "quantum"], "unknown device"),
        (["--scales", "1", "-1"], "scales"),
        (["--weights", tmp_path / "nope.pt"], "no such weights file"),
    ):
        r = pafpose(env, "predict", images / "cat.jpg", "--out", tmp_path / "o", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and expected in r.stderr and "Traceback" not in r.stderr
    r = pafpose(env, "predict", images / "cat.jpg", "--json", "yaml")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
    r = pafpose(env, "predict", images / "p3_dance.png", tmp_path / "gone.png", "--out", tmp_path / "o2")
    assert r.returncode == 1 and "gone.png: no such file or folder" in r.stderr  # the rest still ran
    assert (tmp_path / "o2" / "p3_dance_keypoints.json").is_file()


def test_coco_results(env, images, tmp_path):
    from pycocotools.coco import COCO

    shutil.copy(images / "p3_dance.png", tmp_path / "000000000042.png")
    shutil.copy(images / "cat.jpg", tmp_path / "cat.jpg")
    shutil.copy(images / "ski.jpg", tmp_path / "ski.jpg")
    r = pafpose(env, "predict", tmp_path / "000000000042.png", tmp_path / "cat.jpg", tmp_path / "ski.jpg",
                "--json", "coco", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "out" / "coco_results.json").read_text())
    ids = json.loads((tmp_path / "out" / "coco_image_ids.json").read_text())
    assert ids == {"1": "cat", "2": "ski", "42": "000000000042"}  # COCO-style names keep their id
    assert sum(r["image_id"] == 42 for r in results) == 3
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and 0 <= r["score"] <= 1 for r in results)
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": 1280, "height": 720} for i in (1, 2, 42)],
                  "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    gt.createIndex()
    loaded = gt.loadRes(str(tmp_path / "out" / "coco_results.json"))  # pycocotools accepts the file
    assert len(loaded.getAnnIds()) == len(results)


def make_video(path, frame, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frame.shape[1], frame.shape[0]))
    for i in range(n):
        writer.write(np.roll(frame, i % 4, axis=1))
    writer.release()


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_video_end_to_end(env, dance_frame, tmp_path):
    make_video(tmp_path / "clip.mp4", dance_frame, 6)
    r = pafpose(env, "predict", tmp_path / "clip.mp4", "--out", tmp_path / "out", "--save-video", "--height", "256",
                "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    assert "6 video frames: 18 people found" in r.stdout
    frames = sorted((tmp_path / "out").glob("clip_*_keypoints.json"))
    assert [f.name for f in frames] == [f"clip_{i:012d}_keypoints.json" for i in range(6)]
    assert all(len(check_openpose_json(f, tracked=True)) == 3 for f in frames)
    ids = [sorted(p["person_id"][0] for p in json.loads(f.read_text())["people"]) for f in frames]
    assert ids == [[0, 1, 2]] * 6  # the three dancers keep their ids through the clip
    assert count_frames(tmp_path / "out" / "clip_rendered.mp4") == 6
    # --no-track: each frame's people as a photo's (OpenPose's -1), unsmoothed
    r = pafpose(env, "predict", tmp_path / "clip.mp4", "--out", tmp_path / "plain", "--height", "256", "--no-track")
    assert r.returncode == 0, r.stderr
    plain = sorted((tmp_path / "plain").glob("clip_*_keypoints.json"))
    assert all(len(check_openpose_json(f)) == 3 for f in plain)
    first = [json.loads(f.read_text())["people"] for f in (frames[0], plain[0])]
    tracked, raw = (np.array(sorted(p["pose_keypoints_2d"] for p in people)).reshape(3, -1, 3) for people in first)
    assert np.array_equal(tracked[..., 2], raw[..., 2])  # the same keypoints, ...
    moved = np.abs(tracked[..., :2] - raw[..., :2])
    assert 0 < moved.max() < 5  # ... smoothed (from the frames after it too: a video file is tracked offline)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interrupted_video_leaves_a_playable_shorter_video(env, dance_frame, tmp_path, sig):
    total = 300
    make_video(tmp_path / "long.mp4", dance_frame, total)
    out = tmp_path / "out"
    # as a terminal starts it: another test of the session may have left SIGINT ignored, which a child inherits
    proc = subprocess.Popen([EXE, "predict", str(tmp_path / "long.mp4"), "--out", str(out), "--save-video"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "long_000000000002_keypoints.json").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no frame written in 120 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stdout
    done = len(list(out.glob("long_*_keypoints.json")))
    assert 3 <= done < total
    assert count_frames(out / "long_rendered.mp4") == done  # the frames done, in a valid file
    assert not list(out.glob(".*"))


def test_stream_api_batches_frames(env, dance_frame, tmp_path):
    from pafpose.predict import Estimator

    os.environ["PAFPOSE_WEIGHTS_PATH"] = env["PAFPOSE_WEIGHTS_PATH"]
    try:
        est = Estimator(device="cpu", height=256)
    finally:
        del os.environ["PAFPOSE_WEIGHTS_PATH"]
    make_video(tmp_path / "clip.avi", dance_frame, 5)
    got = list(est.stream(str(tmp_path / "clip.avi"), batch_size=2, track=False))
    assert [i for i, _, _ in got] == list(range(5))
    assert all(frame.shape == dance_frame.shape and len(poses) == 3 for _, frame, poses in got)
    single = est.predict(got[3][1])
    assert np.allclose(single[0].keypoints, got[3][2][0].keypoints, equal_nan=True)  # tracking off: as predict
    assert all(p.track_id is None for _, _, poses in got for p in poses)
    tracked = list(est.stream(str(tmp_path / "clip.avi"), batch_size=2))  # on by default
    assert [sorted(p.track_id for p in poses) for _, _, poses in tracked] == [[0, 1, 2]] * 5


def test_explain_command(env, images, tmp_path):
    r = pafpose(env, "explain", images / "p3_dance.png", "--out", tmp_path / "fig.png", "--dpi", "40")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 people; wrote")
    assert cv2.imread(str(tmp_path / "fig.png")) is not None
    r = pafpose(env, "explain", images / "p3_dance.png", "--out", tmp_path / "x.png", "--limbs", "99")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--limbs" in r.stderr
    r = pafpose(env, "explain", images / "p3_dance.png", "--out", tmp_path / "figure")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "figure type" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    (tmp_path / "file").write_text("")
    r = pafpose(env, "predict", images / "cat.jpg", "--out", tmp_path / "file")
    assert r.returncode == 2 and "is not a folder" in r.stderr and "Traceback" not in r.stderr


def test_every_command_has_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"predict", "explain", "models", "skeleton"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"pafpose {name}" in capsys.readouterr().out


def test_decoder_options_reach_the_config():
    from dataclasses import fields

    from pafpose.decoder import DecoderConfig

    parser = build_parser()
    args = parser.parse_args(["predict", "x.jpg", "--peak-threshold", "0.2", "--refine", "quadratic"])
    assert args.peak_threshold == 0.2 and args.refine == "quadratic" and args.fill_missing is False
    assert set(args._decoder_fields) == {f.name for f in fields(DecoderConfig)}
    config = DecoderConfig(**{name: getattr(args, name) for name in args._decoder_fields})
    assert config == DecoderConfig(peak_threshold=0.2, refine="quadratic")
    args = parser.parse_args(["eval", "--annotations", "a.json", "--images", "d"])
    assert args.fill_missing is True  # eval completes people unless told not to
    assert parser.parse_args(["eval", "--annotations", "a", "--images", "d", "--no-fill-missing"]).fill_missing is False


def test_explain_memory_is_bounded_by_the_display_not_the_photo(env, images, tmp_path):
    """A 12 Mpixel photo used to take 1.4 GB in matplotlib; a 144 Mpixel PNG took the machine."""
    dance = cv2.imread(str(images / "p3_dance.png"))
    cv2.imwrite(str(tmp_path / "big.jpg"), cv2.resize(dance, (4000, 3000)))
    from test_images import png_bomb

    (tmp_path / "bomb.png").write_bytes(png_bomb(12_000, 12_000))

    # VmHWM of the child's own memory: a fork's ru_maxrss would count the test process it was forked from
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))  # a safety net for the machine\n"
            "from pafpose.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "print('VmHWM', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, "explain", str(tmp_path / "big.jpg"), "--out",
                        str(tmp_path / "fig.png")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    peak_mb = int(r.stdout.split("VmHWM")[1]) // 1024
    assert peak_mb < 800, f"peak {peak_mb} MB"  # 1371 MB before; ~470 MB now

    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    r = subprocess.run([EXE, "explain", str(tmp_path / "bomb.png"), "--out", str(tmp_path / "b.png")],
                       env=env, capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "image too large: 12000 x 12000" in r.stderr


def test_a_folder_of_frames_as_one_sequence(env, dance_frame, tmp_path):
    for folder, n in (("walk", 5), ("dance", 3)):
        (tmp_path / folder).mkdir()
        for i in range(n):  # frame dumps: names in order
            cv2.imwrite(str(tmp_path / folder / f"{folder}_{i:06d}.png"), np.roll(dance_frame, 3 * i, axis=1))
    r = pafpose(env, "predict", tmp_path / "walk", tmp_path / "dance", "--out", tmp_path / "out", "--track",
                "--height", "256", "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    for folder, n in (("walk", 5), ("dance", 3)):
        files = sorted((tmp_path / "out").glob(f"{folder}_*_keypoints.json"))
        ids = [sorted(p["person_id"][0] for p in json.loads(f.read_text())["people"]) for f in files]
        assert ids == [[0, 1, 2]] * n, (folder, ids)  # one tracker per folder: ids start at 0 in each
    r = pafpose(env, "predict", tmp_path / "walk", "--out", tmp_path / "plain", "--height", "256")
    plain = sorted((tmp_path / "plain").glob("*_keypoints.json"))
    assert len(plain) == 5
    assert all([p["person_id"] for p in json.loads(f.read_text())["people"]] == [[-1]] * 3 for f in plain)  # untracked


def test_posetrack_output_per_sequence(env, dance_frame, tmp_path):
    make_video(tmp_path / "clip.mp4", dance_frame, 4)
    (tmp_path / "frames").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "frames" / f"f{i:04d}.png"), dance_frame)
    r = pafpose(env, "predict", tmp_path / "clip.mp4", tmp_path / "frames", "--out", tmp_path / "out",
                "--json", "posetrack", "--height", "256")
    assert r.returncode == 0, r.stderr
    for name, n in (("clip", 4), ("frames", 3)):
        doc = json.loads((tmp_path / "out" / f"{name}_posetrack.json").read_text())
        assert [im["frame_id"] for im in doc["images"]] == list(range(n)) and doc["images"][0]["nframes"] == n
        assert doc["categories"][0]["keypoints"][:3] == ["nose", "head_bottom", "head_top"]
        assert len(doc["annotations"]) == 3 * n and len({a["id"] for a in doc["annotations"]}) == 3 * n
        for image in doc["images"]:  # the three dancers in every frame, with their ids
            people = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
            assert sorted(a["track_id"] for a in people) == [0, 1, 2]
            assert all(len(a["keypoints"]) == 51 and len(a["scores"]) == 17 for a in people)
            assert all(a["keypoints"][2 * 3 + 2] == 0 for a in people)  # head_top: no counterpart, absent


def test_video_person_ids_agree_with_the_drawn_labels(env, dance_frame, tmp_path):
    """Each person of a frame's OpenPose JSON is drawn in their id's colour in that frame's picture."""
    from pafpose.draw import id_color

    make_video(tmp_path / "clip.mp4", dance_frame, 4)
    r = pafpose(env, "predict", tmp_path / "clip.mp4", "--out", tmp_path / "out", "--save-images", "--height", "256")
    assert r.returncode == 0, r.stderr
    for i in range(4):
        people = json.loads((tmp_path / "out" / f"clip_{i:012d}_keypoints.json").read_text())["people"]
        picture = cv2.imread(str(tmp_path / "out" / f"clip_{i:012d}_rendered.jpg")).astype(int)
        ids = [p["person_id"][0] for p in people]
        assert len(people) == 3 and sorted(ids) == [0, 1, 2]
        colours = {k: np.array(id_color(k)) for k in ids}
        for person, k in zip(people, ids, strict=True):
            kp = np.array(person["pose_keypoints_2d"]).reshape(-1, 3)
            joints = kp[kp[:, 2] > 0.1, :2].round().astype(int)
            seen = picture[joints[:, 1], joints[:, 0]]  # the joints' discs
            nearest = [min(colours, key=lambda j, c=c: np.abs(c - colours[j]).sum()) for c in seen]
            assert nearest.count(k) > 0.8 * len(nearest), (i, k, nearest)


def test_explain_checks_its_out_before_the_model_runs(env, images, tmp_path):
    """Issue 24: an unwritable --out was found after the model ran, naming a hidden temporary file."""
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file" / "fig.png", tmp_path / "folder"):
        (tmp_path / "folder").mkdir(exist_ok=True)
        r = pafpose(env, "explain", images / "p3_dance.png", "--out", out, "--model", "no-such-model")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(out) in r.stderr and ".part." not in r.stderr and "no-such-model" not in r.stderr
