"""OpenPose's options and outputs in `pafpose predict`, on real photos and a real video.

Each flag is checked for what it does with OpenPose's meaning (CMU OpenPose's
include/openpose/flags.hpp and doc/ are the reference): counts, coordinate scales, frame
selection, heatmap files channel by channel against the Estimator's fields, part
candidates, BODY_25 files by name, and OpenPose's own spellings. The JSON is read by
pose-format (a maintained third-party OpenPose reader, from PyPI) as well as field by field.
The command runs in this process (`pafpose.cli.main`), so the model loads in a fraction of
a second per run.
"""

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from pafpose.cli import main
from pafpose.cli.openpose_flags import IGNORED, NOT_OFFERED, TAKEN, prepare_argv
from pafpose.errors import PafposeError

OPENPOSE_PERSON_KEYS = ["person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                        "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
                        "hand_right_keypoints_3d"]


@pytest.fixture(scope="module")
def shared_env(shared):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    mp.setenv("PAFPOSE_OFFLINE", "1")
    mp.delenv("DISPLAY", raising=False)
    yield shared
    mp.undo()


@pytest.fixture(scope="module")
def photos(shared_env):
    return shared_env / "images"


@pytest.fixture(scope="module")
def street(shared_env):
    return shared_env / "videos" / "street.avi"


@pytest.fixture(scope="module")
def estimator(shared_env):
    from pafpose.predict import Estimator

    return Estimator(device="cpu")


def predict(capsys, *args):
    """`pafpose predict ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        rc = main(["predict", *map(str, args)])
    except SystemExit as err:  # argparse's errors
        rc = err.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def people(path):
    """(N, K, 3) keypoints of an OpenPose JSON file, and the document."""
    doc = json.loads(path.read_text())
    return [np.array(p["pose_keypoints_2d"]).reshape(-1, 3) for p in doc["people"]], doc


def check_openpose_document(doc, num_keypoints, candidates=False):
    """OpenPose 1.3's layout, field by field (OpenPose's doc/02_output.md, peopleJsonSaver)."""
    assert list(doc) == ["version", "people"] + (["part_candidates"] if candidates else [])
    assert doc["version"] == 1.3
    for person in doc["people"]:
        assert list(person)[: len(OPENPOSE_PERSON_KEYS)] == OPENPOSE_PERSON_KEYS
        assert set(person) - set(OPENPOSE_PERSON_KEYS) <= {"score"}
        assert len(person["person_id"]) == 1 and isinstance(person["person_id"][0], int)
        kps = person["pose_keypoints_2d"]
        assert len(kps) == 3 * num_keypoints and all(isinstance(v, (int, float)) and math.isfinite(v) for v in kps)
        for key, count in (("face_keypoints_2d", 70), ("hand_left_keypoints_2d", 21), ("hand_right_keypoints_2d", 21)):
            assert len(person[key]) in (0, 3 * count)  # empty, or every point (0, 0, 0 when not found) as OpenPose
        assert all(person[k] == [] for k in OPENPOSE_PERSON_KEYS[5:])  # no 3-D
    if candidates:
        block = doc["part_candidates"]
        assert isinstance(block, list) and len(block) == 1
        assert list(block[0]) == [str(i) for i in range(num_keypoints)]
        assert all(len(v) % 3 == 0 for v in block[0].values())


def openpose_rank(kps, score):
    """OpenPose's --number_people_max ranking, from the file: score x sqrt(area of keypoints > 0.05)."""
    ok = kps[:, 2] > 0.05
    x0, y0 = kps[ok, :2].min(axis=0)
    x1, y1 = kps[ok, :2].max(axis=0)
    return score * math.sqrt((x1 - x0) * (y1 - y0))


# ------------------------------------------------------------------------------------ counts

def test_number_people_max_keeps_the_people_openpose_would(capsys, photos, tmp_path):
    rc, out, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "all", "--save-images")
    assert rc == 0
    everyone, doc = people(tmp_path / "all" / "p3_dance_keypoints.json")
    assert len(everyone) == 3
    ranks = [openpose_rank(k, p["score"]) for k, p in zip(everyone, doc["people"], strict=True)]
    for n in (1, 2):
        rc, out, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / f"top{n}", "--number-people-max", n)
        assert rc == 0 and f"1 image: {n} people found" in out
        kept, _ = people(tmp_path / f"top{n}" / "p3_dance_keypoints.json")
        best = sorted(np.argsort(ranks)[::-1][:n])  # the n best, in the file's order
        assert len(kept) == n
        for k, i in zip(kept, best, strict=True):
            np.testing.assert_allclose(k, everyone[i])
    # OpenPose's spelling, and more than there are: everyone
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "many", "--number_people_max", 10)
    assert rc == 0 and len(people(tmp_path / "many" / "p3_dance_keypoints.json")[0]) == 3


def test_top_people_breaks_ties_as_openpose():
    from pafpose.openpose import top_people
    from pafpose.pose import Pose

    def person(score):
        kps = np.array([[0.0, 0.0, 0.9], [10.0, 10.0, 0.9]] + [[np.nan, np.nan, 0.0]] * 16)
        return Pose(kps, score, "coco18")

    crowd = [person(s) for s in (0.0, 0.5, 0.5, 0.5, 1.0)]  # OpenPose's own example in keepTopNPeople.cpp
    assert [p.score for p in top_people(crowd, 2)] == [0.5, 1.0]
    assert top_people(crowd, -1) == crowd and top_people(crowd, None) == crowd
    with pytest.raises(PafposeError):
        top_people(crowd, 0)


# ------------------------------------------------------------------------------------ scales

def test_keypoint_scales(capsys, photos, tmp_path, estimator):
    image = cv2.imread(str(photos / "ski.jpg"))
    h, w = image.shape[:2]
    found = {}
    for mode in range(5):
        rc, _, _ = predict(capsys, photos / "ski.jpg", "--out", tmp_path / str(mode), "--keypoint-scale", mode)
        assert rc == 0
        found[mode], doc = people(tmp_path / str(mode) / "ski_keypoints.json")
        check_openpose_document(doc, 18)
    src = found[0]
    assert src and all(len(k) == len(src[0]) for k in src)
    g = estimator.geometry(image.shape)
    for k0, k1, k2, k3, k4 in zip(*(found[m] for m in range(5)), strict=True):
        ok = k0[:, 2] > 0
        np.testing.assert_allclose(k0[:, 2], k3[:, 2], atol=5e-4)  # scores: more decimals in [0, 1]
        np.testing.assert_allclose(k2, k0)  # the drawn image is the photo itself
        np.testing.assert_allclose(k1[ok, :2], (k0[ok, :2] + 0.5) * g.fx - 0.5, atol=2e-3)  # network input pixels
        assert k1[ok, 1].max() < estimator.height
        np.testing.assert_allclose(k3[ok, :2], k0[ok, :2] / [w - 1, h - 1], atol=2e-6)
        np.testing.assert_allclose(k4[ok, :2], k0[ok, :2] * 2 / [w - 1, h - 1] - 1, atol=2e-6)
        assert (k3[ok, :2] >= 0).all() and (k3[ok, :2] <= 1).all()
        # a keypoint not found is 0, 0, 0, and -1, -1, 0 in [-1, 1] as OpenPose scales every entry
        assert (k0[~ok] == 0).all() and (k3[~ok] == 0).all() and (k4[~ok] == [-1, -1, 0]).all()


def test_keypoint_scale_two_is_the_drawn_pictures_pixels():
    from pafpose.coords import Geometry
    from pafpose.openpose import KeypointScale

    # a JPEG decoded at half size: drawn at 1000 x 500 for a 2000 x 1000 file
    s = KeypointScale(2, (2000, 1000), Geometry(0.5, 0.5, 8), output=(0.5, 0.5))
    np.testing.assert_allclose(s.points(np.array([[0.0, 0.0, 0.7], [1999.0, 999.0, 0.5]])),
                               [[-0.25, -0.25, 0.7], [999.25, 499.25, 0.5]])
    with pytest.raises(PafposeError, match="geometry"):
        KeypointScale(1, (10, 10))
    with pytest.raises(PafposeError):
        KeypointScale(5, (10, 10))


# ------------------------------------------------------------------------------------ frames

def test_frame_selection_on_a_video(capsys, street, tmp_path, estimator):
    rc, out, _ = predict(capsys, street, "--out", tmp_path / "out", "--no-track", "--frame-first", 2,
                         "--frame-step", 3, "--frame-last", 10, "--part-candidates")
    assert rc == 0, out
    assert "3 video frames" in out
    written = sorted(p.name for p in (tmp_path / "out").glob("*_keypoints.json"))
    assert written == [f"street_{i:012d}_keypoints.json" for i in (2, 5, 8)]
    for name in written:  # each frame's own candidates (the fields come along with untracked frames)
        _, doc = people(tmp_path / "out" / name)
        check_openpose_document(doc, 18, candidates=True)
    cap = cv2.VideoCapture(str(street))
    for _ in range(6):
        ok, frame = cap.read()
    cap.release()
    assert ok  # frame 5, which the file named _000000000005 must hold
    direct = estimator.predict(frame)
    filed, _ = people(tmp_path / "out" / "street_000000000005_keypoints.json")
    assert len(filed) == len(direct) > 0
    for k, p in zip(filed, direct, strict=True):
        ok = np.isfinite(p.keypoints[:, 0])
        np.testing.assert_allclose(k[ok], p.keypoints[ok], atol=2e-3)


def test_frame_selection_on_a_folder_of_images(capsys, photos, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, name in enumerate(("p1.jpg", "ski.jpg", "p2.jpg", "golf.jpg", "cat.jpg")):
        shutil.copy(photos / name, folder / f"{i:03d}.jpg")
    rc, out, _ = predict(capsys, "--image_dir", folder, "--write_json", tmp_path / "json", "--frame_first", 1,
                         "--frame_step", 2, "--display", 0)
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "json").iterdir()) == ["001_keypoints.json", "003_keypoints.json"]
    assert "2 images" in out


def test_frame_range():
    from pafpose.video import FrameRange

    r = FrameRange(3, 4, 20)
    assert [i for i in range(30) if i in r] == [3, 7, 11, 15, 19] and r.count(30) == 5 and r.count(10) == 2
    assert FrameRange().everything and FrameRange(10).count(5) == 0 and r.done(21) and not r.done(20)
    for bad in ((5, 1, 2), (-1, 1, None), (0, 0, None)):
        with pytest.raises(PafposeError):
            FrameRange(*bad)


# ------------------------------------------------------------------------------------ heatmaps

def test_heatmap_files_channel_by_channel(capsys, photos, tmp_path, estimator):
    from pafpose.openpose import heatmap_channels, read_float_array

    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "png", "--write-heatmaps", "--json", "none")
    assert rc == 0
    png = cv2.imread(str(tmp_path / "png" / "p3_dance_pose_heatmaps.png"), cv2.IMREAD_UNCHANGED)
    image = cv2.imread(str(photos / "p3_dance.png"))
    hm, paf, g = estimator.fields([image])[0]
    hm, paf = hm.numpy(), paf.numpy()
    names = heatmap_channels(estimator.spec)
    spec = estimator.spec
    assert len(names) == 18 + 1 + 38 and names[18] == "background"
    gh, gw = hm.shape[1:]
    H, W = gh * spec.stride, gw * spec.stride  # noqa: N806 (the network input, padding included)
    assert (H, W) == g.padded_size(image.shape) and H == 368
    assert png.dtype == np.uint8 and png.shape == (H, len(names) * W)  # concatenated by columns
    expected = [np.clip(hm[i], 0, 1) * 255 for i in range(19)]  # parts, background: [0, 1] -> [0, 255]
    expected += [np.clip(paf[c], -1, 1) * 128.5 + 128.5 for c in range(38)]  # PAFs: [-1, 1] -> [0, 255]
    for c, name in enumerate(names):
        block = cv2.resize(png[:, c * W : (c + 1) * W].astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
        errors = [np.abs(block - e).mean() for e in expected]
        assert errors[c] < 4, name
        if np.abs(expected[c] - np.median(expected[c])).max() > 40:  # a channel with something in it
            assert int(np.argmin(errors)) == c, name  # is this channel, not another
    # the PAF channels are the network's, which heatmap_channels names: neck->right_hip is channels 0 and 1 here
    assert names[19:21] == ["neck-right_hip x", "neck-right_hip y"]
    i = spec.limbs.index(("neck", "right_hip"))
    assert spec.paf_channels[i] == (0, 1)

    # float: OpenPose's raw format, the same maps unrounded (scale 3) or as the PNG's numbers (scale 2)
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "float", "--write-heatmaps",
                       "--write-heatmaps-format", "float", "--json", "none")
    assert rc == 0
    raw = read_float_array(tmp_path / "float" / "p3_dance_pose_heatmaps.float")
    assert raw.shape == (57, H, W)
    np.testing.assert_array_equal(np.clip(raw, 0, 255).astype(np.uint8), png.reshape(H, 57, W).transpose(1, 0, 2))
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--write_heatmaps", tmp_path / "raw", "--heatmaps_add_PAFs",
                       "--heatmaps_scale", 3, "--write_heatmaps_format", "float", "--out", tmp_path / "json")
    assert rc == 0
    raw = read_float_array(tmp_path / "raw" / "p3_dance_pose_heatmaps.float")
    assert raw.shape == (38, H, W)  # the PAFs only
    small = np.stack([cv2.resize(m, (gw, gh), interpolation=cv2.INTER_AREA) for m in raw])
    assert np.abs(small - paf).mean() < 0.01 and raw.min() < -0.3  # unscaled: negative PAF components stay
    assert (tmp_path / "json" / "p3_dance_keypoints.json").exists()  # the JSON goes to --out


def test_net_resolution_sets_the_network_input(capsys, photos, tmp_path):
    from pafpose.openpose import net_resolution_options, parse_net_resolution

    assert parse_net_resolution("-1x368") == (None, 368) and parse_net_resolution("656X368") == (656, 368)
    assert net_resolution_options(None, 256) == {"height": 256}
    assert net_resolution_options(320, None) == {"height": 2048, "max_side": 320}
    for bad in ("-1x-1", "368", "0x368", "656x99999", "axb"):
        with pytest.raises(PafposeError):
            parse_net_resolution(bad)
    # 1280 x 720 in 320 x free: 320 x 180, padded to the stride (OpenPose pads to its fixed size)
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "a", "--net_resolution", "320x-1",
                       "--write-heatmaps", "--heatmaps-add-parts", "--keypoint-scale", 1)
    assert rc == 0
    png = cv2.imread(str(tmp_path / "a" / "p3_dance_pose_heatmaps.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (184, 18 * 320)
    kps, _ = people(tmp_path / "a" / "p3_dance_keypoints.json")
    found = np.concatenate([k[k[:, 2] > 0] for k in kps])
    assert found[:, 0].max() < 320 and found[:, 1].max() < 180 and len(kps) == 3
    # fitted inside W x H, as OpenPose does: 1280 x 720 in 320 x 368 is again 320 x 180
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "b", "--net-resolution", "320x368",
                       "--write-heatmaps", "--heatmaps-add-bkg")
    assert rc == 0
    assert cv2.imread(str(tmp_path / "b" / "p3_dance_pose_heatmaps.png"), cv2.IMREAD_UNCHANGED).shape == (184, 320)
    rc, _, err = predict(capsys, photos / "p3_dance.png", "--net-resolution", "-1x256", "--height", 256)
    assert rc == 2 and "give one" in err


# ------------------------------------------------------------------------------------ candidates, layouts

def test_part_candidates_hold_every_keypoint_found(capsys, photos, tmp_path):
    rc, _, _ = predict(capsys, photos / "apink1.jpg", "--out", tmp_path / "c", "--part-candidates")
    assert rc == 0
    kps, doc = people(tmp_path / "c" / "apink1_keypoints.json")
    check_openpose_document(doc, 18, candidates=True)
    block = {int(k): np.array(v).reshape(-1, 3) for k, v in doc["part_candidates"][0].items()}
    assert sum(len(v) for v in block.values()) >= sum(int((k[:, 2] > 0).sum()) for k in kps) > 0
    for k in kps:
        for part in np.flatnonzero(k[:, 2] > 0):
            assert np.abs(block[part] - k[part]).max(axis=1).min() < 2e-3  # the decoder's own peaks
    # in BODY_25's layout: by name; mid-hip and the feet have no candidates of their own
    rc, _, _ = predict(capsys, photos / "apink1.jpg", "--out", tmp_path / "b", "--part_candidates", "--keypoints",
                       "body25")
    assert rc == 0
    _, doc25 = people(tmp_path / "b" / "apink1_keypoints.json")
    check_openpose_document(doc25, 25, candidates=True)
    b25 = doc25["part_candidates"][0]
    assert b25["8"] == [] and all(b25[str(i)] == [] for i in range(19, 25))
    assert b25["9"] == doc["part_candidates"][0]["8"] and b25["12"] == doc["part_candidates"][0]["11"]  # the hips


def test_keypoints_body25_round_trip_by_name(capsys, photos, tmp_path):
    from pafpose.formats import poses_from_openpose
    from pafpose.skeleton import BODY25, COCO18

    for layout in ("coco18", "body25", "coco17"):
        rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / layout, "--keypoints", layout)
        assert rc == 0
    docs = {layout: json.loads((tmp_path / layout / "p3_dance_keypoints.json").read_text())
            for layout in ("coco18", "body25", "coco17")}
    check_openpose_document(docs["body25"], 25)
    check_openpose_document(docs["coco17"], 17)
    coco = poses_from_openpose(docs["coco18"], "coco18")
    body = poses_from_openpose(docs["body25"], "body25")
    assert len(coco) == len(body) == 3
    for n, (c, b) in enumerate(zip(coco, body, strict=True)):
        back = b.convert("coco18")  # BODY_25 -> COCO-18 by name: nothing lost
        np.testing.assert_allclose(back.keypoints, c.keypoints, equal_nan=True)
        assert back.score == c.score
        k = b.keypoints
        lh, rh = COCO18.index("left_hip"), COCO18.index("right_hip")
        if c.present[lh] and c.present[rh]:  # MidHip: the mid-point of the hips, at the lower score
            mid = k[BODY25.index("mid_hip")]
            np.testing.assert_allclose(mid[:2], (c.keypoints[lh, :2] + c.keypoints[rh, :2]) / 2, atol=1e-3)
            assert mid[2] == pytest.approx(min(c.keypoints[lh, 2], c.keypoints[rh, 2]), abs=1e-3)
        flat = np.array(docs["body25"]["people"][n]["pose_keypoints_2d"]).reshape(25, 3)
        assert (flat[[20, 23]] == 0).all()  # the small toes: never found, written as OpenPose's absent 0, 0, 0
        for foot, ankle in (([19, 21], 14), ([22, 24], 11)):  # heels and big toes (issue 23): by their ankle
            found = flat[foot, 2] > 0
            assert (flat[foot][~found] == 0).all()
            leg = np.hypot(*(flat[ankle, :2] - flat[ankle - 1, :2]))  # knee -> ankle
            assert (np.hypot(*(flat[foot][found, :2] - flat[ankle, :2]).T) < 0.6 * leg).all()
    feet = np.array([d["pose_keypoints_2d"] for d in docs["body25"]["people"]]).reshape(-1, 25, 3)[:, [19, 21, 22, 24]]
    assert (feet[..., 2] > 0).sum() >= 8  # the dancers' feet are in view
    for c, c17 in zip(coco, poses_from_openpose(docs["coco17"]), strict=True):  # the layout read from the count
        assert c17.skeleton.name == "coco17"
        np.testing.assert_allclose(c17.convert("coco18").keypoints[[0, *range(2, 18)]],
                                   c.keypoints[[0, *range(2, 18)]], equal_nan=True)


def test_a_third_party_openpose_reader_reads_the_body25_files(capsys, street, tmp_path):
    """pose-format (sign-language-processing, PyPI) reads an OpenPose folder of frames in
    BODY_25 by OpenPose's file names: the frame numbers and the keypoints by name, the feet,
    the face and the hands."""
    from pose_format.utils.openpose import BODY_POINTS, load_openpose_directory

    out = tmp_path / "json"
    rc, _, _ = predict(capsys, street, "--out", out, "--keypoints", "body25", "--frame-first", 1, "--frame-last", 3,
                       "--height", 256, "--write_heatmaps", tmp_path / "maps", "--heatmaps_add_bkg", "--hand", "--face")
    assert rc == 0
    maps = sorted(p.name for p in (tmp_path / "maps").iterdir())  # tracked frames keep their fields too
    assert maps == [f"street_{i:012d}_pose_heatmaps.png" for i in (1, 2, 3)]
    assert cv2.imread(str(tmp_path / "maps" / maps[0]), cv2.IMREAD_UNCHANGED).shape == (256, 456)  # 1280x720 at 256
    pose = load_openpose_directory(str(out), fps=50, width=1280, height=720)
    data, conf = pose.body.data, pose.body.confidence
    assert data.shape[0] == 4 and data.shape[2] == 25 + 70 + 21 + 21  # frames 0..3 (0 not written), OpenPose's parts
    assert not conf[0].any()
    feet = 0
    for frame in (1, 2, 3):
        ours, doc = people(out / f"street_{frame:012d}_keypoints.json")
        check_openpose_document(doc, 25)
        assert ours
        for n, k in enumerate(ours):
            for name in ("Nose", "RHip", "LAnkle", "MidHip"):
                i = BODY_POINTS.index(name)
                assert conf[frame, n, i] == pytest.approx(k[i, 2], abs=1e-6)
                if k[i, 2] > 0:
                    np.testing.assert_allclose(np.asarray(data[frame, n, i]), k[i, :2], atol=1e-3)
            for name in ("LBigToe", "RHeel", "LSmallToe"):  # the feet (issue 23), the small toes always absent
                i = BODY_POINTS.index(name)
                assert conf[frame, n, i] == pytest.approx(k[i, 2], abs=1e-6)
            assert not conf[frame, n, BODY_POINTS.index("LSmallToe")]
            # the face and hands, in OpenPose's arrays, read back where pose-format puts them
            person = doc["people"][n]
            for key, start, count in (("face_keypoints_2d", 25, 70), ("hand_left_keypoints_2d", 95, 21),
                                      ("hand_right_keypoints_2d", 116, 21)):
                ours_part = np.array(person[key]).reshape(count, 3)
                np.testing.assert_allclose(conf[frame, n, start:start + count], ours_part[:, 2], atol=1e-6)
                seen = ours_part[:, 2] > 0
                np.testing.assert_allclose(np.asarray(data[frame, n, start:start + count])[seen], ours_part[seen, :2],
                                           atol=1e-3)
            feet += int(conf[frame, n, BODY_POINTS.index("RHeel")] > 0)
    assert feet  # the walkers' feet are found (their faces, ~15 pixels, are too small for the face network)


# ------------------------------------------------------------------------------------ drawing, video

def test_disable_blending_and_render_pose(capsys, photos, tmp_path):
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--out", tmp_path / "black", "--save-images",
                       "--disable-blending", "--json", "none")
    assert rc == 0
    drawn = cv2.imread(str(tmp_path / "black" / "p3_dance_rendered.png"))
    black = (drawn == 0).all(axis=2)
    assert 0.9 < black.mean() < 1.0  # skeletons on black
    rc, _, _ = predict(capsys, photos / "p3_dance.png", "--write_images", tmp_path / "plain", "--render_pose", 0)
    assert rc == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "plain" / "p3_dance_rendered.png")),
                                  cv2.imread(str(photos / "p3_dance.png")))  # nothing drawn


def test_write_video_of_images_and_frames(capsys, photos, street, tmp_path):
    rc, _, err = predict(capsys, photos / "ski.jpg", photos / "golf.jpg", "--write-video", tmp_path / "a.avi")
    assert rc == 2 and "--write-video-fps" in err  # images have no frame rate (OpenPose says the same)
    rc, _, _ = predict(capsys, photos / "ski.jpg", photos / "golf.jpg", photos / "p1.jpg", "--write_video",
                       tmp_path / "a.avi", "--write_video_fps", 5, "--json", "none", "--height", 192)
    assert rc == 0
    cap = cv2.VideoCapture(str(tmp_path / "a.avi"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    rc, _, _ = predict(capsys, street, "--write-video", tmp_path / "b.mp4", "--frame-last", 2, "--json", "none",
                       "--height", 192)
    assert rc == 0
    cap = cv2.VideoCapture(str(tmp_path / "b.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(50)  # the source's frame rate
    cap.release()


# ------------------------------------------------------------------------------------ OpenPose's spellings

def test_an_openpose_script_runs(capsys, photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "p3_dance.png", folder)
    shutil.copy(photos / "ski.jpg", folder)
    rc, _, err = predict(capsys, "--image_dir", folder, "--write_images", "rendered", "--display", "0",
                           "--net_resolution", "-1x256", "--disable_blending=false", "--hand=false",
                           "--logging_level", 3, "-number_people_max", 2)
    assert rc == 0, err
    assert "--logging_level ignored" in err
    assert sorted(p.name for p in (tmp_path / "rendered").iterdir()) == ["p3_dance_rendered.png", "ski_rendered.jpg"]
    assert not (tmp_path / "pafpose-out").exists()  # OpenPose writes only what it is asked to: no JSON here
    rc, _, _ = predict(capsys, "--image_dir", folder, "--write_json", "json", "--model_pose", "COCO")
    assert rc == 0
    kps, doc = people(tmp_path / "json" / "p3_dance_keypoints.json")
    check_openpose_document(doc, 18)
    assert len(kps) == 3


@pytest.mark.parametrize("flag, says", [
    (["--hand", "--hand_net_resolution", "320x320"], "at its own 224 x 224 input"),
    (["--face", "--face_net_resolution", "320x320"], "at its own 192 x 192 input"),
    (["--hand_detector", "3"], "hands come from the body (0/body) or MediaPipe's palm detector"),
    (["--face_detector", "2"], "rectangles given by the user"),
    (["--3d"], "2-D only"),
    (["--model_pose", "BODY_25B"], "pafpose has no BODY_25B model"),
    (["--model_pose", "BODY_25", "--keypoints", "coco17"], "disagree"),
    (["--write_coco_json", "x.json"], "--json coco"),
    (["--tracking", "1"], "tracked by default"),
    (["--disable_blending=maybe"], "disable_blending"),
])
def test_flags_pafpose_cannot_honour_are_one_line_errors(capsys, photos, flag, says):
    rc, _, err = predict(capsys, photos / "ski.jpg", *flag)
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1


def test_prepare_argv_reads_gflags_forms():
    argv = ["predict", "-image_dir", "x", "--disable_blending=true", "--part_candidates=false", "--nohand",
            "--net_resolution", "-1x368", "--frame_last", "-1", "photo.jpg", "--", "-face"]
    assert prepare_argv(argv) == ["predict", "--image_dir", "x", "--disable_blending", "--net_resolution=-1x368",
                                  "--frame_last", "-1", "photo.jpg", "--", "-face"]


def test_the_migration_page_names_every_openpose_flag():
    from conftest import REPO

    section = (REPO / "docs" / "openpose.md").read_text()
    for flag in [*TAKEN, *NOT_OFFERED, *IGNORED]:
        assert f"`--{flag}" in section, flag


def test_feet_make_body25_the_json_layout_unless_told(capsys, photos, tmp_path):
    """Issue 23: the heels and big toes need BODY_25's places: --feet writes BODY_25, --keypoints still rules."""
    for extra, count in (([], 25), (["--keypoints", "coco18"], 18)):
        out = tmp_path / str(count)
        rc, _, err = predict(capsys, photos / "p3_dance.png", "--feet", "--height", 256, "--out", out, *extra)
        assert rc == 0, err
        kps, doc = people(out / "p3_dance_keypoints.json")
        check_openpose_document(doc, count)
        if count == 25:
            assert sum(k[[19, 21, 22, 24], 2].astype(bool).sum() for k in kps) >= 6  # the dancers' heels and toes


# ------------------------------------------------------------------- issue 24: contradictions
@pytest.mark.parametrize("flags", [("--track", "--no-track"), ("--online", "--no-track")], ids=" ".join)
def test_contradictory_tracking_flags_are_one_line_errors(capsys, photos, tmp_path, flags):
    rc, _, err = predict(capsys, photos / "ski.jpg", "--out", tmp_path / "out", *flags)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert all(f in err for f in flags) and not (tmp_path / "out").exists()


def test_frame_first_past_a_folders_end_says_so(capsys, photos, tmp_path):
    """An empty selection is OpenPose's frame range given wrong: exit 2, nothing loaded or written."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("p1.jpg", "ski.jpg", "p2.jpg"):
        shutil.copy(photos / name, folder / name)
    rc, _, err = predict(capsys, folder, "--out", tmp_path / "out", "--frame-first", 5)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--frame-first 5" in err and "3 images" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", ["0.0004", "0.00001"])
def test_write_video_fps_the_writer_cannot_honour_is_refused(capsys, photos, tmp_path, fps):
    rc, _, err = predict(capsys, photos / "ski.jpg", "--out", tmp_path / "out", "--write-video",
                         tmp_path / "v.mp4", "--write-video-fps", fps)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--write-video-fps" in err and fps in err


def test_outputs_under_the_source_folder_are_not_inputs_next_time(capsys, photos, tmp_path):
    """Issue 24: ControlNet pictures and heatmap files written under an --out inside the source
    folder were the next run's inputs (heatmaps of heatmaps, nesting deeper each run)."""
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    shutil.copy(photos / "ski.jpg", src / "ski.jpg")
    shutil.copy(photos / "p1.jpg", src / "sub" / "p1.jpg")
    flags = ("--render", "controlnet", "--write-heatmaps", "--save-images")
    for run in range(2):
        rc, out, _ = predict(capsys, src, "--out", src / "out", *flags)
        assert rc == 0 and "2 images" in out, (run, out)
    # an --out named by the folder's own name (the source folder itself) keeps the photos as inputs
    rc, out, _ = predict(capsys, src, "--out", src, *flags)
    assert rc == 0 and "2 images" in out, out
    rc, out, _ = predict(capsys, src, "--out", src, *flags)
    assert rc == 0 and "2 images" in out, out
    assert not list(src.rglob("*_controlnet_*")) and not list(src.rglob("*_pose_heatmaps_*"))
