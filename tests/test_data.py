"""Training data: augmentation keeps keypoints on their body parts, fields match the
encoder's, masks cover crowds, bad data is skipped and counted."""

import json

import cv2
import numpy as np
import pytest

from pafpose import COCO17, COCO18, OPENPOSE_COCO18, Encoder, PafposeError
from pafpose.data import AugmentConfig, CocoKeypoints, augment, collate
from pafpose.decoder import DecoderConfig, find_peaks
from pafpose.models import InputConfig

SPEC = OPENPOSE_COCO18
INPUT = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=0.0)
# a standing person in a 320 x 240 image, COCO-17 order
PERSON17 = np.array([
    [160, 40], [166, 34], [154, 34], [172, 38], [148, 38], [180, 70], [140, 70], [188, 105], [132, 105],
    [192, 140], [128, 140], [172, 145], [148, 145], [174, 185], [146, 185], [176, 225], [144, 225]], float)
CROWD = [250, 20, 300, 20, 300, 100, 250, 100]  # x, y polygon of a crowd region


def colour(i):
    """A distinct BGR colour per COCO-17 keypoint."""
    return np.array([(37 * i + 40) % 256, (91 * i + 60) % 256, (53 * i + 200) % 256], np.uint8)


def painted_image():
    img = np.full((240, 320, 3), 90, np.uint8)
    for i, (x, y) in enumerate(PERSON17.astype(int)):
        img[y - 2 : y + 3, x - 2 : x + 3] = colour(i)
    img[20:101, 250:301] = (0, 255, 0)
    return img


def write_dataset(tmp_path, extra_images=()):
    cv2.imwrite(str(tmp_path / "a.png"), painted_image())
    kps = np.c_[PERSON17, np.full(17, 2.0)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
         "keypoints": kps.ravel().tolist(), "bbox": [128, 34, 64, 191], "area": 64 * 191.0},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "keypoints": [0] * 51,
         "bbox": [250, 20, 50, 80], "area": 4000.0, "segmentation": [CROWD]},
    ]
    images = [{"id": 1, "file_name": "a.png", "width": 320, "height": 240}]
    for i, name in enumerate(extra_images, start=2):
        images.append({"id": i, "file_name": name, "width": 320, "height": 240})
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return path


def people18():
    kps = np.c_[PERSON17, np.full(17, 2.0)]
    from pafpose.skeleton import convert_keypoints

    return convert_keypoints(kps[None], COCO17, COCO18)


@pytest.mark.parametrize("flip", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_augmentation_keeps_keypoints_on_their_body_parts(flip, seed):
    img = painted_image()
    cfg = AugmentConfig(flip=flip, brightness=0, contrast=0, saturation=0, size=256)
    anchors = np.array([[160.0, 130.0, 191.0]])
    crop, out, _ = augment(img, people18(), anchors, None, COCO18, np.random.default_rng(seed), cfg)
    assert crop.shape == (256, 256, 3)
    source = COCO18.flip_permutation if flip else np.arange(18)
    checked = 0
    for k, name in enumerate(COCO18.keypoints):
        if name == "neck":
            continue
        x, y = np.round(out[0, k, :2]).astype(int)
        if not (2 <= x < 254 and 2 <= y < 254):
            continue
        painted = COCO17.index(COCO18.keypoints[source[k]])
        assert np.abs(crop[y, x].astype(int) - colour(painted)).max() <= 12, (name, flip, seed)
        checked += 1
    assert checked >= 8
    if flip:  # after mirroring, the channel "left_wrist" holds the mirrored right wrist
        lw, rw = COCO18.index("left_wrist"), COCO18.index("right_wrist")
        assert source[lw] == rw


def test_fields_match_the_encoder_on_unaugmented_input(tmp_path):
    ds = CocoKeypoints(write_dataset(tmp_path), tmp_path, SPEC, INPUT, augment=None, size=256)
    sample = ds.sample(0)
    f = 256 / 320
    people = people18()
    people[..., :2] = (people[..., :2] + 0.5) * f - 0.5
    ignore = np.zeros((256, 256), bool)
    ignore[round(20 * f) : round(101 * f), round(250 * f) : round(301 * f)] = True
    expected = Encoder(SPEC)(people, (32, 32), ignore)
    assert np.allclose(sample["heatmaps"], expected.heatmaps, atol=1e-6)
    assert np.allclose(sample["pafs"], expected.pafs, atol=1e-6)
    nose = find_peaks(sample["heatmaps"][:18], DecoderConfig())
    got = nose.xy[nose.part == 0][0] * 8 + 3.5
    assert np.hypot(*(got - people[0, 0, :2])) < 1.0
    assert sample["image"].shape == (3, 256, 256) and sample["image"].dtype == np.float32


def test_masks_cover_crowd_regions(tmp_path):
    ds = CocoKeypoints(write_dataset(tmp_path), tmp_path, SPEC, INPUT, augment=None, size=320)
    mask = ds.sample(0)["mask"]
    assert (mask[4:11, 33:36] == 0).all()  # cells well inside the crowd polygon
    assert mask[20:, :30].min() == 1 and mask.mean() > 0.9
    aug = CocoKeypoints(write_dataset(tmp_path), tmp_path, SPEC, INPUT,
                        augment=AugmentConfig(size=256, scale_min=1.0, scale_max=1.0, brightness=0, contrast=0,
                                              saturation=0, target_height=0.5))
    checked = 0
    for epoch in range(6):
        aug.set_epoch(epoch)
        s = aug.sample(0)
        ignored = cv2.resize((s["mask"] == 0).astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST) > 0
        if ignored.sum() < 64:
            continue  # the crowd fell outside this crop
        green = (s["crop"][..., 1] > 200) & (s["crop"][..., 2] < 60)
        assert green[ignored].mean() > 0.6  # masked where the crowd's pixels went
        checked += 1
    assert checked >= 2


def test_samples_are_reproducible_per_epoch_and_batch(tmp_path):
    ds = CocoKeypoints(write_dataset(tmp_path), tmp_path, SPEC, INPUT, augment=AugmentConfig(size=128))
    a, b = ds[0], ds[0]
    assert all(np.array_equal(a[k], b[k]) for k in ("image", "heatmaps", "pafs", "mask"))
    ds.set_epoch(1)
    assert not np.array_equal(ds[0]["image"], a["image"])
    batch = collate([a, b])
    assert tuple(batch["image"].shape) == (2, 3, 128, 128) and tuple(batch["pafs"].shape) == (2, 38, 16, 16)
    assert batch["image_id"].tolist() == [1, 1]


def test_bad_data_is_skipped_and_counted(tmp_path, caplog):
    (tmp_path / "broken.png").write_text("not an image")
    path = write_dataset(tmp_path, extra_images=("missing.png", "broken.png"))
    ds = CocoKeypoints(path, tmp_path, SPEC, INPUT, augment=None, size=128)
    assert len(ds) == 2 and ds.report.skipped == ["missing.png: image file missing"]
    assert "1 skipped" in ds.report.summary()
    with pytest.raises(PafposeError, match="not a readable image"):
        ds.sample(1)
    with caplog.at_level("WARNING"):
        got = ds[1]  # the broken image: logged, and the next readable sample comes instead
    assert got["image_id"] == 1 and "broken.png" in caplog.text
    empty = json.loads(path.read_text())
    empty["images"] = [{"id": 9, "file_name": "missing.png"}]
    empty["annotations"] = []
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    with pytest.raises(PafposeError, match="no usable image"):
        CocoKeypoints(tmp_path / "empty.json", tmp_path, SPEC, INPUT)
    (tmp_path / "bad.json").write_text('{"images": 3}')
    with pytest.raises(PafposeError, match="not a COCO annotation file"):
        CocoKeypoints(tmp_path / "bad.json", tmp_path, SPEC, INPUT)
    with pytest.raises(PafposeError, match="multiple of the stride"):
        CocoKeypoints(path, tmp_path, SPEC, INPUT, augment=None, size=100)


def test_show_data_command(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from shutil import which

    exe = which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
    path = write_dataset(tmp_path)
    r = subprocess.run([exe, "show-data", "--annotations", str(path), "--images", str(tmp_path), "--out",
                        str(tmp_path / "out"), "--heatmaps", "--paf", "--count", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    pictures = sorted((tmp_path / "out").glob("*.png"))
    assert len(pictures) == 1  # the dataset has one image
    img = cv2.imread(str(pictures[0]))
    assert img.shape == (368, 3 * 368, 3)
