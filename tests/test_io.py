"""Reading images and resolving sources, on files the tests write."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose import PafposeError
from pafpose.io import expand_sources, read_image, write_image_atomic
from pafpose.video import VideoWriter, open_capture


def picture(h=40, w=60):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_read_image_converts_depth_channels_and_alpha(tmp_path):
    img = picture()
    cv2.imwrite(str(tmp_path / "c.png"), img)
    assert (read_image(tmp_path / "c.png") == img).all()
    gray16 = (cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    got = read_image(tmp_path / "g16.png")
    assert got.dtype == np.uint8 and got.shape == (40, 60, 3)
    assert (got[:, :, 0] == cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)).all()
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 7
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert (read_image(tmp_path / "a.png") == img).all()


def test_read_image_applies_exif_orientation(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed (optional)")
    img = picture(40, 60)
    exif = pil.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    pil.fromarray(img[:, :, ::-1]).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert read_image(tmp_path / "phone.jpg").shape == (60, 40, 3)


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    for name, message in (("empty.jpg", "empty file"), ("text.png", "not a readable image"),
                          ("missing.jpg", "no such file")):
        with pytest.raises(PafposeError, match=message) as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value)


def test_expand_sources(tmp_path):
    for rel in ("a/x.jpg", "a/deep/y.png", "a/.hidden/z.jpg", "a/clip.MP4", "a/notes.txt", "b/x.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    sources, errors, ignored = expand_sources([
        str(tmp_path / "a"), str(tmp_path / "b" / "*.jpg"), str(tmp_path / "a" / "x.jpg"),  # a repeat
        "0", "rtsp://cam.local/live?x=1", str(tmp_path / "nothing*.jpg"), str(tmp_path / "gone.png")])
    got = [(s.kind, s.name) for s in sources]
    assert got == [("video", "clip"), ("image", "deep/y"), ("image", "x"), ("image", "x_2"),
                   ("camera", "camera0"), ("stream", "live")]
    assert sources[4].capture_arg() == 0 and sources[5].capture_arg() == "rtsp://cam.local/live?x=1"
    assert ignored == 1
    assert len(errors) == 2 and "nothing*.jpg: no image or video matches" in errors[0]
    assert "gone.png: no such file or folder" in errors[1]
    (tmp_path / "c").mkdir()
    assert expand_sources([str(tmp_path / "c")])[1] == [f"{tmp_path / 'c'}: no images or videos in this folder"]


def test_folders_and_globs_take_every_format_the_reader_reads(tmp_path):
    """Issue 22: a GIF, AVIF or MPO named on the command line was read, the same file in a
    folder was ignored (folders had their own, shorter list of extensions)."""
    from helpers_images import image_of_every_extension

    written, unwritable = image_of_every_extension(tmp_path / "in", picture())
    assert {".gif", ".GIF", ".mpo", ".jpe", ".jfif", ".pbm", ".pnm", ".dib", ".j2k", ".jpx"} <= {
        Path(name).suffix for name in written}
    sources, errors, ignored = expand_sources([str(tmp_path / "in")])
    assert (errors, ignored) == ([], 0)
    assert sorted((s.kind, Path(s.location).name) for s in sources) == [("image", n) for n in sorted(written)]
    for name in written:
        sources, errors, ignored = expand_sources([str(tmp_path / "in" / ("*" + Path(name).suffix))])
        assert not errors and ("image", name) in [(s.kind, Path(s.location).name) for s in sources]
    if unwritable:
        pytest.skip("every other format is taken; " + "; ".join(unwritable.values()))


def test_atomic_writers_leave_only_the_result(tmp_path):
    img = picture()
    out = write_image_atomic(img, tmp_path / "o" / "x.png")
    assert (cv2.imread(str(out)) == img).all() and [p.name for p in out.parent.iterdir()] == ["x.png"]
    with pytest.raises(PafposeError, match="cannot encode"):
        write_image_atomic(img, tmp_path / "o" / "x.nope")
    assert [p.name for p in out.parent.iterdir()] == ["x.png"]
    with VideoWriter(tmp_path / "v.avi", fps=5) as writer:
        for _ in range(3):
            writer.write(img)
        assert not (tmp_path / "v.avi").exists()  # hidden until finished
    cap = open_capture(str(tmp_path / "v.avi"))
    assert sum(1 for _ in iter(lambda: cap.read()[0], False)) == 3
    with pytest.raises(PafposeError, match="no such video"):
        open_capture(str(tmp_path / "none.mp4"))


def test_sources_prefer_files_and_skip_our_own_drawings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2023").mkdir()
    (tmp_path / "2023" / "a.jpg").write_bytes(b"")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_rendered.jpg").write_bytes(b"")
    (tmp_path / "out" / "b.jpg").write_bytes(b"")
    sources, errors, _ = expand_sources(["2023", "out"], outputs="out")
    assert [(s.kind, s.name) for s in sources] == [("image", "a"), ("image", "b")] and not errors


def test_coco_ids_only_from_coco_names():
    from pafpose.formats import coco_image_id

    assert coco_image_id("000000000139.jpg") == 139 and coco_image_id("COCO_val2014_000000000357.jpg") == 357
    assert coco_image_id("20230101_120000.jpg") is None and coco_image_id("IMG_1234567.jpg") is None


def test_video_writer_refuses_unknown_containers(tmp_path):
    with pytest.raises(PafposeError, match="cannot write"), VideoWriter(tmp_path / "x.xyz", fps=5) as writer:
        writer.write(picture())
    assert list(tmp_path.iterdir()) == []


def raw_y4m(path, frames=5, w=64, h=48):
    """A raw YUV4MPEG2 video, written by hand: a header line, then 'FRAME' and the planes."""
    y, uv = np.full((h, w), 100, np.uint8).tobytes(), np.full((h // 2, w // 2), 128, np.uint8).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode()
                     + b"".join(b"FRAME\n" + y + uv + uv for _ in range(frames)))


def test_a_video_named_directly_is_a_video_whatever_its_suffix(tmp_path):
    """Issue 24: a raw stream (.y4m, .h264, .vob) named directly was read as an image and refused."""
    raw_y4m(tmp_path / "clip.y4m")
    writer = cv2.VideoWriter(str(tmp_path / "mjpg.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    (tmp_path / "mjpg.avi").rename(tmp_path / "camera.h264")  # MJPG content, a raw stream's name
    (tmp_path / "camera.xyz").write_bytes((tmp_path / "camera.h264").read_bytes())  # any name at all
    (tmp_path / "notes.txt").write_text("not a picture\n")
    (tmp_path / "photo.data").write_bytes(cv2.imencode(".png", picture())[1].tobytes())
    named = ["clip.y4m", "camera.h264", "camera.xyz", "notes.txt", "photo.data"]
    sources, errors, _ = expand_sources([str(tmp_path / n) for n in named])
    assert not errors
    assert [s.kind for s in sources] == ["video", "video", "video", "image", "image"]  # notes.txt: refused when read
    # raw streams' usual suffixes are videos in folders and globs too
    sources, errors, _ = expand_sources([str(tmp_path)])
    assert not errors
    assert sorted((s.kind, Path(s.location).name) for s in sources if s.kind == "video") == [
        ("video", "camera.h264"), ("video", "clip.y4m")]
    assert [s.kind for s in expand_sources([str(tmp_path / "*.y4m")])[0]] == ["video"]


def test_every_output_pafpose_writes_is_not_an_input(tmp_path):
    """Issue 24: only ``*_rendered.*`` was skipped; ControlNet pictures and heatmaps were read back."""
    src = tmp_path / "src"
    outputs = ("a_rendered.jpg", "a_controlnet.png", "a_controlnet.json", "a_pose_heatmaps.png", "a_keypoints.json",
               "seq_posetrack.json", "coco_results.json", "clip_rendered.partial.mp4")
    for rel in ("a.jpg", "sub/b.png", "run.mp4", *outputs, *(f"out/{n}" for n in outputs), "out/picked.png"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b"")
    # --out inside the source folder: skipped whole; the run's --write-video file too
    sources, errors, ignored = expand_sources([str(src)], [src / "out", src / "run.mp4"])
    names = sorted(Path(s.location).relative_to(src).as_posix() for s in sources)
    assert names == ["a.jpg", "a_controlnet.png", "a_pose_heatmaps.png", "a_rendered.jpg",
                     "clip_rendered.partial.mp4", "sub/b.png"]  # outside --out, a name is only a name
    assert not errors and ignored == 4  # the JSON files outside --out
    # --out is the source folder itself: its photos stay inputs, pafpose's files don't
    sources, errors, ignored = expand_sources([str(src)], src)
    names = sorted(Path(s.location).relative_to(src).as_posix() for s in sources)
    assert names == ["a.jpg", "out/picked.png", "run.mp4", "sub/b.png"] and not errors and ignored == 0
    sources, _, _ = expand_sources([str(src / "**" / "*.png")], src)
    assert sorted(Path(s.location).name for s in sources) == ["b.png", "picked.png"]
