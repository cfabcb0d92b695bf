"""The one output writer (`pafpose.outputs`), driven directly: its options, and the files it
writes for people it is given (no network: generated people on generated images)."""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.coords import Geometry
from pafpose.errors import PafposeError
from pafpose.fields import OPENPOSE_COCO18
from pafpose.outputs import HeatmapOptions, OutputOptions, Writer, frame_name, picture_suffix
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18


def people(size=(320, 240), n=2, track=False):
    rng = np.random.default_rng(0)
    out = Poses()
    for i in range(n):
        k = np.c_[rng.uniform(20, 200, (18, 2)), rng.uniform(0.3, 1.0, 18)]
        k[5] = (np.nan, np.nan, 0.0)
        out.append(Pose(k, 0.9 - 0.1 * i, COCO18, i if track else None))
    out.image_size, out.geometry, out.skeleton = size, Geometry(1.5, 1.5, 8), COCO18
    return out


def test_options_are_checked_and_travel_as_plain_values(tmp_path):
    for bad, why in (({"json": "xml"}, "json must be one of"), ({"threshold": math.nan}, "threshold"),
                     ({"keypoint_scale": 5}, "keypoint scale"), ({"number_people_max": 0}, "number_people_max"),
                     ({"controlnet": (32, 512)}, "detect resolution"), ({"write_video_fps": 0}, "write_video_fps"),
                     ({"json": "coco", "keypoints": "body25"}, "shapes the OpenPose JSON")):
        with pytest.raises(PafposeError, match=why):
            OutputOptions(out=tmp_path, **bad)
    o = OutputOptions(out=Path("rel"), heatmaps=HeatmapOptions(Path("maps")), controlnet=(256, 512),
                      keypoints="body25", images_format="png")
    assert o.json_folder == o.images_folder == Path("rel") and o.keep_fields and not o.drawing
    back = OutputOptions.from_dict(json.loads(json.dumps(o.to_dict())))
    assert back == o
    absolute = o.absolute()
    assert absolute.out.is_absolute() and absolute.heatmaps.folder.is_absolute() and absolute.json_folder.is_absolute()


def test_the_writer_writes_each_images_files(tmp_path):
    o = OutputOptions(out=tmp_path / "out", save_images=True, number_people_max=1, keypoints="body25",
                      controlnet=(256, 256), images_dir=tmp_path / "drawn")
    w = Writer(o, OPENPOSE_COCO18)
    image = np.full((240, 320, 3), 80, np.uint8)
    written = w.image(people(), image, "sub/a", location="x/a.jpg", suffix=picture_suffix("x/a.jpg"))
    assert len(written.people) == 1 and written.drawn.shape == image.shape and written.drawn.any()
    w.finish()
    doc = json.loads((tmp_path / "out" / "sub" / "a_keypoints.json").read_text())
    assert len(doc["people"]) == 1 and len(doc["people"][0]["pose_keypoints_2d"]) == 25 * 3
    assert cv2.imread(str(tmp_path / "drawn" / "sub" / "a_rendered.jpg")).shape == image.shape
    assert (tmp_path / "out" / "sub" / "a_controlnet.png").exists()
    assert {p.name for p in w.written} == {"a_keypoints.json", "a_rendered.jpg", "a_controlnet.png",
                                           "a_controlnet.json"}
    assert not list((tmp_path / "out").rglob(".*"))  # nothing half-written left
    assert picture_suffix("b.PNG") == ".png" and picture_suffix("c.jpe") == ".jpg" and picture_suffix(None) == ".jpg"
    assert frame_name("clip", 12) == "clip_000000000012"


def test_a_thumbnail_is_drawn_in_its_own_pixels(tmp_path):
    w = Writer(OutputOptions(out=tmp_path, save_images=True, json="none"), OPENPOSE_COCO18)
    found = people(size=(640, 480))
    thumb = np.zeros((240, 320, 3), np.uint8)
    drawn = w.image(found, thumb, "t").drawn
    from pafpose.draw import poses as draw_poses

    assert np.array_equal(drawn, draw_poses(thumb, found.scaled(0.5, 0.5)))
    # OpenPose's --keypoint_scale 2 is the drawn picture's pixels
    w2 = Writer(OutputOptions(out=tmp_path, keypoint_scale=2), OPENPOSE_COCO18)
    doc = w2.openpose_document(found, thumb)
    k = np.array(doc["people"][0]["pose_keypoints_2d"]).reshape(-1, 3)
    assert np.allclose(k[0, :2], (found[0].keypoints[0, :2] + 0.5) * 0.5 - 0.5, atol=1e-3)


def test_coco_and_posetrack_files_for_the_run(tmp_path):
    coco = Writer(OutputOptions(out=tmp_path / "c", json="coco"), OPENPOSE_COCO18,
                  locations=["d/000000000139.jpg", "d/other.jpg"])
    coco.image(people(), None, "other", location="d/other.jpg")
    coco.image(people(n=1), None, "000000000139", location="d/000000000139.jpg")
    assert (tmp_path / "c" / "coco_results.partial.jsonl").exists()  # journalled as it goes
    coco.finish()
    results = json.loads((tmp_path / "c" / "coco_results.json").read_text())
    ids = json.loads((tmp_path / "c" / "coco_image_ids.json").read_text())
    assert [r["image_id"] for r in results] == [1, 1, 139] and ids == {"1": "other", "139": "000000000139"}
    assert not (tmp_path / "c" / "coco_results.partial.jsonl").exists()
    pt = Writer(OutputOptions(out=tmp_path / "p", json="posetrack"), OPENPOSE_COCO18)
    seq = pt.sequence("clip")
    for i in range(3):
        pt.image(people(track=True), None, frame_name("clip", i), sequence=seq)
    pt.end_sequence(seq)
    doc = json.loads((tmp_path / "p" / "clip_posetrack.json").read_text())
    assert [im["frame_id"] for im in doc["images"]] == [0, 1, 2] and len(doc["annotations"]) == 6
    assert {a["track_id"] for a in doc["annotations"]} == {0, 1}
    assert pt.sequence("clip") == "clip_2"  # sequences never share a file


def test_output_folders_follow_out_and_openpose_flags_resolve_alike():
    o = OutputOptions(out=Path("a"), number_people_max=-1)
    assert o.number_people_max is None  # OpenPose's -1: everyone
    moved = o.replace(out=Path("b"))
    assert moved.json_folder == moved.images_folder == Path("b")
    assert OutputOptions(out=Path("a"), json_dir=Path("j")).replace(out=Path("b")).json_folder == Path("j")
    for bad in ({"keypoint_scale": 1.0}, {"controlnet": (512,)}, {"images_format": "gif"},
                {"heatmaps": {"folder": "h", "scale": 7}}):
        with pytest.raises(PafposeError):
            OutputOptions(out=Path("a"), **bad)
    from pafpose.cli import build_parser
    from pafpose.cli.openpose_flags import resolve

    # OpenPose's --write_json DIR turns the JSON on, in batch (whose default is none) as in predict
    for argv, default in ((["batch", "x", "--out", "o", "--write_json", "j"], "none"),
                          (["predict", "x", "--write_json", "j"], "openpose")):
        args = build_parser().parse_args(argv)
        options = resolve(args, default)
        assert options.json == "openpose" and options.json_folder == Path("j"), argv
    assert resolve(build_parser().parse_args(["batch", "x", "--out", "o"]), "none").json == "none"


def test_a_killed_posetrack_run_leaves_a_journal_of_every_finished_frame(tmp_path):
    """kill -9 mid-sequence: every finished frame is in the journal, which a later run keeps."""
    import subprocess
    import sys

    script = f"""
import os, signal
from pathlib import Path
import numpy as np
from pafpose.coords import Geometry
from pafpose.fields import OPENPOSE_COCO18
from pafpose.outputs import OutputOptions, Writer, frame_name
from pafpose.pose import Pose, Poses
from pafpose.skeleton import COCO18
people = Poses([Pose(np.c_[np.full((18, 2), 50.0), np.full(18, 0.9)], 0.9, COCO18, 0)])
people.image_size, people.geometry, people.skeleton = (320, 240), Geometry(1.5, 1.5, 8), COCO18
w = Writer(OutputOptions(out=Path({str(tmp_path)!r}), json="posetrack"), OPENPOSE_COCO18)
seq = w.sequence("clip")
for i in range(5):
    w.image(people, None, frame_name("clip", i), sequence=seq)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    journal = tmp_path / "clip_posetrack.partial.jsonl"
    frames = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [f["image"]["frame_id"] for f in frames] == [0, 1, 2, 3, 4]
    assert all(len(f["annotations"]) == 1 for f in frames)
    warnings = []
    again = Writer(OutputOptions(out=tmp_path, json="posetrack"), OPENPOSE_COCO18, warn=warnings.append)
    seq = again.sequence("clip")
    again.image(people(track=True), None, frame_name("clip", 0), sequence=seq)
    again.finish()
    kept = tmp_path / "clip_posetrack.partial.1.jsonl"
    assert kept.read_text() == "\n".join(json.dumps(f) for f in frames) + "\n"  # never overwritten
    assert len(warnings) == 1 and kept.name in warnings[0]
    doc = json.loads((tmp_path / "clip_posetrack.json").read_text())
    assert len(doc["images"]) == 1 and doc["images"][0]["nframes"] == 1 and len(doc["annotations"]) == 2
    assert not journal.exists()


def test_posetrack_frames_are_not_held_in_memory(tmp_path):
    """A long sequence's annotations go to the journal, not to memory."""
    import tracemalloc

    from pafpose.outputs import PoseTrackFiles

    files = PoseTrackFiles(tmp_path)
    crowd = people(n=10, track=True)
    tracemalloc.start()
    try:
        for i in range(20):
            files.add("clip", crowd, f"{i}.jpg")
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20, 520):
            files.add("clip", crowd, f"{i}.jpg")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown  # 500 frames of 10 people: megabytes if they were kept
    doc = json.loads(files.end("clip").read_text())
    assert len(doc["images"]) == 520 and len(doc["annotations"]) == 5200
    assert doc["images"][-1] == {"file_name": "519.jpg", "id": 519, "frame_id": 519, "vid_id": "clip",
                                 "is_labeled": True, "nframes": 520}
    assert [a["id"] for a in doc["annotations"][:3]] == [0, 1, 2] and doc["annotations"][-1]["image_id"] == 519
    assert doc["categories"][0]["name"] == "person" and not list(tmp_path.glob("*.jsonl"))
