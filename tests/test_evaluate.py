"""`pafpose eval`: COCO keypoint AP on synthetic sets made here, and on real val2017-dev images."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose import COCO17, PafposeError, Pose
from pafpose.evaluate import METRICS, coco_eval, evaluate, load_annotations

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


def synthetic_set(tmp_path, rng):
    """Images of distinct grey levels; people with COCO keypoints; one image without people."""
    images, annotations, truth = [], [], {}
    for i, n_people in enumerate((2, 1, 3, 0)):
        image_id = 100 + i
        cv2.imwrite(str(tmp_path / f"{image_id}.png"), np.full((240, 320, 3), 10 * i, np.uint8))
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 320, "height": 240})
        truth[10 * i] = []
        for _ in range(n_people):
            x0, y0 = rng.uniform(20, 200), rng.uniform(20, 100)
            kps = np.zeros((17, 3))
            kps[:, 0] = x0 + rng.uniform(0, 80, 17)
            kps[:, 1] = y0 + rng.uniform(0, 120, 17)
            kps[:, 2] = 2
            kps[rng.choice(17, 3, replace=False), :] = 0  # a few unlabelled keypoints
            vis = kps[:, 2] > 0
            x, y = kps[vis, 0], kps[vis, 1]
            bbox = [x.min(), y.min(), x.max() - x.min(), y.max() - y.min()]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "keypoints": kps.ravel().tolist(), "num_keypoints": int(vis.sum()),
                                "bbox": bbox, "area": float(bbox[2] * bbox[3])})
            pose = np.where(vis[:, None], np.c_[kps[:, :2], np.ones(17)], [np.nan, np.nan, 0.0])
            truth[10 * i].append(Pose(pose, 0.9, COCO17))
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path, truth


def test_ground_truth_as_predictions_scores_one(tmp_path):
    path, truth = synthetic_set(tmp_path, np.random.default_rng(0))
    ev = evaluate(lambda img: truth[int(img[0, 0, 0])], path, tmp_path, progress=False)
    assert set(ev.metrics) == set(METRICS) and ev.images == 4 and not ev.failed
    assert ev.metrics["AP"] == pytest.approx(1.0) and ev.metrics["AR"] == pytest.approx(1.0)
    assert len(ev.results) == 6 and all(len(r["keypoints"]) == 51 for r in ev.results)

    # a confident false positive on the image without people must cost precision
    ghost = Pose(truth[0][0].keypoints, 0.99, COCO17)
    ev = evaluate(lambda img: truth[int(img[0, 0, 0])] or [ghost], path, tmp_path, progress=False)
    assert ev.metrics["AP"] < 0.95 and ev.metrics["AR"] == pytest.approx(1.0)

    # moved keypoints lower the score; max_detections keeps the best people only
    jitter = {k: [Pose(p.keypoints + np.array([6, 6, 0]), p.score, COCO17) for p in v] for k, v in truth.items()}
    assert evaluate(lambda img: jitter[int(img[0, 0, 0])], path, tmp_path, progress=False).metrics["AP"] < 0.9
    ev = evaluate(lambda img: truth[int(img[0, 0, 0])], path, tmp_path, max_detections=1, progress=False)
    assert len(ev.results) == 3 and ev.metrics["AR"] < 1.0


def test_missing_and_unreadable_images_score_as_nothing(tmp_path):
    path, truth = synthetic_set(tmp_path, np.random.default_rng(1))
    (tmp_path / "100.png").unlink()
    (tmp_path / "102.png").write_text("not an image")
    errors = []
    ev = evaluate(lambda img: truth[int(img[0, 0, 0])], path, tmp_path, progress=False, on_error=errors.append)
    assert len(ev.failed) == 2 and errors == ev.failed and "100.png" in errors[0] and "102.png" in errors[1]
    assert ev.images == 4 and len(ev.results) == 1
    assert 0 < ev.metrics["AR"] < 0.5  # 1 of 6 people found, and the evaluation completed


def test_any_os_error_on_one_image_is_that_images_failure(tmp_path, monkeypatch):
    """A FIFO (opening it would block for ever) and a file the process may not read: each
    scores as no detections, and the evaluation goes on."""
    import os

    path, truth = synthetic_set(tmp_path, np.random.default_rng(1))
    (tmp_path / "100.png").unlink()
    os.mkfifo(tmp_path / "100.png")
    real_open = os.open

    def refuse(p, *args, **kwargs):
        if str(p).endswith("102.png"):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    errors = []
    ev = evaluate(lambda img: truth[int(img[0, 0, 0])], path, tmp_path, progress=False, on_error=errors.append)
    assert len(errors) == 2 and "100.png: not a regular file" in errors[0] and "Permission denied" in errors[1]
    assert ev.images == 4 and len(ev.results) == 1


def test_no_results_is_zero_not_a_crash(tmp_path):
    path, _ = synthetic_set(tmp_path, np.random.default_rng(2))
    assert coco_eval(load_annotations(path), []) == dict.fromkeys(METRICS, 0.0)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "top level is not an object"),
    ('{"annotations": []}', "no 'images' list"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1}]}', "lacks keypoints"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "keypoints": [1, 2, 2],'
     ' "area": 1, "iscrowd": 0, "bbox": [0, 0, 1, 1]}]}', "51"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 7, "keypoints": ['
     + ", ".join(["0"] * 51) + '], "area": 1, "iscrowd": 0, "bbox": [0, 0, 1, 1]}]}', "not listed"),
])
def test_malformed_annotation_files_are_one_line_errors(tmp_path, content, message):
    (tmp_path / "a.json").write_text(content)
    with pytest.raises(PafposeError, match=message):
        load_annotations(tmp_path / "a.json")
    r = subprocess.run([EXE, "eval", "--annotations", str(tmp_path / "a.json"), "--images", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr


# The first 16 images of val2017-dev by id (10 with keypointed people), default `pafpose eval`;
# recorded in BENCHMARKS.md. The range allows for other CPUs' float rounding, not for regressions.
SUBSET_AP = 0.3833


@pytest.fixture(scope="module")
def val_subset(tmp_path_factory):
    from conftest import shared_dir

    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): the evaluation test runs the real model")
    root = shared / "coco" / "val2017-dev"
    data = json.loads((root / "person_keypoints.json").read_text())
    ids = sorted(img["id"] for img in data["images"])[:16]
    data["images"] = [img for img in data["images"] if img["id"] in ids]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    person = next(a for a in data["annotations"] if a["num_keypoints"] > 0)
    broken = [{**person, "id": 900001, "keypoints": [float("nan")] * 51},  # would change the AP if scored
              {**person, "id": 900002, "image_id": str(person["image_id"])}]
    data["annotations"] += broken  # left out of the ground truth, and reported
    path = tmp_path_factory.mktemp("val") / "subset.json"
    path.write_text(json.dumps(data))
    return path, root / "images", shared / "weights"


def test_eval_command_on_real_images(val_subset, tmp_path):
    ann, images, weights = val_subset
    env = dict(os.environ, PAFPOSE_WEIGHTS_PATH=str(weights), PAFPOSE_OFFLINE="1")
    # torch float32, whose figure BENCHMARKS.md records (--backend auto's are within 0.005 AP on all of
    # val2017-dev, but 16 images move by ±0.02 with any change of arithmetic)
    r = subprocess.run([EXE, "eval", "--annotations", str(ann), "--images", str(images), "--backend", "torch",
                        "--metrics-json", str(tmp_path / "m.json"), "--out", str(tmp_path / "r.json")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(metrics) == [*METRICS, "images", "unreadable", "skipped_entries"]
    assert metrics["images"] == 16 and metrics["unreadable"] == 0 and metrics["skipped_entries"] == 2
    assert "2 entries skipped (annotation" in r.stderr and "scoring the valid entries only" in r.stderr
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ]" in r.stdout
    assert "16 images" in r.stdout and "images/s" in r.stdout and "2 annotation-file entries skipped" in r.stdout
    assert metrics["AP"] == pytest.approx(SUBSET_AP, abs=0.005)
    results = json.loads((tmp_path / "r.json").read_text())
    assert results and all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in results)
    # deterministic: the same figures again, in process, with the decoder eval uses
    os.environ["PAFPOSE_WEIGHTS_PATH"] = str(weights)
    try:
        from pafpose import DecoderConfig
        from pafpose.predict import Estimator

        est = Estimator(device="cpu", backend="torch", decoder=DecoderConfig(fill_missing=True))
    finally:
        del os.environ["PAFPOSE_WEIGHTS_PATH"]
    again = evaluate(est.predict, ann, images, progress=False)
    assert {k: round(v, 6) for k, v in again.metrics.items()} == {k: metrics[k] for k in METRICS}
    assert len(again.skipped) == 2


def test_eval_refuses_to_overwrite_its_inputs(tmp_path):
    path, _ = synthetic_set(tmp_path, np.random.default_rng(3))
    for args, message in ((["--out", str(path)], "is the annotation file"),
                          (["--metrics-json", str(tmp_path)], "is a folder"),
                          # found before the model loads and the images are run, not after
                          (["--out", str(path / "r.json")], "is a file, not a folder"),
                          (["--max-detections", "0"], "--max-detections")):
        r = subprocess.run([EXE, "eval", "--annotations", str(path), "--images", str(tmp_path), *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert json.loads(path.read_text())["annotations"]  # untouched
