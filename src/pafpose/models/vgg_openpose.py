"""The CMU OpenPose networks: VGG-19 features and multi-stage PAF/heatmap branches.

* ``openpose-coco``: the CVPR'17 COCO model (Cao et al., ``pose_deploy_linevec.prototxt``):
  the first ten VGG-19 convolutions, two CPM convolutions, then six stages of two branches
  (L1 = 38 PAF channels, L2 = 19 heatmaps); stages 2-6 read ``concat(L1, L2, features)``.
  52,311,446 parameters.
* ``openpose-body25``: the BODY_25 model (Cao et al., arXiv 1812.08008,
  ``body_25/pose_deploy.prototxt``): PReLU features, four PAF stages (named ``*_L2`` in
  Caffe) then two heatmap stages (``*_L1``), each stage five dense blocks of three stacked
  3x3 convolutions whose outputs are concatenated.

Every convolution and PReLU module is named exactly like its Caffe layer, so a Caffe blob
``<layer>.<i>`` lands on the module whose name ends in ``<layer>``
(see :meth:`OpenPoseVGG.caffe_layers`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pafpose.fields import OPENPOSE_COCO18, FieldSpec
from pafpose.models._base import Fields, InputConfig, PafModel
from pafpose.models._registry import register_model
from pafpose.skeleton import BODY25

# The BODY_25 PAF layout of the released model: POSE_MAP_INDEX[BODY_25] in OpenPose's
# src/openpose/pose/poseParameters.cpp, whose limb order (POSE_BODY_PART_PAIRS) is
# pafpose.skeleton.BODY25.limbs. Channels are offsets into the PAF tensor, (x, y).
OPENPOSE_BODY25 = FieldSpec(
    skeleton=BODY25,
    limbs=BODY25.limbs,
    paf_channels=(
        (0, 1), (14, 15), (22, 23), (16, 17), (18, 19), (24, 25), (26, 27), (6, 7), (2, 3),
        (4, 5), (8, 9), (10, 11), (12, 13), (30, 31), (32, 33), (36, 37), (34, 35), (38, 39),
        (20, 21), (28, 29), (40, 41), (42, 43), (44, 45), (46, 47), (48, 49), (50, 51),
    ),
    stride=8,
)

# VGG-19 up to conv4_2, as (Caffe name, output channels); "pool" entries are 2x2 max pools.
_VGG = (
    ("conv1_1", 64), ("conv1_2", 64), ("pool1_stage1", 0),
    ("conv2_1", 128), ("conv2_2", 128), ("pool2_stage1", 0),
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), ("pool3_stage1", 0),
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3_CPM", 256), ("conv4_4_CPM", 128),
)


def _features(prelu_from: str | None) -> nn.Sequential:
    """VGG-19 trunk + CPM convolutions; from layer ``prelu_from`` on, PReLU replaces ReLU."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin, prelu = 3, False
    for name, cout in _VGG:
        if name.startswith("pool"):
            layers[name] = nn.MaxPool2d(2, 2)
            continue
        prelu = prelu or name == prelu_from
        layers[name] = nn.Conv2d(cin, cout, 3, padding=1)
        act = "p" + name.replace("conv", "relu") if prelu else name.replace("conv", "relu")
        layers[act] = nn.PReLU(cout) if prelu else nn.ReLU(inplace=True)
        cin = cout
    return nn.Sequential(layers)


def _convs(spec: list[tuple[str, int, int, int]], cin: int) -> nn.Sequential:
    """Convolutions ``(name, cout, kernel, act)`` with 'same' padding; ``act`` 1 = ReLU after it."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name, cout, k, act in spec:
        layers[name] = nn.Conv2d(cin, cout, k, padding=k // 2)
        if act:
            layers[name.replace("conv", "relu")] = nn.ReLU(inplace=True)
        cin = cout
    return nn.Sequential(layers)


class _TwoBranchStage(nn.Module):
    """One stage of the COCO model: a PAF branch (Caffe L1) and a heatmap branch (L2)."""

    def __init__(self, stage: int, cin: int, n_pafs: int, n_heatmaps: int) -> None:
        super().__init__()

        def branch(b: int, cout: int) -> nn.Sequential:
            if stage == 1:
                spec = [(f"conv5_{i}_CPM_L{b}", 128, 3, 1) for i in (1, 2, 3)]
                spec += [(f"conv5_4_CPM_L{b}", 512, 1, 1), (f"conv5_5_CPM_L{b}", cout, 1, 0)]
            else:
                spec = [(f"Mconv{i}_stage{stage}_L{b}", 128, 7, 1) for i in range(1, 6)]
                spec += [(f"Mconv6_stage{stage}_L{b}", 128, 1, 1), (f"Mconv7_stage{stage}_L{b}", cout, 1, 0)]
            return _convs(spec, cin)

        self.pafs = branch(1, n_pafs)
        self.heatmaps = branch(2, n_heatmaps)

    def forward(self, x: torch.Tensor) -> Fields:
        return self.heatmaps(x), self.pafs(x)


class _DenseBlock(nn.Module):
    """Three stacked 3x3 conv + PReLU; the output concatenates all three (BODY_25)."""

    def __init__(self, prefix: str, cin: int, c: int) -> None:
        super().__init__()
        head, _, tail = prefix.partition("_")  # "Mconv1", "stage0_L2"
        self.pairs: list[tuple[str, str]] = []
        for j in range(3):
            conv, act = f"{prefix}_{j}", f"{head.replace('conv', 'prelu')}_{tail}_{j}"
            self.add_module(conv, nn.Conv2d(cin if j == 0 else c, c, 3, padding=1))
            self.add_module(act, nn.PReLU(c))
            self.pairs.append((conv, act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for conv, act in self.pairs:
            x = getattr(self, act)(getattr(self, conv)(x))
            outs.append(x)
        return torch.cat(outs, dim=1)


class _DenseStage(nn.Module):
    """A BODY_25 stage: five dense blocks, a 1x1 conv + PReLU, a 1x1 output conv."""

    def __init__(self, name: str, cin: int, c: int, mid: int, cout: int) -> None:
        super().__init__()
        stage, branch = name.split("_")  # "stage0", "L2"
        self.blocks = nn.Sequential(*(
            _DenseBlock(f"Mconv{i}_{stage}_{branch}", cin if i == 1 else 3 * c, c) for i in range(1, 6)
        ))
        self.head = nn.Sequential(OrderedDict([
            (f"Mconv6_{stage}_{branch}", nn.Conv2d(3 * c, mid, 1)),
            (f"Mprelu6_{stage}_{branch}", nn.PReLU(mid)),
            (f"Mconv7_{stage}_{branch}", nn.Conv2d(mid, cout, 1)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class OpenPoseVGG(PafModel):
    """Base of the CMU VGG networks: Caffe layer names on every weighted module."""

    def caffe_layers(self) -> dict[str, str]:
        """Caffe layer name -> state-dict prefix of its module, in network order.

        Every ``Conv2d`` and ``PReLU`` is named like its Caffe layer, so importers place
        Caffe-named weights (``.caffemodel`` blobs, PyTorch ports that kept the names)
        without a hand-written table: ``{"conv1_1": "features.conv1_1", ...}``.
        """
        out = {path.rsplit(".", 1)[-1]: path for path, module in self.named_modules()
               if isinstance(module, (nn.Conv2d, nn.PReLU))}
        assert len(out) == sum(isinstance(m, (nn.Conv2d, nn.PReLU)) for m in self.modules())
        return out


class OpenPoseCOCO(OpenPoseVGG):
    """The CMU COCO model (CVPR'17): VGG-19 + 6 two-branch stages, 52,311,446 parameters.

    ``forward`` returns ``(heatmaps (N, 19, H/8, W/8), pafs (N, 38, H/8, W/8))`` in eval
    mode, one such pair per stage in training mode.
    """

    def __init__(self, stages: int = 6) -> None:
        super().__init__()
        self.spec = OPENPOSE_COCO18
        nh, npf = self.spec.num_heatmaps, self.spec.num_pafs
        self.features = _features(prelu_from=None)
        self.stages = nn.ModuleList(
            _TwoBranchStage(t, 128 if t == 1 else npf + nh + 128, npf, nh) for t in range(1, stages + 1)
        )
        # The CMU demo feeds BGR as x / 256 - 0.5 and pads with grey (128).
        self.input_config = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=128.0, stride=8, height=368)

    def forward(self, x: torch.Tensor) -> list[Fields] | Fields:
        features = self.features(x)
        out = [self.stages[0](features)]
        for stage in self.stages[1:]:
            hm, paf = out[-1]
            out.append(stage(torch.cat([paf, hm, features], dim=1)))  # concat_stageN: L1, L2, features
        return self._output(out)


class OpenPoseBody25(OpenPoseVGG):
    """The CMU BODY_25 model (arXiv 1812.08008): 4 PAF stages, then 2 heatmap stages.

    ``forward`` returns ``(heatmaps (N, 26, H/8, W/8), pafs (N, 52, H/8, W/8))`` in eval
    mode. In training mode it returns one pair per PAF stage; the heatmap stages come
    after all PAF stages, so the first pairs repeat the first heatmap stage and only the
    last pair holds the last heatmap stage (``forward_stages`` gives the plain lists).
    """

    def __init__(self) -> None:
        super().__init__()
        self.spec = OPENPOSE_BODY25
        nh, npf = self.spec.num_heatmaps, self.spec.num_pafs
        self.features = _features(prelu_from="conv4_2")
        # Caffe names: PAF stages are stage0..3 of branch L2, heatmap stages stage0..1 of L1.
        self.paf_stages = nn.ModuleList([
            _DenseStage("stage0_L2", 128, 96, 256, npf),
            *(_DenseStage(f"stage{t}_L2", 128 + npf, 128, 512, npf) for t in (1, 2, 3)),
        ])
        self.heatmap_stages = nn.ModuleList([
            _DenseStage("stage0_L1", 128 + npf, 96, 256, nh),
            _DenseStage("stage1_L1", 128 + nh + npf, 128, 512, nh),
        ])
        # OpenPose (C++) feeds BGR as x / 256 - 0.5; its resizeFixedAspectRatio pads with black.
        self.input_config = InputConfig("BGR", (128.0,) * 3, (256.0,) * 3, pad_value=0.0, stride=8, height=368)

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every stage's output: ``(heatmap stages, PAF stages)``, in network order."""
        features = self.features(x)
        pafs = [self.paf_stages[0](features)]
        for stage in self.paf_stages[1:]:
            pafs.append(stage(torch.cat([features, pafs[-1]], dim=1)))  # concat_stageN_L2
        paf = pafs[-1]
        heatmaps = [self.heatmap_stages[0](torch.cat([features, paf], dim=1))]  # concat_stage0_L1
        for stage in self.heatmap_stages[1:]:
            heatmaps.append(stage(torch.cat([features, heatmaps[-1], paf], dim=1)))  # concat_stage1_L1
        return heatmaps, pafs

    def forward(self, x: torch.Tensor) -> list[Fields] | Fields:
        heatmaps, pafs = self.forward_stages(x)
        pad = len(pafs) - len(heatmaps)
        return self._output([(heatmaps[max(i - pad, 0)], paf) for i, paf in enumerate(pafs)])


@register_model("openpose-coco")
def openpose_coco() -> OpenPoseCOCO:
    """The CMU COCO-18 model of Cao et al. 2017 (``pose_iter_440000.caffemodel``)."""
    return OpenPoseCOCO()


@register_model("openpose-body25")
def openpose_body25() -> OpenPoseBody25:
    """The CMU BODY_25 model of Cao et al. 2019 (``pose_iter_584000.caffemodel``)."""
    return OpenPoseBody25()
