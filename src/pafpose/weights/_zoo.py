"""The model zoo: every known pretrained weight set, as data.

Names are ``architecture.tag``; the tag picks the weight set. Lookups return the frozen
entries themselves (immutable), so callers can't change the zoo.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np

from pafpose.errors import PafposeError
from pafpose.models._base import InputConfig


@dataclass(frozen=True)
class WeightFile:
    """One file of a weight set: where it comes from and how to recognise it."""

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    folder: str | None = None  # in mirror folders: the file's parent folder must have this name

    def refusal(self) -> str | None:
        """Why pafpose won't download this file itself, or None. Only files whose sha256 and
        size are known, from https addresses, are fetched: anything else could be replaced
        on the way or at the source without anyone noticing."""
        if not self.urls:
            return "no download address is known"
        if self.sha256 is None or self.size is None:
            return "no verified sha256 and size are known for it, so a download could not be checked"
        plain = [u for u in self.urls if not u.startswith(("https://", "file://"))]  # file: a local copy
        if plain:
            return f"its address is not https ({plain[0]})"
        return None


@dataclass(frozen=True)
class PretrainedCfg:
    """A pretrained weight set.

    Attributes:
        name: ``architecture.tag``.
        architecture: registered architecture it loads into.
        arch_kwargs: constructor arguments of the architecture for these weights.
        file_format: importer (``openvino-ir``, ``tf-graphdef``, ``tflite``, ``caffe``,
            ``torch-openpose``, ``torch-lightweight``).
        files: the files, first the one a user names.
        input_size: ``(width, height)`` the authors publish (information: pafpose runs at
            ``input_config.height``, keeping each image's aspect ratio).
        input_config: how its input must be prepared (height, channel order, mean, std,
            padding, stride), as its authors' recipe does; None: the architecture's
            (:func:`resolve_input_config`).
        skeleton: keypoint set of its outputs.
        license: license of the weights; ``commercial`` False for non-commercial ones.
        origin_url: the authors' page.
        accuracy: published accuracy, as published.
        available: False for known weights whose files pafpose won't fetch itself (no
            address, or no known sha256 and size: :meth:`WeightFile.refusal`); the addresses
            listed are where to get them by hand.
    """

    name: str
    architecture: str
    file_format: str
    files: tuple[WeightFile, ...]
    input_size: tuple[int, int]
    license: str
    origin_url: str
    accuracy: str = ""
    skeleton: str = "coco18"
    commercial: bool = True
    available: bool = True
    arch_kwargs: tuple[tuple[str, object], ...] = field(default=())
    input_config: InputConfig | None = None

    @property
    def kwargs(self) -> dict[str, object]:
        return dict(self.arch_kwargs)


_OMZ = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2022.1/models_bin/3/human-pose-estimation-0001"
_TFPOSE = "https://github.com/ildoonet/tf-pose-estimation/raw/master/models/graph"
_CMU = "http://posefs1.perception.cs.cmu.edu/OpenPose/models/pose"
_CMU_LICENSE = "CMU OpenPose academic license (non-commercial)"

# The input recipes of the published weights (BGR pixels 0..255, stride 8, height 368 for all):
# The Open Model Zoo IR normalises inside its graph as x * f16(1/255) + f16(-128/255), i.e.
# (x - 128) / 255.0039. It is published at 456 x 256; pafpose runs it at height 368 by default,
# as the other networks (``height=256`` gives the published size).
_OMZ_INPUT = InputConfig("BGR", (128.0,) * 3, (1.0 / float(np.float16(1 / 255)),) * 3, pad_value=0.0, stride=8,
                         height=368)
# tf-pose-estimation feeds raw pixels (no graph normalises its input).
_TFPOSE_INPUT = InputConfig("BGR", (0.0,) * 3, (1.0,) * 3, pad_value=0.0, stride=8, height=368)
# The CMU demo feeds x / 256 - 0.5 and pads with grey; OpenPose (C++) pads with black.
_CMU_DEMO_INPUT = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=128.0, stride=8, height=368)
_CMU_INPUT = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=0.0, stride=8, height=368)
# Lightweight OpenPose trains on (x - 128) / 256 and pads with black.
_LIGHTWEIGHT_INPUT = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=0.0, stride=8, height=368)

ZOO: dict[str, PretrainedCfg] = {}


def _add(cfg: PretrainedCfg) -> None:
    ZOO[cfg.name] = cfg


_add(PretrainedCfg(
    name="human-pose-estimation-0001.int8",
    architecture="human-pose-estimation-0001",
    file_format="openvino-ir",
    files=(
        WeightFile("human-pose-estimation-0001.xml", (f"{_OMZ}/FP16-INT8/human-pose-estimation-0001.xml",),
                   "c3a47de94906e6b3256eb16af7274141b2fc9f6c7889a02d96ef430b9bc321d3", 435357, "FP16-INT8"),
        WeightFile("human-pose-estimation-0001.bin", (f"{_OMZ}/FP16-INT8/human-pose-estimation-0001.bin",),
                   "fc7e9dde0f4a34876cfbbd266388a59526a8c8c1bc9394ce4827b7a007d20f82", 4170036, "FP16-INT8"),
    ),
    input_size=(456, 256),
    input_config=_OMZ_INPUT,
    license="Apache-2.0",
    origin_url="https://docs.openvino.ai/2022.3/omz_models_model_human_pose_estimation_0001.html",
    accuracy="AP 42.8 % on a COCO val subset (Open Model Zoo)",
))
for _precision in ("FP32", "FP16"):
    _add(PretrainedCfg(
        name=f"human-pose-estimation-0001.{_precision.lower()}",
        architecture="human-pose-estimation-0001",
        file_format="openvino-ir",
        files=(
            WeightFile("human-pose-estimation-0001.xml", (f"{_OMZ}/{_precision}/human-pose-estimation-0001.xml",),
                       folder=_precision),
            WeightFile("human-pose-estimation-0001.bin", (f"{_OMZ}/{_precision}/human-pose-estimation-0001.bin",),
                       folder=_precision),
        ),
        input_size=(456, 256),
        input_config=_OMZ_INPUT,
        license="Apache-2.0",
        origin_url="https://docs.openvino.ai/2022.3/omz_models_model_human_pose_estimation_0001.html",
        accuracy="AP 42.8 % on a COCO val subset (Open Model Zoo)",
        available=False,  # no sha256 known for these precisions: fetch them by hand
    ))
_add(PretrainedCfg(
    name="tf-pose-mobilenet-v2.small",
    architecture="tf-pose-mobilenet-v2",
    file_format="tf-graphdef",
    files=(WeightFile("graph_opt.pb", (f"{_TFPOSE}/mobilenet_v2_small/graph_opt.pb",),
                      "428a9d6e7bfc0319e1ce4de8c0191a9111cd281bea6ae2b496fd42c92d574160", 2096019),),
    input_size=(432, 368),
    input_config=_TFPOSE_INPUT,
    license="Apache-2.0",
    origin_url="https://github.com/ildoonet/tf-pose-estimation",
    arch_kwargs=(("variant", "small"),),
))
for _dm, _sha, _size in (
    ("05", "675e862f911f980af495ecfb1feb3cff9598d4a04252dce8f6932f0a54e283b4", 632040),
    ("07", "e9041ac26a9d9ba67036f840a8360cb7403a48ed165f20c7f0ed0f4ef31dc83b", 1150864),
    ("10", "d6c2cd7a13b5e996c2be18c15ba3a67cd0a53abe1d64c163295679d5f8895061", 1756032),
    ("14", "44ca354020f47ae9976fefbc2febd6410000aa8a059ca750300b2cbbb6d2b7d7", 2350144),
):
    _add(PretrainedCfg(
        name=f"tf-pose-mobilenet-v2.dm{_dm}",
        architecture="tf-pose-mobilenet-v2",
        file_format="tflite",
        # Third-party retraining (MIT); no stable public download address is known.
        files=(WeightFile(f"mobilenet_v2_pose_dm{_dm}_368_432_weight_quant.tflite", (), _sha, _size),),
        input_size=(432, 368),
        input_config=_TFPOSE_INPUT,
        license="MIT",
        origin_url="https://github.com/ildoonet/tf-pose-estimation (training code)",
        available=False,
        arch_kwargs=(("variant", f"dm{_dm}"),),
    ))
_add(PretrainedCfg(
    name="tf-pose-mobilenet-v2.dm05-ir",
    architecture="tf-pose-mobilenet-v2",
    file_format="openvino-ir",
    # The dm05 network in float32 as an OpenVINO IR v5 (third party, MIT); no public address known.
    files=(
        WeightFile("mobilenet_v2_0.5_224__FP32__frozen-model.xml", (),
                   "b105c9eeb74be9998cdb9b7ccc5b2a6c1dec85ca9ae7c4b5a2501de556a40ca4", 151081),
        WeightFile("mobilenet_v2_0.5_224__FP32__frozen-model.bin", (),
                   "257d8c2385fb319ffc8847465e4f6d305d141320790b184850d47bf53d0d3a21", 1877344),
    ),
    input_size=(432, 368),
    input_config=_TFPOSE_INPUT,
    license="MIT",
    origin_url="https://github.com/ildoonet/tf-pose-estimation (training code)",
    available=False,
    arch_kwargs=(("variant", "dm05"),),
))
_add(PretrainedCfg(
    name="openpose-coco.cmu",
    architecture="openpose-coco",
    file_format="caffe",
    files=(WeightFile("pose_iter_440000.caffemodel", (f"{_CMU}/coco/pose_iter_440000.caffemodel",)),),
    input_size=(656, 368),
    input_config=_CMU_DEMO_INPUT,
    license=_CMU_LICENSE,
    commercial=False,
    origin_url="https://github.com/CMU-Perceptual-Computing-Lab/openpose",
    accuracy="AP 58.4 % COCO test-dev 2016, multi-scale (Cao et al. 2017)",
    available=False,  # plain http and no known sha256: fetch it by hand
))
_add(PretrainedCfg(
    name="openpose-body25.cmu",
    architecture="openpose-body25",
    file_format="caffe",
    files=(WeightFile("pose_iter_584000.caffemodel", (f"{_CMU}/body_25/pose_iter_584000.caffemodel",)),),
    input_size=(656, 368),
    input_config=_CMU_INPUT,
    license=_CMU_LICENSE,
    commercial=False,
    origin_url="https://github.com/CMU-Perceptual-Computing-Lab/openpose",
    accuracy="AP 64.2 % COCO val 2017, multi-scale (Cao et al. 2019)",
    skeleton="body25",
    available=False,  # plain http and no known sha256: fetch it by hand
))
_add(PretrainedCfg(
    name="openpose-coco.tensorboy",
    architecture="openpose-coco",
    file_format="torch-openpose",
    files=(WeightFile("pose_model.pth", (), None, 209270650),),
    input_size=(368, 368),
    input_config=_CMU_DEMO_INPUT,
    license=_CMU_LICENSE + "; converted by tensorboy/pytorch_Realtime_Multi-Person_Pose_Estimation",
    commercial=False,
    origin_url="https://github.com/tensorboy/pytorch_Realtime_Multi-Person_Pose_Estimation",
    accuracy="the CMU COCO model, converted",
    available=False,
))
_add(PretrainedCfg(
    name="openpose-coco.hzzone",
    architecture="openpose-coco",
    file_format="torch-openpose",
    files=(WeightFile("body_pose_model.pth"),),
    input_size=(368, 368),
    input_config=_CMU_DEMO_INPUT,
    license=_CMU_LICENSE + "; converted by Hzzone/pytorch-openpose",
    commercial=False,
    origin_url="https://github.com/Hzzone/pytorch-openpose",
    accuracy="the CMU COCO model, converted",
    available=False,
))
_add(PretrainedCfg(
    name="lightweight-openpose.370k",
    architecture="lightweight-openpose",
    file_format="torch-lightweight",
    files=(WeightFile("checkpoint_iter_370000.pth", (
        "https://download.01.org/opencv/openvino_training_extensions/models/human_pose_estimation/"
        "checkpoint_iter_370000.pth",)),),
    input_size=(368, 368),
    input_config=_LIGHTWEIGHT_INPUT,
    license="Apache-2.0",
    origin_url="https://github.com/Daniil-Osokin/lightweight-human-pose-estimation.pytorch",
    accuracy="AP 40 % COCO val 2017, single scale (Osokin 2018)",
    available=False,  # no sha256 known: fetch it by hand
))


# ---------------------------------------------------------------------- the part networks (whole body)
@dataclass(frozen=True)
class PartNetCfg:
    """A published crop network for hands, faces or feet (:mod:`pafpose.wholebody`): its file,
    cached and verified as the body networks' are, its input side (square RGB) and the range
    its pixels are scaled to (MediaPipe's graphs: 0..1, the face detector -1..1)."""

    name: str
    task: str
    files: tuple[WeightFile, ...]
    input_side: int
    license: str
    origin_url: str
    input_range: tuple[float, float] = (0.0, 1.0)
    available: bool = True


# MediaPipe's landmark networks at one commit of its repository (Apache-2.0), TFLite files that
# OpenVINO reads directly.
_MEDIAPIPE_COMMIT = "63e679d99ca45b30514a9d84c9351a2d77bb9ba0"
_MEDIAPIPE = f"https://raw.githubusercontent.com/google/mediapipe/{_MEDIAPIPE_COMMIT}/mediapipe/modules"
PART_NETS: dict[str, PartNetCfg] = {}
for _name, _task, _folder, _file, _side, _sha, _size in (
    ("mediapipe-hand", "21 hand points on an upright hand crop", "hand_landmark", "hand_landmark_lite.tflite", 224,
     "d7fde8ac11f8ce03f8663775bfc323f4fc9f2a38062b4f4efa142874ef5b2a48", 2071408),
    ("mediapipe-face", "468-point face mesh on a level face crop", "face_landmark", "face_landmark.tflite", 192,
     "c603fa6149219a3e9487dc9abd7a0c24474c77263273d24868378cdf40aa26d1", 1241896),
    ("mediapipe-iris", "eye contour and iris (pupil) on an eye crop", "iris_landmark", "iris_landmark.tflite", 64,
     "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", 2640568),
    ("mediapipe-face-detector", "face boxes in a whole image (close-up portraits)", "face_detection",
     "face_detection_short_range.tflite", 128,
     "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 229032),
    ("mediapipe-palm", "palm boxes in a whole image (hands no arm gives a crop for)", "palm_detection",
     "palm_detection_lite.tflite", 192,
     "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18", 1985440),
    ("mediapipe-pose", "BlazePose's 33 body points (heels, toes) on a person crop", "pose_landmark",
     "pose_landmark_lite.tflite", 256, "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61", 2819824),
):
    PART_NETS[_name] = PartNetCfg(
        name=_name, task=_task, files=(WeightFile(_file, (f"{_MEDIAPIPE}/{_folder}/{_file}",), _sha, _size),),
        input_side=_side, license="Apache-2.0",
        # as its graph scales it; the palm detector's 0..1 checked on hand1.jpg (its palm at 0.95; -1..1:
        # boxes off the image)
        input_range=(-1.0, 1.0) if _name == "mediapipe-face-detector" else (0.0, 1.0),
        origin_url=f"https://github.com/google/mediapipe/tree/{_MEDIAPIPE_COMMIT}/mediapipe/modules/{_folder}")


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of zoo entries matching a shell-style ``pattern``."""
    return sorted(n for n in ZOO if fnmatch.fnmatch(n, pattern))


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The zoo entry ``name``; a bare architecture name picks its default (first listed) entry."""
    if name in ZOO:
        return ZOO[name]
    tagged = [n for n in ZOO if n.split(".")[0] == name]
    if tagged:
        return ZOO[tagged[0]]
    raise PafposeError(f"unknown model {name!r}; known: {', '.join(sorted(ZOO))}")
