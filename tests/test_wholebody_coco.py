"""COCO-WholeBody results: people's whole-body parts as Poses.to_coco_wholebody and --json coco write them."""

import json

import numpy as np
import pytest

from pafpose.errors import PafposeError
from pafpose.pose import Pose, Poses
from pafpose.skeleton import BODY25, COCO18

NAN = [np.nan, np.nan, 0.0]


def _part(n, x0, missing=()):
    k = np.c_[x0 + np.arange(n, dtype=float), 50.0 + np.arange(n), np.full(n, 0.7)]
    k[list(missing)] = NAN
    return k


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
