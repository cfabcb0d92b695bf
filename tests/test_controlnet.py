"""ControlNet's OpenPose pose image and JSON, checked against the reference implementation itself.

The reference is ``controlnet_aux`` (PyPI ``controlnet-aux``, the package diffusers' ControlNet
pipelines take their preprocessors from). It can't simply be imported: its ``__init__`` imports
every detector, its requirements pull torchvision (no CPU build here) and timm, and
``open_pose/body.py`` imports ``scipy.ndimage.filters``, which newer scipy removed. So ``make
test`` installs the wheel with ``--no-deps`` and these tests load two files by path, running
none of the package's ``__init__``:

- ``open_pose/util.py`` (``draw_bodypose``, the drawing), which needs numpy, cv2 and the two
  ``NamedTuple`` classes ``Keypoint`` and ``BodyResult`` from ``body.py``: those two class
  definitions are taken from ``body.py``'s own source (its syntax tree, nothing else of the
  file is run) into a stand-in ``body`` module;
- ``util.py`` (``HWC3`` and ``resize_image``, the resolution rules), which needs numpy, cv2 and
  torch (pafpose's own dependency).

``OpenposeDetector.__call__`` and ``draw_poses`` (in ``open_pose/__init__.py``, which imports
the network, hands, faces and huggingface_hub) are a few lines around those functions; the
test repeats them, step by step, in ``reference_pose_image``.
"""

import ast
import importlib.util
import itertools
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose import controlnet
from pafpose.errors import PafposeError
from pafpose.pose import Pose

REFERENCE = "controlnet-aux==0.0.10"  # what the Makefile installs (--no-deps)


@pytest.fixture(scope="module")
def ref():
    """The reference's ``open_pose/util.py`` and ``util.py`` as modules, and its ``Keypoint``."""
    spec = importlib.util.find_spec("controlnet_aux")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"the reference is not installed: pip install --no-deps '{REFERENCE}' (make test does)")
    root = Path(spec.submodule_search_locations[0])
    tree = ast.parse((root / "open_pose" / "body.py").read_text(encoding="utf-8"))
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in ("Keypoint", "BodyResult")]
    assert len(classes) == 2, "controlnet_aux's body.py no longer defines Keypoint and BodyResult"
    body = types.ModuleType("_controlnet_reference.body")
    exec("from typing import List, NamedTuple, Optional, Union", body.__dict__)
    exec(compile(ast.Module(classes, type_ignores=[]), str(root / "open_pose" / "body.py"), "exec"), body.__dict__)
    saved = {k: sys.modules.get(k) for k in ("_controlnet_reference", "_controlnet_reference.body")}
    sys.modules["_controlnet_reference"] = types.ModuleType("_controlnet_reference")
    sys.modules["_controlnet_reference"].__path__ = []
    sys.modules["_controlnet_reference.body"] = body  # what util.py's "from .body import ..." finds
    try:
        draw_spec = importlib.util.spec_from_file_location("_controlnet_reference.util", root / "open_pose" / "util.py")
        draw = importlib.util.module_from_spec(draw_spec)
        draw_spec.loader.exec_module(draw)
        size_spec = importlib.util.spec_from_file_location("_controlnet_reference_util", root / "util.py")
        size = importlib.util.module_from_spec(size_spec)
        size_spec.loader.exec_module(size)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return types.SimpleNamespace(draw_bodypose=draw.draw_bodypose, HWC3=size.HWC3, resize_image=size.resize_image,
                                 Keypoint=body.Keypoint)


def reference_people(ref, people):
    """Normalised (18, 2) arrays (NaN: missing) -> the reference's lists of Keypoint or None."""
    return [[None if np.isnan(p).any() else ref.Keypoint(p[0], p[1]) for p in xy] for xy in people]


def reference_draw(ref, people, width, height):
    """``draw_poses`` (open_pose/__init__.py) with only the body: each person on one black canvas (RGB)."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for keypoints in reference_people(ref, people):
        canvas = ref.draw_bodypose(canvas, keypoints)
    return canvas


def reference_pose_image(ref, rgb, people, detect_resolution, image_resolution):
    """``OpenposeDetector.__call__`` after its network: the detection input, the drawing on its size,
    the resize to the image resolution's size (RGB, as it returns)."""
    input_image = ref.resize_image(ref.HWC3(rgb), detect_resolution)
    h, w, _ = input_image.shape
    detected_map = ref.HWC3(reference_draw(ref, people, w, h))
    img = ref.resize_image(input_image, image_resolution)
    h, w, _ = img.shape
    return input_image, cv2.resize(detected_map, (w, h), interpolation=cv2.INTER_LINEAR)


def decode_json(doc):
    """sd-webui-controlnet's ``decode_json_as_poses`` for the body: a confidence below 1 is a missing keypoint."""
    people = []
    for person in doc["people"]:
        k = np.array(person["pose_keypoints_2d"], dtype=float).reshape(-1, 3)
        xy = k[:, :2].copy()
        xy[k[:, 2] < 1.0] = np.nan
        people.append(xy)
    return people


def random_people(rng, n):
    """``n`` people of random normalised keypoints, some missing, some off the canvas, some coinciding."""
    people = []
    for _ in range(n):
        xy = rng.uniform(-0.05, 1.05, (18, 2))
        xy[rng.random(18) < 0.25] = np.nan
        if rng.random() < 0.3:
            xy[2] = xy[1]  # a limb of length 0
        people.append(xy)
    return people


def test_drawing_matches_the_reference_pixel_for_pixel(ref):
    rng = np.random.default_rng(18)
    for trial in range(120):
        w, h = (int(rng.integers(1, 16)) * 64, int(rng.integers(1, 16)) * 64) if trial % 2 else \
            (int(rng.integers(8, 1200)), int(rng.integers(8, 1200)))  # and sizes no resize gives
        people = random_people(rng, int(rng.integers(0, 6)))
        ours = controlnet.draw(people, w, h)
        assert ours.shape == (h, w, 3) and ours.dtype == np.uint8
        assert np.array_equal(ours[:, :, ::-1], reference_draw(ref, people, w, h)), (trial, w, h)


def test_missing_keypoints_and_edge_cases_match_the_reference(ref):
    w, h = 512, 768
    full = np.random.default_rng(1).uniform(0.1, 0.9, (18, 2))
    cases = {"no keypoint": np.full((18, 2), np.nan), "one keypoint": np.where(np.arange(18)[:, None] == 4, full,
                                                                                np.nan),
             "no neck": np.where(np.arange(18)[:, None] == 1, np.nan, full),
             "all at one point": np.full((18, 2), 0.5), "exact pixels": np.round(full * 64) / 64,
             "on the border": np.tile([[0.0, 1.0]], (18, 1)), "everyone": full}
    for name, xy in cases.items():
        assert np.array_equal(controlnet.draw([xy], w, h)[:, :, ::-1], reference_draw(ref, [xy], w, h)), name
    drawn = controlnet.draw([cases["no keypoint"]], w, h)
    assert not drawn.any()  # nothing found, nothing drawn: the black canvas
    one = controlnet.draw([cases["one keypoint"]], w, h)
    r, g, b = controlnet.COLORS[4]  # the right wrist's disc alone, in its colour
    assert {tuple(c) for c in one.reshape(-1, 3)} == {(0, 0, 0), (b, g, r)}


def test_sizes_follow_resize_image(ref):
    cases = [(640, 427), (427, 640), (1280, 720), (544, 512), (608, 512), (512, 544), (100, 1000), (33, 47),
             (3000, 2000), (1, 1), (700, 500)]
    for (w, h), res in itertools.product(cases, (64, 256, 500, 512, 700, 768, 1024)):
        out = ref.resize_image(np.zeros((h, w, 3), np.uint8), res)
        size = controlnet.sizes(w, h, res, 512)
        assert size.detect == (out.shape[1], out.shape[0]), (w, h, res)
        again = ref.resize_image(out, 512)  # the output size comes from the detection input, as there
        assert size.output == (again.shape[1], again.shape[0]), (w, h, res)


def test_bad_resolutions_are_one_line_errors():
    for bad in (0, 63, 4097, 512.5, float("nan"), True, "512"):
        with pytest.raises(PafposeError, match="resolution"):
            controlnet.sizes(640, 480, bad)
        with pytest.raises(PafposeError, match="resolution"):
            controlnet.sizes(640, 480, 512, bad)
    with pytest.raises(PafposeError, match="Mpixel"):  # a panorama's canvas at a high resolution
        controlnet.sizes(40000, 100, 2048)
    with pytest.raises(PafposeError, match="threshold"):
        controlnet.keypoints([], 10, 10, threshold=1.5)


def test_keypoints_from_any_layout_by_name():
    k18 = np.full((18, 3), np.nan)
    k18[:, 2] = 0.0
    k18[[0, 2, 5]] = [[100, 50, 0.9], [80, 100, 0.05], [120, 100, 0.8]]  # nose, shoulders
    (xy,) = controlnet.keypoints([Pose(k18, 0.5, "coco18")], 200, 400)
    assert np.allclose(xy[0], [0.5, 0.125]) and np.isnan(xy[2]).all()  # the weak shoulder is left out
    assert np.allclose(xy[5], [0.6, 0.25]) and np.isnan(xy[1]).all()
    (xy,) = controlnet.keypoints([Pose(k18, 0.5, "coco18")], 200, 400, threshold=0.0)
    assert np.allclose(xy[2], [0.4, 0.25])
    coco17 = Pose(k18, 0.5, "coco18").to_coco17()
    (xy,) = controlnet.keypoints([coco17], 200, 400, threshold=0.0)
    assert np.allclose(xy[1], [0.5, 0.25])  # the neck: OpenPose's mid-point of the shoulders
    assert np.allclose(xy[0], [0.5, 0.125]) and np.isnan(xy[8]).all()


def test_pose_json_is_what_sd_webui_controlnet_writes():
    size = controlnet.sizes(1280, 720)
    assert size.detect == (896, 512)
    xy = np.random.default_rng(3).uniform(0, 1, (18, 2))
    xy[[3, 17]] = np.nan
    doc = controlnet.pose_json([xy], size)
    assert list(doc) == ["people", "canvas_height", "canvas_width"]
    assert (doc["canvas_width"], doc["canvas_height"]) == (896, 512)
    person = doc["people"][0]
    assert person["face_keypoints_2d"] is None and person["hand_left_keypoints_2d"] is None
    assert person["hand_right_keypoints_2d"] is None
    k = np.array(person["pose_keypoints_2d"]).reshape(18, 3)
    assert (k[[3, 17]] == 0).all() and (k[np.isfinite(xy[:, 0]), 2] == 1.0).all()
    round_trip = decode_json(json.loads(json.dumps(doc)))  # written unrounded: the same floats come back
    assert np.array_equal(round_trip[0], xy, equal_nan=True)


@pytest.mark.parametrize(("photo", "detect", "image"), [("p3_dance.png", 512, 512), ("ski.jpg", 384, 768),
                                                         ("apink1.jpg", 500, 700)])
def test_real_poses_on_photos_match_the_reference(ref, est, shared, photo, detect, image):
    """The real model's people on a photo: pafpose's pose image, and the image the reference draws
    from pafpose's JSON by its own rules, are the same pixels; so is the detection input."""
    bgr = cv2.imread(str(shared / "images" / photo))
    result = controlnet.annotate(est, bgr, detect, image)
    assert result.poses, "no one found: nothing to compare"
    ref_input, ref_image = reference_pose_image(ref, bgr[:, :, ::-1], decode_json(result.json), detect, image)
    assert np.array_equal(controlnet.detect_input(bgr, detect), ref_input[:, :, ::-1])  # what the network saw
    assert result.sizes.detect == (ref_input.shape[1], ref_input.shape[0])
    assert result.image.shape == ref_image.shape and result.image.any()
    assert np.array_equal(result.image, ref_image[:, :, ::-1])
    assert (result.json["canvas_width"], result.json["canvas_height"]) == result.sizes.detect


def test_annotate_reports_missing_keypoints(ref, est, shared):
    """Real people with keypoints missing: a missing keypoint is 0, 0, 0 and its limbs are not drawn."""
    bgr = cv2.imread(str(shared / "images" / "ski.jpg"))
    result = controlnet.annotate(est, bgr)
    people = decode_json(result.json)
    missing = sum(int(np.isnan(xy[:, 0]).sum()) for xy in people)
    assert missing > 0, "every keypoint found: this photo no longer tests missing ones"
    assert np.array_equal(result.image, controlnet.pose_image(people, result.sizes))
    for p, xy in zip(result.poses, people, strict=True):  # the JSON is the people normalised by the canvas
        ok = p.keypoints[:, 2] >= 0.1
        w, h = result.sizes.detect
        assert np.array_equal(np.isfinite(xy[:, 0]), ok & np.isfinite(p.keypoints[:, 0]))
        assert np.allclose(xy[ok], p.keypoints[ok, :2] / [w, h])


def test_render_from_poses_in_image_pixels(est, shared):
    bgr = cv2.imread(str(shared / "images" / "p3_dance.png"))
    det = controlnet.detector(est, 512)
    poses = det.predict(bgr)  # found at the detection size, in the photo's pixels
    result = controlnet.annotate(est, bgr)
    assert len(poses) == len(result.poses) == 3
    w, h = result.sizes.detect
    back = np.array([p.keypoints for p in poses])
    there = np.array([p.keypoints for p in result.poses])
    assert np.allclose((back[..., 0] + 0.5) * w / 1280 - 0.5, there[..., 0], equal_nan=True)
    assert np.allclose((back[..., 1] + 0.5) * h / 720 - 0.5, there[..., 1], equal_nan=True)
    # the people in the canvas's pixels, on a canvas-sized image: annotate's image exactly
    assert np.array_equal(controlnet.render(result.poses, (w, h)), result.image)
    # in the photo's pixels, normalised by the photo: within a pixel of it (edges of a few limbs move)
    drawn = controlnet.render(poses, (1280, 720))
    assert drawn.shape == result.image.shape and drawn.any()
    assert (np.abs(drawn.astype(int) - result.image).max(axis=2) > 0).mean() < 0.01


def test_detector_streams_a_video_at_the_detect_resolution(est, shared):
    video = shared / "videos" / "street.avi"
    det = controlnet.detector(est, 256)
    frames = list(itertools.islice(det.stream(video, track=False), 2))
    assert [i for i, _, _ in frames] == [0, 1]
    _, frame, poses = frames[0]
    assert frame.shape[:2] != (256, 256) and len(poses) > 0
    assert all(p.track_id is None for p in poses)
    again = det.predict(frame)
    assert np.allclose([p.keypoints for p in again], [p.keypoints for p in poses], equal_nan=True)
    tracked = list(itertools.islice(det.stream(video), 3))
    assert all(p.track_id is not None for _, _, people in tracked for p in people)


def test_the_command_writes_the_pose_image_and_json(env, shared, tmp_path):
    exe = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
    out = tmp_path / "out"
    photo = shared / "images" / "p3_dance.png"
    r = subprocess.run([exe, "predict", str(photo), "--render", "controlnet", "--detect-resolution", "384",
                        "--image-resolution", "768", "--out", str(out)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    image = cv2.imread(str(out / "p3_dance_controlnet.png"))
    doc = json.loads((out / "p3_dance_controlnet.json").read_text())
    size = controlnet.sizes(1280, 720, 384, 768)
    assert image.shape == (size.output[1], size.output[0], 3)
    assert (doc["canvas_width"], doc["canvas_height"]) == size.detect
    assert len(doc["people"]) == 3 and (out / "p3_dance_keypoints.json").exists()
    assert np.array_equal(image, controlnet.pose_image(decode_json(doc), size))  # the JSON redraws the image
    assert not list(out.glob(".*"))  # written atomically: no temporary file left
    for args, why in ((["--render", "controlnet", "--detect-resolution", "0"], "must be in [64, 4096]"),
                      (["--render", "controlnet", "--image-resolution", "5000"], "must be in [64, 4096]"),
                      (["--render", "controlnet", "--detect-resolution", "nan"], "whole number"),
                      (["--render", "controlnet", "--image-resolution", "512.5"], "whole number"),
                      (["--render", "sdxl"], "invalid choice"),
                      (["--detect-resolution", "384"], "are for --render controlnet")):
        r = subprocess.run([exe, "predict", str(photo), *args, "--out", str(tmp_path / "bad")], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_the_command_writes_one_pose_image_per_video_frame(env, dance_frame, tmp_path):
    exe = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (dance_frame.shape[1], 256))
    for i in range(3):
        writer.write(np.roll(dance_frame, 2 * i, axis=1))
    writer.release()
    out = tmp_path / "out"
    r = subprocess.run([exe, "predict", str(clip), "--render", "controlnet", "--out", str(out), "--height", "256"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    size = controlnet.sizes(456, 256)
    for i in range(3):
        image = cv2.imread(str(out / f"clip_{i:012d}_controlnet.png"))
        doc = json.loads((out / f"clip_{i:012d}_controlnet.json").read_text())
        assert image.shape == (size.output[1], size.output[0], 3) and len(doc["people"]) == 3
        assert np.array_equal(image, controlnet.pose_image(decode_json(doc), size))
        keypoints = json.loads((out / f"clip_{i:012d}_keypoints.json").read_text())  # tracked, in the frame's pixels
        assert sorted(p["person_id"][0] for p in keypoints["people"]) == [0, 1, 2]
