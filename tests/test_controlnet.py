"""ControlNet's OpenPose pose image and JSON, checked against the reference implementation itself.

The reference is ``controlnet_aux`` (PyPI ``controlnet-aux``, the package diffusers' ControlNet
pipelines take their preprocessors from). It can't simply be imported: its ``__init__`` imports
every detector, its requirements pull torchvision (no CPU build here) and timm, and
``open_pose/body.py`` imports ``scipy.ndimage.filters``, which newer scipy removed. So ``make
test`` installs the wheel with ``--no-deps`` and these tests load two files by path, running
none of the package's ``__init__``:

- ``open_pose/util.py`` (``draw_bodypose``, ``draw_handpose`` and ``draw_facepose``, the drawing:
  the hands' colours come from matplotlib, a pafpose dependency), which needs numpy, cv2 and the two
  ``NamedTuple`` classes ``Keypoint`` and ``BodyResult`` from ``body.py``: those two class
  definitions are taken from ``body.py``'s own source (its syntax tree, nothing else of the
  file is run) into a stand-in ``body`` module;
- ``util.py`` (``HWC3`` and ``resize_image``, the resolution rules), which needs numpy, cv2 and
  torch (pafpose's own dependency).

``OpenposeDetector.__call__`` and ``draw_poses`` (in ``open_pose/__init__.py``, which imports
the network, hands, faces and huggingface_hub) are a few lines around those functions; the
test repeats them, step by step, in ``reference_draw`` and ``reference_pose_image``, with the
``include_body``, ``include_hand`` and ``include_face`` of each of sd-webui-controlnet's
OpenPose preprocessors (``REFERENCE_MODES``).
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
from pafpose.pose import Pose, Poses

REFERENCE = "controlnet-aux==0.0.10"  # what the Makefile installs (--no-deps)
#: sd-webui-controlnet's OpenPose preprocessors and the OpenposeDetector flags each calls it with.
REFERENCE_MODES = {
    "openpose": {"include_body": True, "include_hand": False, "include_face": False},
    "openpose_hand": {"include_body": True, "include_hand": True, "include_face": False},
    "openpose_face": {"include_body": True, "include_hand": False, "include_face": True},
    "openpose_faceonly": {"include_body": False, "include_hand": False, "include_face": True},
    "openpose_full": {"include_body": True, "include_hand": True, "include_face": True},
}


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
    return types.SimpleNamespace(draw_bodypose=draw.draw_bodypose, draw_handpose=draw.draw_handpose,
                                 draw_facepose=draw.draw_facepose, HWC3=size.HWC3, resize_image=size.resize_image,
                                 Keypoint=body.Keypoint)


def reference_points(ref, xy, width, height):
    """A normalised hand or face (NaN: missing) -> the reference's list of Keypoint as its detector makes
    it: a missing point at (-1 / W, -1 / H), its mark (its drawing takes no None there); None: no part."""
    if xy is None:
        return None
    return [ref.Keypoint(-1.0 / width, -1.0 / height) if np.isnan(p).any() else ref.Keypoint(p[0], p[1])
            for p in xy.tolist()]


def reference_draw(ref, people, width, height, mode="openpose"):
    """``draw_poses`` (open_pose/__init__.py) with ``mode``'s flags: each person's body (18 Keypoint or
    None), left hand, right hand and face on one black canvas (RGB)."""
    flags = REFERENCE_MODES[mode]
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for person in people:
        person = person if isinstance(person, controlnet.Person) else controlnet.Person(person)
        if flags["include_body"]:
            body = [None if np.isnan(p).any() else ref.Keypoint(p[0], p[1]) for p in person.body]
            canvas = ref.draw_bodypose(canvas, body)
        if flags["include_hand"]:
            canvas = ref.draw_handpose(canvas, reference_points(ref, person.hand_left, width, height))
            canvas = ref.draw_handpose(canvas, reference_points(ref, person.hand_right, width, height))
        if flags["include_face"]:
            canvas = ref.draw_facepose(canvas, reference_points(ref, person.face, width, height))
    return canvas


def reference_pose_image(ref, rgb, people, detect_resolution, image_resolution, mode="openpose"):
    """``OpenposeDetector.__call__`` after its network: the detection input, the drawing on its size,
    the resize to the image resolution's size (RGB, as it returns)."""
    input_image = ref.resize_image(ref.HWC3(rgb), detect_resolution)
    h, w, _ = input_image.shape
    detected_map = ref.HWC3(reference_draw(ref, people, w, h, mode))
    img = ref.resize_image(input_image, image_resolution)
    h, w, _ = img.shape
    return input_image, cv2.resize(detected_map, (w, h), interpolation=cv2.INTER_LINEAR)


def decode_json(doc):
    """sd-webui-controlnet's ``decode_json_as_poses``: a confidence below 1 is a missing keypoint, an
    empty or null array no part (here NaN and None, as controlnet.Person holds them)."""

    def points(values):
        if not values:
            return None
        assert len(values) % 3 == 0
        k = np.array(values, dtype=float).reshape(-1, 3)
        xy = k[:, :2].copy()
        xy[k[:, 2] < 1.0] = np.nan
        return xy

    return [controlnet.Person(points(p["pose_keypoints_2d"]), points(p.get("hand_left_keypoints_2d")),
                              points(p.get("hand_right_keypoints_2d")), points(p.get("face_keypoints_2d")))
            for p in doc["people"]]


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
    assert np.array_equal(round_trip[0].body, xy, equal_nan=True)


def random_hand(rng, missing=0.2):
    """A normalised hand of 21 points: a wrist and five fingers fanning out from it, each finger's
    four joints further out; some points missing, the hand anywhere (also over the canvas's edges)."""
    wrist = rng.uniform(-0.02, 1.02, 2)
    size = rng.uniform(0.01, 0.12)
    facing = rng.uniform(-np.pi, np.pi)
    points = [wrist]
    for finger in range(5):
        angle = facing + (finger - 2) * 0.35 + rng.normal(0, 0.05)
        for joint in range(4):
            reach = size * (0.45 + 0.2 * joint) * (0.8 if finger == 0 else 1.0)
            points.append(wrist + reach * np.array([np.cos(angle), np.sin(angle)]) + rng.normal(0, size * 0.03, 2))
    xy = np.array(points)
    xy[rng.random(21) < missing] = np.nan
    return xy


def random_face(rng, missing=0.15):
    """A normalised face of 70 points: the 68 on an ellipse-like outline and features, two pupils; some missing."""
    centre = rng.uniform(0.0, 1.0, 2)
    size = rng.uniform(0.02, 0.15)
    t = rng.uniform(0, 2 * np.pi, 68)
    r = size * rng.uniform(0.2, 1.0, 68)
    xy = np.r_[centre + np.c_[np.cos(t) * r * 0.8, np.sin(t) * r],
               centre + size * np.array([[-0.3, -0.25], [0.3, -0.25]])]
    xy[rng.random(70) < missing] = np.nan
    return xy


def random_persons(rng, n):
    """``n`` people with a body, maybe hands, maybe a face (random_people's bodies)."""
    return [controlnet.Person(body, *(random_hand(rng) if rng.random() < 0.8 else None for _ in range(2)),
                              random_face(rng) if rng.random() < 0.8 else None) for body in random_people(rng, n)]


def test_every_mode_matches_the_reference_pixel_for_pixel(ref):
    """Body, hands and face, in each of ControlNet's OpenPose modes: pafpose's drawing is the reference's."""
    assert controlnet.MODES == {m: tuple(f.values()) for m, f in REFERENCE_MODES.items()}
    rng = np.random.default_rng(23)
    added = dict.fromkeys(REFERENCE_MODES, 0)
    for trial in range(60):
        w, h = (int(rng.integers(1, 16)) * 64, int(rng.integers(1, 16)) * 64) if trial % 2 else \
            (int(rng.integers(8, 1200)), int(rng.integers(8, 1200)))
        people = random_persons(rng, int(rng.integers(0, 4)))
        body_only = controlnet.draw(people, w, h)
        for mode in REFERENCE_MODES:
            ours = controlnet.draw(people, w, h, mode)
            assert ours.shape == (h, w, 3) and ours.dtype == np.uint8
            assert np.array_equal(ours[:, :, ::-1], reference_draw(ref, people, w, h, mode)), (trial, mode, w, h)
            added[mode] += not np.array_equal(ours, body_only)
    assert added["openpose"] == 0 and min(added[m] for m in REFERENCE_MODES if m != "openpose") > 30, added


def test_hands_and_faces_draw_only_points_found(ref):
    """A missing point is neither drawn nor joined to its neighbours; nothing lands at (0, 0)."""
    w, h = 640, 512
    rng = np.random.default_rng(5)
    hand = random_hand(rng, missing=0.0)
    hand = np.clip(hand, 0.2, 0.8)
    alone = np.where(np.arange(21)[:, None] == 8, hand, np.nan)  # the index finger's tip alone
    drawn = controlnet.draw([controlnet.Person(np.full((18, 2), np.nan), hand_left=alone)], w, h, "openpose_full")
    assert np.array_equal(drawn[:, :, ::-1], reference_draw(
        ref, [controlnet.Person(np.full((18, 2), np.nan), hand_left=alone)], w, h, "openpose_full"))
    x, y = int(alone[8, 0] * w), int(alone[8, 1] * h)
    ys, xs = np.nonzero(drawn.any(axis=2))
    assert {tuple(c) for c in drawn[ys, xs]} == {(255, 0, 0)}  # one blue disc (BGR), no bone
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (x - 4, x + 4, y - 4, y + 4)
    face = np.full((70, 2), np.nan)
    face[[3, 69]] = [[0.5, 0.5], [0.25, 0.75]]
    person = controlnet.Person(np.full((18, 2), np.nan), random_hand(rng, 0.5), None, face)
    drawn = controlnet.draw([person], w, h, "openpose_full")
    assert not drawn[:6, :6].any()  # no missing point drawn at the origin
    assert tuple(drawn[int(0.75 * h), int(0.25 * w)]) == (255, 255, 255) and tuple(drawn[256, 320]) == (255, 255, 255)
    faceonly = controlnet.draw([person], w, h, "openpose_faceonly")
    assert {tuple(c) for c in faceonly.reshape(-1, 3)} == {(0, 0, 0), (255, 255, 255)}  # the two face dots
    assert np.array_equal(faceonly[:, :, ::-1], reference_draw(ref, [person], w, h, "openpose_faceonly"))
    edge = controlnet.Person(np.full((18, 2), np.nan), face=np.where(np.arange(70)[:, None] == 0, [[0.0, 0.5]], np.nan))
    assert not controlnet.draw([edge], w, h, "openpose_face").any()  # column 0: ControlNet never draws it
    assert not reference_draw(ref, [edge], w, h, "openpose_face").any()


def whole_body_people(rng, width, height):
    """Poses in an image's pixels with hands and faces in Pose.parts: scores in [0, 1], some points below
    the threshold, some missing (NaN, NaN, 0), one person without parts, one whose hand has no point found."""
    out = Poses()
    for i in range(4):
        body = np.c_[rng.uniform(0, 1, (18, 2)) * [width, height], rng.uniform(0.05, 1, 18)]
        parts = {}
        if i != 2:
            for name, xy in (("hand_left", random_hand(rng)), ("hand_right", random_hand(rng)),
                             ("face", random_face(rng))):
                k = np.c_[xy * [width, height], rng.uniform(0.02, 1, len(xy))]
                k[np.isnan(k[:, 0]), 2] = 0.0
                parts[name] = k
        if i == 3:
            parts["hand_right"][:, 2] = 0.05  # every point below the threshold: no hand
        out.append(Pose(body, 0.9, "coco18", parts=parts))
    out.image_size = (width, height)
    return out


def test_whole_body_people_are_normalised_written_and_redrawn(ref):
    """Pose.parts -> persons -> image and JSON: hands and face normalised by the canvas as the body, only
    points at or above the threshold; the JSON read back as sd-webui-controlnet reads it redraws the image."""
    rng = np.random.default_rng(7)
    people = whole_body_people(rng, 896, 512)
    size = controlnet.sizes(896, 512, 512, 768)
    assert size.detect == (896, 512)
    for mode in REFERENCE_MODES:
        found = controlnet.persons(people, 896, 512, 0.1, mode)
        needed = controlnet.parts_needed(mode)
        for pose, person in zip(people, found, strict=True):
            for name in ("hand_left", "hand_right", "face"):
                xy = getattr(person, name)
                k = pose.parts.get(name)
                if name not in needed or k is None or not (k[:, 2] >= 0.1).any():
                    assert xy is None, (mode, name)
                    continue
                ok = (k[:, 2] >= 0.1) & np.isfinite(k[:, 0])
                assert np.array_equal(np.isfinite(xy[:, 0]), ok)
                assert np.array_equal(xy[ok], k[ok, :2] / [896, 512])
        doc = json.loads(json.dumps(controlnet.pose_json(found, size)))
        for person, written in zip(found, doc["people"], strict=True):
            for name, key in (("hand_left", "hand_left_keypoints_2d"), ("hand_right", "hand_right_keypoints_2d"),
                              ("face", "face_keypoints_2d")):
                xy = getattr(person, name)
                if xy is None:
                    assert written[key] is None
                    continue
                k = np.array(written[key]).reshape(-1, 3)
                assert len(k) == (70 if name == "face" else 21)
                missing = np.isnan(xy[:, 0])
                assert (k[missing] == 0).all() and (k[~missing, 2] == 1.0).all()  # absent: 0, 0, 0, never found
        back = decode_json(doc)
        for a, b in zip(found, back, strict=True):
            for name in ("body", "hand_left", "hand_right", "face"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or np.array_equal(x, y, equal_nan=True), (mode, name)
        image = controlnet.render(people, (896, 512), 512, 768, mode=mode)
        assert np.array_equal(image, controlnet.pose_image(back, size, mode))
        _, expected = reference_pose_image(ref, np.zeros((512, 896, 3), np.uint8), back, 512, 768, mode)
        assert np.array_equal(image, expected[:, :, ::-1]), mode
    full = controlnet.render(people, (896, 512), mode="openpose_full")
    assert not np.array_equal(full, controlnet.render(people, (896, 512), mode="openpose"))


def test_modes_and_parts_are_checked():
    assert controlnet.parts_needed("openpose") == set()
    assert controlnet.parts_needed("openpose_hand") == {"hand_left", "hand_right"}
    assert controlnet.parts_needed("openpose_face") == controlnet.parts_needed("openpose_faceonly") == {"face"}
    assert controlnet.parts_needed("openpose_full") == {"hand_left", "hand_right", "face"}
    for bad in ("dw_openpose_full", "OpenPose", None, 3):
        with pytest.raises(PafposeError, match="ControlNet mode must be one of openpose, openpose_hand"):
            controlnet.parts_needed(bad)
        with pytest.raises(PafposeError, match="ControlNet mode"):
            controlnet.draw([], 64, 64, bad)
    short = Pose(np.zeros((18, 3)), 0.5, "coco18", parts={"hand_left": np.zeros((20, 3))})
    with pytest.raises(PafposeError, match="'hand_left' has 20 points"):
        controlnet.persons([short], 64, 64, mode="openpose_hand")
    assert controlnet.persons([short], 64, 64)[0].hand_left is None  # a mode without hands never reads them


def test_the_writer_options_and_command_line_carry_the_mode(ref, tmp_path):
    from pafpose.cli import build_parser
    from pafpose.cli.openpose_flags import resolve
    from pafpose.fields import OPENPOSE_COCO18
    from pafpose.outputs import OutputOptions, Writer

    options = OutputOptions(out=tmp_path, json="none", controlnet=(256, 384), controlnet_mode="openpose_full")
    assert OutputOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    for bad, why in (({"controlnet": (256, 256), "controlnet_mode": "full"}, "controlnet mode must be one of"),
                     ({"controlnet_mode": "openpose_hand"}, "but controlnet is None")):
        with pytest.raises(PafposeError, match=why):
            OutputOptions(out=tmp_path, **bad)
    people = whole_body_people(np.random.default_rng(11), 640, 480)
    w = Writer(options, OPENPOSE_COCO18)
    w.image(people, np.zeros((480, 640, 3), np.uint8), "a")
    w.finish()
    doc = json.loads((tmp_path / "a_controlnet.json").read_text())
    image = cv2.imread(str(tmp_path / "a_controlnet.png"))
    size = controlnet.sizes(640, 480, 256, 384)
    assert sum(p["hand_left_keypoints_2d"] is not None for p in doc["people"]) == 3
    assert np.array_equal(image, controlnet.pose_image(decode_json(doc), size, "openpose_full"))
    _, expected = reference_pose_image(ref, np.zeros((480, 640, 3), np.uint8), decode_json(doc), 256, 384,
                                       "openpose_full")
    assert np.array_equal(image, expected[:, :, ::-1])

    parser = build_parser()
    args = parser.parse_args(["predict", "x.jpg", "--render", "controlnet", "--controlnet-mode", "openpose_face"])
    assert resolve(args).controlnet_mode == "openpose_face"
    assert resolve(parser.parse_args(["predict", "x.jpg", "--render", "controlnet"])).controlnet_mode == "openpose"
    with pytest.raises(PafposeError, match="--controlnet-mode is for --render controlnet"):
        resolve(parser.parse_args(["predict", "x.jpg", "--controlnet-mode", "openpose_full"]))


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
    missing = sum(int(np.isnan(p.body[:, 0]).sum()) for p in people)
    assert missing > 0, "every keypoint found: this photo no longer tests missing ones"
    assert np.array_equal(result.image, controlnet.pose_image(people, result.sizes))
    for p, xy in zip(result.poses, (p.body for p in people), strict=True):  # the people normalised by the canvas
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
                      (["--render", "controlnet", "--controlnet-mode", "dw_openpose_full"], "invalid choice"),
                      (["--controlnet-mode", "openpose_full"], "is for --render controlnet"),
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


def test_an_image_whose_canvas_is_too_large_fails_alone(env, dance_frame, tmp_path):
    """One very wide image and one such video among others: each reported in one line and skipped, the
    others written, exit 1."""
    exe = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_wide.png"), np.full((100, 5000, 3), 90, np.uint8))  # 51200 x 1024 at 1024
    cv2.imwrite(str(folder / "b_dance.png"), dance_frame)
    video = cv2.VideoWriter(str(folder / "c_wide.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (5000, 100))
    for _ in range(3):  # a video of such frames fails alone too, before its first frame
        video.write(np.full((100, 5000, 3), 90, np.uint8))
    video.release()
    r = subprocess.run([exe, "predict", str(folder), "--render", "controlnet", "--detect-resolution", "128",
                        "--image-resolution", "1024", "--out", str(out)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and "Traceback" not in r.stderr, r.stderr
    assert "a_wide.png" in errors[0] and "Mpixel" in errors[0] and "c_wide.avi" in errors[1] and "Mpixel" in errors[1]
    assert (out / "b_dance_controlnet.png").exists() and (out / "b_dance_keypoints.json").exists()
    assert not list(out.glob("a_wide*")) and not list(out.glob("c_wide*"))  # an input's outputs, or none


@pytest.mark.parametrize("far", [np.inf, -np.inf, 1e30, 3e9, -3e9])
def test_a_point_at_infinity_or_beyond_any_canvas_is_drawn_as_missing(far):
    """No OpenCV error: a point OpenCV can't place (infinite, or billions of pixels away) is missing, as NaN is."""
    body = np.c_[np.tile([[120.0, 90.0], [150.0, 140.0]], (9, 1)), np.full(18, 0.9)]
    hand = np.c_[np.full((21, 2), 100.0) + np.arange(21)[:, None], np.full(21, 0.9)]
    face = np.c_[np.full((70, 2), 80.0) + np.arange(70)[:, None], np.full(70, 0.9)]
    images = []
    for value in (far, np.nan):
        b, hd, f = body.copy(), hand.copy(), face.copy()
        b[1, 1] = hd[3, 0] = f[3, 0] = value
        person = Pose(b, 0.9, "coco18", parts={"hand_left": hd, "face": f})
        images.append(controlnet.render([person], (320, 240), mode="openpose_full"))
        xy = b[:, :2] / 320.0
        images.append(controlnet.draw([xy], 320, 240))
        images.append(controlnet.pose_image(controlnet.persons([person], 320, 240, mode="openpose_full"),
                                            controlnet.sizes(320, 240), "openpose_full"))
    assert all(np.array_equal(a, b) for a, b in zip(images[:3], images[3:], strict=True))
    assert images[0].any()
