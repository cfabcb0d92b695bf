"""The Caffe importer: .caffemodel files of the CMU OpenPose networks (written here, random weights)."""

import numpy as np
import pytest

import pafpose.weights
from helpers_openpose import assert_same_outputs, assert_weights, random_blobs, write_caffemodel
from pafpose.errors import PafposeError
from pafpose.models import build_architecture
from pafpose.weights import caffe


@pytest.fixture(scope="module")
def coco_caffemodel(tmp_path_factory, coco):
    path = tmp_path_factory.mktemp("coco") / "pose_iter_440000.caffemodel"
    write_caffemodel(path, coco[0], coco[3])
    return path


def test_caffemodel_coco_loads_every_blob_and_computes_like_caffe(coco, coco_caffemodel):
    graph, hm, paf, blobs = coco
    model = pafpose.weights.load(coco_caffemodel, architecture="openpose-coco")
    assert_weights(model, blobs)
    assert_same_outputs(model, graph, hm, paf, blobs)


def test_caffemodel_body25_loads_every_blob_and_computes_like_caffe(body25, tmp_path):
    graph, hm, paf, blobs = body25
    path = tmp_path / "pose_iter_584000.caffemodel"
    write_caffemodel(path, graph, blobs)
    model = pafpose.weights.load(path)  # the zoo knows this file name
    assert type(model).__name__ == "OpenPoseBody25"
    assert_weights(model, blobs)
    assert_same_outputs(model, graph, hm, paf, blobs)


def test_caffemodel_v1_layers_with_legacy_shapes(tmp_path):
    graph = [("Convolution", "conv1_1", ["image"], "conv1_1", 64, 3),
             ("PReLU", "prelu4_2", ["conv1_1"], "conv1_1", 0, 0)]
    blobs = random_blobs(graph, seed=3)
    path = tmp_path / "old.caffemodel"
    write_caffemodel(path, graph, blobs, v1=True)
    raw = caffe.read([path])
    assert raw["conv1_1.0"].shape == (64, 3, 3, 3) and raw["conv1_1.1"].shape == (1, 1, 1, 64)
    np.testing.assert_array_equal(raw["prelu4_2.0"].reshape(-1), blobs["prelu4_2"][0])
    state = caffe.remap(raw, build_architecture("openpose-coco"))  # legacy (1, 1, 1, C) -> (C,)
    assert list(state) == ["features.conv1_1.weight", "features.conv1_1.bias"]
    np.testing.assert_array_equal(state["features.conv1_1.bias"].numpy(), blobs["conv1_1"][1])


def test_truncated_caffemodel_names_the_file(coco_caffemodel, tmp_path):
    path = tmp_path / "cut.caffemodel"
    with open(coco_caffemodel, "rb") as f:
        path.write_bytes(f.read(1_000_000))
    with pytest.raises(PafposeError, match=r"cut\.caffemodel.*truncated"):
        pafpose.weights.load(path, architecture="openpose-coco")
    path.write_bytes(b"not a caffemodel at all")
    with pytest.raises(PafposeError, match=r"cut\.caffemodel"):
        pafpose.weights.load(path, architecture="openpose-coco")


def test_caffemodel_with_a_wrong_shape_names_layer_and_shapes(body25, tmp_path):
    graph, _, _, blobs = body25
    bad = dict(blobs)
    bad["Mconv7_stage3_L2"] = [blobs["Mconv7_stage3_L2"][0][:50], blobs["Mconv7_stage3_L2"][1]]
    path = tmp_path / "bad.caffemodel"
    write_caffemodel(path, graph, bad)
    with pytest.raises(PafposeError, match=r"bad\.caffemodel.*Mconv7_stage3_L2\.weight.*\(52, 512, 1, 1\).*"
                                           r"\(50, 512, 1, 1\)"):
        pafpose.weights.load(path, architecture="openpose-body25")


def test_caffe_weights_do_not_load_into_other_networks():
    with pytest.raises(PafposeError, match="openpose-coco"):
        caffe.remap({"conv1_1.0": np.zeros((64, 3, 3, 3), np.float32)}, build_architecture("lightweight-openpose"))
