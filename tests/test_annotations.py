"""Annotation files: every entry checked in one place; broken ones skipped, counted and
reported by training, show-data and evaluation alike; never another exception."""

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pafpose import PafposeError
from pafpose.data.annotations import load_annotations, validate
from pafpose.evaluate import evaluate
from test_evaluate import synthetic_set

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))

# (what is broken, how to break a good annotation / image entry, words of the reason)
BROKEN_ANNOTATIONS = [
    ("id as a list", lambda a: a.update(id=[1]), "'id' must be a whole number"),
    ("image_id as a string", lambda a: a.update(image_id=str(a["image_id"])), "'image_id' must be"),
    ("area as a string", lambda a: a.update(area="100"), "area must be"),
    ("iscrowd as a string", lambda a: a.update(iscrowd="0"), "iscrowd must be"),
    ("num_keypoints as a string", lambda a: a.update(num_keypoints="14"), "num_keypoints"),
    ("52 keypoint values", lambda a: a.update(keypoints=a["keypoints"] + [0]), "52 keypoint values"),
    ("a keypoint as a string", lambda a: a["keypoints"].__setitem__(0, "3"), "finite numbers"),
    ("an absurd keypoint", lambda a: a["keypoints"].__setitem__(0, 1e308), "finite numbers"),
    ("a NaN keypoint", lambda a: a["keypoints"].__setitem__(1, math.nan), "finite numbers"),
    ("an infinite box", lambda a: a["bbox"].__setitem__(2, math.inf), "bbox"),
    ("visibility 7", lambda a: a["keypoints"].__setitem__(2, 7), "visibility"),
    ("keypoints as a dict", lambda a: a.update(keypoints={"x": 1}), "no list of keypoint values"),
    ("another category", lambda a: a.update(category_id=2), "person category"),
    ("a broken crowd polygon", lambda a: a.update(segmentation=[[1, 2, "x", 4, 5, 6]]), "segmentation"),
]


def broken_file(tmp_path):
    """The synthetic evaluation set plus one broken copy of a real annotation per kind of
    damage, one broken image entry and a repeated annotation id."""
    path, truth = synthetic_set(tmp_path, np.random.default_rng(0))
    data = json.loads(path.read_text())
    good = data["annotations"][0]
    for n, (_, damage, _) in enumerate(BROKEN_ANNOTATIONS):
        ann = copy.deepcopy(good)
        ann["id"] = 1000 + n
        damage(ann)
        data["annotations"].append(ann)
    data["annotations"].append({**copy.deepcopy(good), "id": good["id"]})  # a repeated id
    data["images"].append({"id": [5], "file_name": "x.png"})
    data["images"].append({"id": 77, "file_name": "/etc/passwd"})
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    return path, broken, truth


def test_broken_entries_are_skipped_with_their_reasons_and_never_scored(tmp_path):
    clean, broken, truth = broken_file(tmp_path)
    gt = load_annotations(broken)
    assert len(gt.skipped) == len(BROKEN_ANNOTATIONS) + 3, gt.skipped
    for (what, _, words) in BROKEN_ANNOTATIONS:
        assert any(words in reason for reason in gt.skipped), (what, gt.skipped)
    assert any("repeats annotation id" in r for r in gt.skipped)
    assert any("image entry 4 needs a whole-number 'id'" in r for r in gt.skipped)
    assert any("inside the image folder" in r for r in gt.skipped)
    assert gt.summary().startswith(f"{len(gt.skipped)} entries skipped (") and gt.summary().endswith("; ...)")
    assert len(gt.getAnnIds()) == len(load_annotations(clean).getAnnIds())  # exactly the valid ones
    for ann in gt.anns.values():
        assert all(math.isfinite(v) for v in ann["keypoints"] + ann["bbox"] + [ann["area"]])

    def predict(img):
        return truth[int(img[0, 0, 0])]
    clean_ev = evaluate(predict, clean, tmp_path, progress=False)
    ev = evaluate(predict, broken, tmp_path, progress=False)
    assert ev.metrics == clean_ev.metrics and ev.metrics["AP"] == pytest.approx(1.0)  # the same set scored
    assert ev.skipped == gt.skipped and "entries skipped" in ev.skipped_summary()


def test_training_and_show_data_skip_the_same_entries(tmp_path):
    from pafpose.data import CocoKeypoints
    from pafpose.fields import OPENPOSE_COCO18
    from pafpose.models import InputConfig

    _, broken, _ = broken_file(tmp_path)
    ds = CocoKeypoints(broken, tmp_path, OPENPOSE_COCO18, InputConfig("BGR", (128.0,) * 3, (256.0,) * 3),
                       augment=None, size=128)
    assert ds.report.skipped == load_annotations(broken).skipped
    assert f"{len(ds.report.skipped)} skipped (" in ds.report.summary()
    for i in range(len(ds)):
        assert np.isfinite(ds[i]["heatmaps"]).all()
    r = subprocess.run([EXE, "show-data", "--annotations", str(broken), "--images", str(tmp_path), "--out",
                        str(tmp_path / "out"), "--count", "1", "--no-augment"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"6 people with keypoints; {len(ds.report.skipped)} skipped (image entry 4 needs" in r.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"images": [], "annotations": [], "x": ' + "1" * 5000 + "}", "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    ('{"images": [{"id": "1", "file_name": "a.png"}], "annotations": []}', "no usable image entry"),
])
def test_files_that_are_not_coco_are_one_line_errors_everywhere(tmp_path, content, message):
    path = tmp_path / "a.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PafposeError, match=message):
        load_annotations(path)
    for command in (["eval"], ["show-data", "--out", str(tmp_path / "o")],
                    ["train", "--model", "human-pose-estimation-0001", "--out", str(tmp_path / "run")]):
        r = subprocess.run([EXE, *command, "--annotations", str(path), "--images", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, (command, r.stderr)


# ---------------------------------------------------------------- fuzzing the loader
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=5),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 2, 1e308, -1e308]))
_ANY = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=4), inner, max_size=4)),
                    max_leaves=12)
_NUMBER = st.one_of(st.floats(-1e3, 1e3), st.integers(0, 500), _SCALARS)
_KEYPOINTS = st.one_of(st.lists(_NUMBER, min_size=51, max_size=51),
                       st.lists(st.sampled_from([0, 1, 2, 10.5]), min_size=51, max_size=51), _ANY)
_IMAGE = st.fixed_dictionaries({"id": st.one_of(st.integers(0, 3), _SCALARS),
                                "file_name": st.one_of(st.sampled_from(["a.png", "b/c.jpg", "../x", "é.png"]),
                                                       _SCALARS)},
                               optional={"width": _NUMBER, "height": _NUMBER, "extra": _ANY})
_ANNOTATION = st.fixed_dictionaries(
    {"image_id": st.one_of(st.integers(0, 3), _SCALARS), "keypoints": _KEYPOINTS,
     "bbox": st.one_of(st.lists(_NUMBER, min_size=4, max_size=4), _ANY), "area": _NUMBER,
     "iscrowd": st.one_of(st.sampled_from([0, 1]), _SCALARS)},
    optional={"id": st.one_of(st.integers(0, 5), _SCALARS), "num_keypoints": _NUMBER,
              "category_id": st.one_of(st.just(1), _SCALARS),
              "segmentation": st.one_of(st.lists(st.lists(_NUMBER, max_size=8), max_size=2), _ANY)})
_DOCUMENT = st.one_of(
    _ANY,
    st.fixed_dictionaries({"images": st.lists(st.one_of(_IMAGE, _ANY), max_size=4),
                           "annotations": st.lists(st.one_of(_ANNOTATION, _ANY), max_size=6)},
                          optional={"categories": _ANY, "info": _ANY}),
)


def _well_formed(ann, image_ids):
    numbers = ann["keypoints"] + ann["bbox"] + [ann["area"]]
    return (all(type(v) in (int, float) and math.isfinite(v) and abs(v) <= 1e12 for v in numbers)
            and len(ann["keypoints"]) == 51 and all(v in (0, 1, 2) for v in ann["keypoints"][2::3])
            and type(ann["id"]) is int and ann["image_id"] in image_ids and ann["iscrowd"] in (0, 1)
            and ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENT, nesting=st.integers(0, 3))
def test_fuzzed_documents_load_well_formed_or_fail_with_a_pafpose_error(tmp_path_factory, document, nesting):
    for _ in range(nesting):  # the document, or the same one wrapped in lists
        document = [document]
    path = tmp_path_factory.mktemp("fuzz") / "a.json"
    path.write_text(json.dumps(document, ensure_ascii=nesting % 2 == 0))  # NaN/Infinity tokens included
    try:
        gt = load_annotations(path)
    except PafposeError as err:
        assert "\n" not in str(err)
        return
    image_ids = {img["id"] for img in gt.dataset["images"]}
    assert all(type(i) is int and i >= 0 for i in image_ids)
    assert all(_well_formed(ann, image_ids) for ann in gt.dataset["annotations"])
    assert len({a["id"] for a in gt.dataset["annotations"]}) == len(gt.dataset["annotations"])
    total = len(document["images"]) + len(document["annotations"])
    assert len(gt.dataset["images"]) + len(gt.dataset["annotations"]) + len(gt.skipped) == total


def test_validate_does_not_depend_on_a_file():
    data, skipped = validate({"images": [{"id": 1, "file_name": "a.png"}], "annotations": []})
    assert data["images"] == [{"id": 1, "file_name": "a.png"}] and skipped == []
