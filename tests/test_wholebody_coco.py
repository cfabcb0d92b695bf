"""COCO-WholeBody: people's whole-body parts as its results (Poses.to_coco_wholebody, --json coco)
and its per-part AP (pafpose.evaluate.wholebody_eval, `pafpose eval`), on its real ground truth of
one val2017 image (../shared) and on synthetic sets; the figures are xtcocotools', the official
evaluation's (recorded in tests/xtcocotools_figures.json, see helpers_wholebody.py)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers_wholebody import cases, gt_path, people_from_gt, results_of, synthetic_gt
from pafpose.errors import PafposeError
from pafpose.evaluate import (
    METRICS,
    WHOLEBODY_METRICS,
    WHOLEBODY_PARTS,
    WHOLEBODY_SIGMAS,
    evaluate,
    is_wholebody,
    load_annotations,
    wholebody_eval,
)
from pafpose.pose import Pose, Poses
from pafpose.skeleton import BODY25, COCO18

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
FIGURES = Path(__file__).with_name("xtcocotools_figures.json")
NAN = [np.nan, np.nan, 0.0]


def _part(n, x0, missing=()):
    k = np.c_[x0 + np.arange(n, dtype=float), 50.0 + np.arange(n), np.full(n, 0.7)]
    k[list(missing)] = NAN
    return k


def _gt_coco(gt, tmp_path, name="gt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(gt))
    return load_annotations(path)


@pytest.fixture(scope="module")
def real(shared):
    path = gt_path(shared)
    return path, json.loads(path.read_text()), load_annotations(path)


# ---------------------------------------------------------------------- results
def test_results_carry_each_part_in_coco_wholebody_order():
    body = _part(18, 0.0, missing=(4,))
    parts = {"hand_left": _part(21, 100.0, missing=(0, 20)), "hand_right": _part(21, 200.0),
             "face": _part(70, 300.0, missing=(3,)), "feet": _part(6, 400.0, missing=(5,))}
    people = Poses([Pose(body, 0.8, COCO18, parts=parts), Pose(body, 0.5, COCO18)])
    assert people.has_wholebody() and not Poses([people[1]]).has_wholebody()
    res = people.to_coco_wholebody(5)
    assert [list(r) for r in res] == [["image_id", "category_id", "keypoints", "foot_kpts", "face_kpts",
                                       "lefthand_kpts", "righthand_kpts", "score"]] * 2
    json.dumps(res, allow_nan=False)  # never a NaN
    one = res[0]
    assert one["keypoints"] == people.to_coco(5)[0]["keypoints"] and one["score"] == 0.8
    lh = np.array(one["lefthand_kpts"]).reshape(-1, 3)  # the person's left hand, in OpenPose's order
    assert lh.shape == (21, 3) and np.array_equal(lh[1], [101.0, 51.0, 1.0])
    assert np.array_equal(lh[[0, 20]], np.zeros((2, 3)))  # missing: 0, 0, 0 (left out when a part has none)
    assert np.array_equal(np.array(one["righthand_kpts"]).reshape(-1, 3)[:, 0], 200.0 + np.arange(21))
    face = np.array(one["face_kpts"]).reshape(-1, 3)
    assert face.shape == (68, 3) and face[67, 0] == 367.0 and not face[3].any()  # the pupils are not COCO's
    feet = np.array(one["foot_kpts"]).reshape(-1, 3)
    assert np.array_equal(feet[:5, 0], 400.0 + np.arange(5)) and not feet[5].any()
    for key, n in (("foot_kpts", 18), ("face_kpts", 204), ("lefthand_kpts", 63), ("righthand_kpts", 63)):
        assert res[1][key] == [0.0] * n  # a person without parts: every v 0, so scored in no part


def test_a_body25_persons_feet_are_its_own_and_short_parts_are_refused():
    k = np.c_[np.arange(25.0), np.arange(25.0) + 1, np.ones(25)]
    feet = np.array(Pose(k, 0.9, BODY25).to_coco_wholebody_keypoints()["foot_kpts"]).reshape(-1, 3)
    order = [BODY25.index(n) for n in ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                                       "right_small_toe", "right_heel")]
    assert np.array_equal(feet[:, 0], k[order, 0]) and (feet[:, 2] == 1).all()
    with pytest.raises(PafposeError, match="face_kpts needs 68"):
        Pose(_part(18, 0.0), 0.9, COCO18, parts={"face": _part(50, 0.0)}).to_coco_wholebody_keypoints()


def test_coco_file_is_body_only_without_parts_and_whole_body_with_them(tmp_path):
    from pafpose.fields import OPENPOSE_COCO18
    from pafpose.outputs import OutputOptions, Writer

    def person(parts):
        return Poses([Pose(_part(18, 10.0, missing=(5,)), 0.9, COCO18, parts=parts)])

    def run(folder, *found):
        w = Writer(OutputOptions(out=tmp_path / folder, json="coco"), OPENPOSE_COCO18, locations=["a.jpg", "b.jpg"])
        for name, people in zip(("a", "b"), found, strict=True):
            w.image(people, None, name, location=f"{name}.jpg")
        w.finish()
        return (tmp_path / folder / "coco_results.json").read_text()

    plain = run("plain", person({}), person({}))
    expected = [{**r, "image_id": n} for n in (1, 2) for r in person({}).to_coco(n)]  # as it always was, to the byte
    assert plain == "[" + ", ".join(json.dumps(r) for r in expected) + "]"
    # one person with a hand makes the file COCO-WholeBody's: the others get empty part arrays
    mixed = json.loads(run("mixed", person({}), person({"hand_right": _part(21, 30.0)})))
    assert all(len(r) == 8 and len(r["face_kpts"]) == 204 for r in mixed)
    assert mixed[0]["righthand_kpts"] == [0.0] * 63 and mixed[1]["righthand_kpts"][:3] == [30.0, 50.0, 1.0]
    assert [r["image_id"] for r in mixed] == [1, 2] and list(mixed[0]) == list(mixed[1])


def test_batch_merge_gives_every_result_the_parts(tmp_path):
    from pafpose.batch.coco import Sidecar, sidecar_name, write_coco
    from pafpose.batch.inputs import Item

    out = tmp_path / "run"
    (out / "results").mkdir(parents=True)
    items = [Item(f"/d/{n}.jpg", f"{n}.jpg", "image", n) for n in ("a", "b")]
    for item, parts in zip(items, ({}, {"face": _part(70, 0.0)}), strict=True):
        shard = out / "results" / f"part-{item.name}.parquet"
        shard.write_bytes(b"")
        with Sidecar(shard.with_name(sidecar_name(shard.name))) as sidecar:
            sidecar.add(item.key, None, item.name, Poses([Pose(_part(18, 0.0), 0.9, COCO18, parts=parts)]))
    write_coco(out, tmp_path, items, warn=pytest.fail)
    merged = json.loads((tmp_path / "coco_results.json").read_text())
    assert [r["image_id"] for r in merged] == [1, 2] and all(len(r["lefthand_kpts"]) == 63 for r in merged)
    assert merged[0]["face_kpts"] == [0.0] * 204 and merged[1]["face_kpts"][:3] == [0.0, 50.0, 1.0]


# ---------------------------------------------------------------------- the ground truth
def test_whole_body_annotation_files_are_checked(tmp_path):
    gt = synthetic_gt()
    gt["annotations"][1].pop("lefthand_kpts")
    gt["annotations"][2]["face_kpts"] = gt["annotations"][2]["face_kpts"][:-3]
    gt["annotations"][3]["foot_kpts"][2] = 7
    coco = _gt_coco(gt, tmp_path)
    assert len(coco.skipped) == 3 and is_wholebody(coco)
    assert "lacks lefthand_kpts" in coco.skipped[0] and "has 201 face_kpts values, needs 204" in coco.skipped[1]
    assert "foot_kpts visibility flags" in coco.skipped[2]
    body_only = {**gt, "annotations": [{k: v for k, v in a.items() if not k.endswith("_kpts") or k == "keypoints"}
                                       for a in gt["annotations"]]}
    assert not is_wholebody(_gt_coco(body_only, tmp_path, "body.json"))


def test_results_must_be_whole_body_results_of_its_images(tmp_path):
    gt = _gt_coco(synthetic_gt(), tmp_path)
    good = results_of(people_from_gt(synthetic_gt()))
    with pytest.raises(PafposeError, match="result 0 needs foot_kpts of 18 numbers"):
        wholebody_eval(gt, [{k: v for k, v in good[0].items() if k != "foot_kpts"}])
    with pytest.raises(PafposeError, match="result 1 is of image 99"):
        wholebody_eval(gt, [good[0], {**good[1], "image_id": 99}])
    empty = wholebody_eval(gt, [])  # nothing found: 0 where the part has ground truth, as xtcocotools says
    assert list(empty) == list(WHOLEBODY_PARTS) and empty["face"]["AP"] == 0.0


def test_ground_truth_as_predictions_scores_one_per_part(real):
    path, data, _ = real
    truth = people_from_gt(data)
    ev = evaluate(lambda img: truth[196141], path, path.parent / "images", progress=False)
    assert ev.images == 1 and not ev.failed and len(ev.results) == 5
    assert all(len(r["face_kpts"]) == 204 and len(r["lefthand_kpts"]) == 63 for r in ev.results)
    assert list(ev.parts) == ["body", "foot", "face", "lefthand", "righthand", "wholebody"]
    for part, figures in ev.parts.items():
        if part == "face":  # the image's five people have no labelled face: undefined, not 0
            assert set(figures.values()) == {-1.0}
        else:
            assert figures["AP"] == pytest.approx(1.0) and figures["AR"] == pytest.approx(1.0), part
    assert ev.metrics == ev.parts["body"] and list(ev.figures()) == [*METRICS, *WHOLEBODY_METRICS]
    table = ev.table().splitlines()
    assert table[0].split() == ["COCO-WholeBody", *METRICS] and table[3].split()[1:] == ["-"] * 10
    assert table[4].startswith("lefthand") and table[4].split()[1] == "1.000"


def test_growing_noise_lowers_each_part(real):
    _, data, gt = real
    ap = {part: [] for part in WHOLEBODY_PARTS}
    for shift in (0.0, 1.0, 3.0, 8.0):
        for part, figures in wholebody_eval(gt, results_of(people_from_gt(data, shift=shift))).items():
            ap[part].append(figures["AP"])
    assert ap.pop("face") == [-1.0] * 4
    for part, values in ap.items():
        assert values[0] == pytest.approx(1.0) and values == sorted(values, reverse=True), (part, values)
        assert values[-1] < 0.75, (part, values)
    assert ap["lefthand"][1] < 1.0 == ap["body"][1]  # hands' sigmas are tighter than the body's


@pytest.mark.parametrize(("dropped", "part"), [("hand_left", "lefthand"), ("hand_right", "righthand"),
                                               ("feet", "foot")])
def test_a_missing_part_lowers_only_that_part(real, dropped, part):
    _, data, gt = real
    figures = wholebody_eval(gt, results_of(people_from_gt(data, drop=(dropped,))))
    assert figures[part]["AP"] == 0.0 and figures[part]["AR"] == 0.0
    assert figures["wholebody"]["AP"] < 0.9  # its points are missed in the 133
    for other in set(WHOLEBODY_PARTS) - {part, "wholebody", "face"}:
        assert figures[other]["AP"] == pytest.approx(1.0), other


def test_a_missing_face_on_synthetic_people(tmp_path):
    gt = _gt_coco(synthetic_gt(), tmp_path)
    full = wholebody_eval(gt, results_of(people_from_gt(synthetic_gt(), shift=3.0)))
    faceless = wholebody_eval(gt, results_of(people_from_gt(synthetic_gt(), shift=3.0, drop=("face",))))
    assert full["face"]["AP"] > 0.0 == faceless["face"]["AP"]
    assert all(full[p] == faceless[p] for p in ("body", "foot", "lefthand", "righthand"))
    assert faceless["wholebody"]["AP"] < full["wholebody"]["AP"]


def test_sigmas_are_coco_wholebodys():
    """The 133 OKS sigmas as mmpose's dataset file lists them (kept apart in the oracle script)."""
    from xtcocotools_oracle import PARTS, SIGMAS

    assert [s for v in WHOLEBODY_SIGMAS.values() for s in v] == SIGMAS
    for part, keys in WHOLEBODY_PARTS.items():
        a, b = PARTS[part]
        assert [s for k in keys for s in WHOLEBODY_SIGMAS[k]] == SIGMAS[a:b], part


def _ours(case, tmp_path, name):
    return {p: list(f.values()) for p, f in wholebody_eval(_gt_coco(case["gt"], tmp_path, f"{name}.json"),
                                                           case["results"]).items()}


def test_figures_are_xtcocotools(tmp_path):
    """Every case's sixty figures as xtcocotools gave them (recorded: its wheels need numpy 1)."""
    from conftest import shared_dir

    recorded = json.loads(FIGURES.read_text())["figures"]
    made = cases(shared_dir())
    assert {n for n in recorded if n.startswith("synthetic")} <= set(made)
    for name, case in made.items():
        ours = _ours(case, tmp_path, name)
        assert list(ours) == list(recorded[name])
        for part, theirs in recorded[name].items():
            assert ours[part] == pytest.approx(theirs, abs=1e-12), (name, part)


def test_figures_are_xtcocotools_run_here(tmp_path):
    """The same against xtcocotools itself, where it imports (built from source for numpy 2)."""
    try:
        import xtcocotools.cocoeval  # noqa: F401
    except (ImportError, ValueError) as err:  # ValueError: a wheel built for numpy 1 ("dtype size changed")
        pytest.skip(f"xtcocotools does not import here ({err}); tests/xtcocotools_figures.json holds its figures")
    from conftest import shared_dir
    from xtcocotools_oracle import official

    for name, case in cases(shared_dir()).items():
        ours, theirs = _ours(case, tmp_path, name), official(case["gt"], case["results"])
        assert list(ours) == list(theirs)
        for part in ours:
            assert ours[part] == pytest.approx(theirs[part], abs=1e-12), (name, part)


# ---------------------------------------------------------------------- pafpose eval
def test_eval_command_on_coco_wholebody(env, tmp_path):
    from conftest import shared_dir

    path = gt_path(shared_dir())
    r = subprocess.run([EXE, "eval", "--annotations", str(path), "--images", str(path.parent / "images"),
                        "--metrics-json", str(tmp_path / "m.json"), "--out", str(tmp_path / "r.json")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(metrics) == [*METRICS, *WHOLEBODY_METRICS, "images", "unreadable", "skipped_entries"]
    assert metrics["AP"] == metrics["body_AP"] > 0.3  # the body model finds these people
    # whole-body ground truth: the parts are found without asking (no labelled face; hands of 11-20 pixels, under
    # what the hand network sees; the feet are found)
    assert metrics["face_AP"] == -1 and metrics["lefthand_AP"] == 0 and metrics["foot_AP"] > 0.05
    assert metrics["wholebody_AP"] > 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[0] == "COCO-WholeBody" and [ln.split()[0] for ln in lines[1:7]] == list(WHOLEBODY_PARTS)
    results = json.loads((tmp_path / "r.json").read_text())
    assert results and all(len(x["foot_kpts"]) == 18 and len(x["face_kpts"]) == 204 for x in results)
    assert any(any(x["foot_kpts"][2::3]) for x in results)
    r = subprocess.run([EXE, "eval", "--annotations", str(path), "--images", str(path.parent / "images"),
                        "--metrics-json", str(tmp_path / "b.json"), "--parts", "face"],
                       capture_output=True, text=True, env=env, timeout=600)  # asked for the face only
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "b.json").read_text())["foot_AP"] == 0
    assert "no whole-body point was found (feet, face, hands): those parts score 0" in r.stderr
