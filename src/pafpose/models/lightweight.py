"""Lightweight OpenPose (Osokin, arXiv 1811.12004) and Open Model Zoo human-pose-estimation-0001.

MobileNetV1 features (stride 8, last block dilated) -> CPM -> initial stage -> N refinement
stages. Module names follow the reference PyTorch implementation (``model``, ``cpm``,
``initial_stage``, ``refinement_stages``) so its checkpoints load by name.

human-pose-estimation-0001 is the deployed variant: batch-norm folded into the
convolutions (so every convolution has a bias and there is no BN), an extra 1x1 ``red``
convolution and ELU on the CPM's align convolution, biases in the CPM trunk, and
refinement input concatenated as [PAFs, heatmaps, features].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pafpose.errors import PafposeError
from pafpose.fields import OPENPOSE_COCO18
from pafpose.models._base import InputConfig, PafModel
from pafpose.models._registry import register_model


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1,
         bias: bool = True, bn: bool = False, act: str | None = "relu") -> nn.Sequential:
    """Conv (+ BN) (+ activation), 'same' padding."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "elu":
        layers.append(nn.ELU(inplace=True))
    return nn.Sequential(*layers)


def conv_dw(cin: int, cout: int, stride: int = 1, dilation: int = 1, bn: bool = True) -> nn.Sequential:
    """Depthwise-separable MobileNetV1 block: 3x3 depthwise, 1x1 pointwise, each BN + ReLU."""
    dw = conv(cin, cin, 3, stride, dilation, groups=cin, bias=not bn, bn=bn)
    pw = conv(cin, cout, 1, bias=not bn, bn=bn)
    return nn.Sequential(*dw, *pw)


class Cpm(nn.Module):
    def __init__(self, cin: int, c: int, deployed: bool) -> None:
        super().__init__()
        self.deployed = deployed
        self.align = conv(cin, c, 1, act="elu" if deployed else "relu")
        trunk: list[nn.Module] = [conv(c, c, 1, act="elu")] if deployed else []
        for _ in range(3):
            trunk.append(nn.Sequential(*conv(c, c, 3, groups=c, bias=deployed, act="elu"),
                                       *conv(c, c, 1, bias=deployed, act="elu")))
        self.trunk = nn.Sequential(*trunk)
        self.conv = conv(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        return self.conv(x + self.trunk(x))


class InitialStage(nn.Module):
    def __init__(self, c: int, n_heatmaps: int, n_pafs: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(conv(c, c), conv(c, c), conv(c, c))
        self.heatmaps = nn.Sequential(conv(c, 512, 1), conv(512, n_heatmaps, 1, act=None))
        self.pafs = nn.Sequential(conv(c, 512, 1), conv(512, n_pafs, 1, act=None))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        return self.heatmaps(x), self.pafs(x)


class RefinementBlock(nn.Module):
    def __init__(self, cin: int, c: int, bn: bool) -> None:
        super().__init__()
        self.initial = conv(cin, c, 1)
        self.trunk = nn.Sequential(conv(c, c, bn=bn), conv(c, c, dilation=2, bn=bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    def __init__(self, cin: int, c: int, n_heatmaps: int, n_pafs: int, bn: bool) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*(RefinementBlock(cin if i == 0 else c, c, bn) for i in range(5)))
        self.heatmaps = nn.Sequential(conv(c, c, 1), conv(c, n_heatmaps, 1, act=None))
        self.pafs = nn.Sequential(conv(c, c, 1), conv(c, n_pafs, 1, act=None))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        return self.heatmaps(x), self.pafs(x)


class LightweightOpenPose(PafModel):
    """MobileNetV1 + CPM + initial stage + ``refinement_stages`` refinement stages.

    Args:
        refinement_stages: number of refinement stages (the paper's best speed/accuracy: 1).
        channels: width of the CPM and the stages.
        deployed: the human-pose-estimation-0001 variant (see module docstring).
    """

    def __init__(self, refinement_stages: int = 1, channels: int = 128, deployed: bool = False) -> None:
        super().__init__()
        if refinement_stages < 0:
            raise PafposeError(f"refinement_stages must be >= 0, got {refinement_stages}")
        self.spec = OPENPOSE_COCO18
        self.deployed = deployed
        bn = not deployed
        nh, npf = self.spec.num_heatmaps, self.spec.num_pafs
        self.model = nn.Sequential(
            conv(3, 32, stride=2, bias=deployed, bn=bn),
            conv_dw(32, 64, bn=bn), conv_dw(64, 128, stride=2, bn=bn),
            conv_dw(128, 128, bn=bn), conv_dw(128, 256, stride=2, bn=bn),
            conv_dw(256, 256, bn=bn), conv_dw(256, 512, bn=bn),
            conv_dw(512, 512, dilation=2, bn=bn),
            *(conv_dw(512, 512, bn=bn) for _ in range(4)),
        )
        self.cpm = Cpm(512, channels, deployed)
        self.initial_stage = InitialStage(channels, nh, npf)
        self.refinement_stages = nn.ModuleList(
            RefinementStage(channels + nh + npf, channels, nh, npf, bn) for _ in range(refinement_stages)
        )
        # Lightweight OpenPose trains on (x - 128) / 256 of BGR; the deployed IR computes
        # x * f16(1/255) + f16(-128/255) inside its graph, i.e. (x - 128) / 255.0039.
        mean, std = (128.0, 256.0) if not deployed else (128.0, 1.0 / float(np.float16(1 / 255)))
        self.input_config = InputConfig("BGR", (mean,) * 3, (std,) * 3, pad_value=0.0, stride=8, height=368)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | tuple[torch.Tensor, torch.Tensor]:
        features = self.cpm(self.model(x))
        stages = [self.initial_stage(features)]
        for stage in self.refinement_stages:
            hm, paf = stages[-1]
            inp = torch.cat([paf, hm, features] if self.deployed else [features, hm, paf], dim=1)
            stages.append(stage(inp))
        return self._output(stages)

    def from_openvino(self, raw: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """State dict from the human-pose-estimation-0001 IR's layer names."""
        if not self.deployed:
            raise PafposeError("OpenVINO IR weights are for the deployed variant (human-pose-estimation-0001)")
        state: dict[str, torch.Tensor] = {}

        def put(ir_name: str, module: str) -> None:
            if f"{ir_name}.weight" not in raw:
                raise PafposeError(f"the IR has no layer {ir_name}: not a human-pose-estimation-0001 file")
            state[f"{module}.weight"] = torch.from_numpy(raw[f"{ir_name}.weight"].copy())
            state[f"{module}.bias"] = torch.from_numpy(raw[f"{ir_name}.bias"].copy())

        put("conv1", "model.0.0")
        blocks = ["conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2",
                  "conv5_1", "conv5_2", "conv5_3", "conv5_4", "conv5_5"]
        for i, b in enumerate(blocks, start=1):
            put(f"{b}/dw", f"model.{i}.0")
            put(f"{b}/sep", f"model.{i}.2")
        put("conv4_3_CPM/al", "cpm.align.0")
        put("conv4_3_CPM/red", "cpm.trunk.0.0")
        for j, (dw, pw) in enumerate([("dw1", "dw1/1x1"), ("dw2", "dw2/1x1"), ("dw3", "inc")], start=1):
            put(f"conv4_3_CPM/{dw}", f"cpm.trunk.{j}.0")
            put(f"conv4_3_CPM/{pw}", f"cpm.trunk.{j}.2")
        put("conv4_4_CPM", "cpm.conv.0")
        for j in range(3):
            put(f"conv5_{j + 1}_CPM_L1", f"initial_stage.trunk.{j}.0")
        for head, branch in (("pafs", "L1"), ("heatmaps", "L2")):
            put(f"conv5_4_CPM_{branch}", f"initial_stage.{head}.0.0")
            put(f"conv5_5_CPM_{branch}", f"initial_stage.{head}.1.0")
        for s, stage in enumerate(self.refinement_stages):
            ir_stage = s + 2
            for b in range(len(stage.trunk)):
                pre, mod = f"Mconv{b + 1}_stage{ir_stage}_L1", f"refinement_stages.{s}.trunk.{b}"
                put(f"{pre}/sq", f"{mod}.initial.0")
                put(f"{pre}/3x3", f"{mod}.trunk.0.0")
                put(f"{pre}/3x3/2", f"{mod}.trunk.1.0")
            for head, branch in (("pafs", "L1"), ("heatmaps", "L2")):
                put(f"Mconv6_stage{ir_stage}_{branch}", f"refinement_stages.{s}.{head}.0.0")
                put(f"Mconv7_stage{ir_stage}_{branch}", f"refinement_stages.{s}.{head}.1.0")
        if "@input.scale" in raw and "@input.shift" in raw:
            scale, shift = float(raw["@input.scale"][0]), raw["@input.shift"].astype(float)
            mean, std = self.input_config.mean, self.input_config.std
            means = [-v / scale for v in shift]
            if abs(1.0 / scale - std[0]) > 1e-3 or any(abs(a - m) > 1e-3 for a, m in zip(means, mean, strict=True)):
                raise PafposeError(f"the IR normalises input as x * {scale:g} + {shift.tolist()}, "
                                   f"not as human-pose-estimation-0001 does")
        return state


@register_model("lightweight-openpose")
def lightweight_openpose(refinement_stages: int = 1) -> LightweightOpenPose:
    """Lightweight OpenPose as trained by its authors (with batch-norm)."""
    return LightweightOpenPose(refinement_stages=refinement_stages)


@register_model("human-pose-estimation-0001")
def human_pose_estimation_0001(refinement_stages: int = 1) -> LightweightOpenPose:
    """Open Model Zoo human-pose-estimation-0001 (batch-norm folded, 4,099,058 parameters)."""
    return LightweightOpenPose(refinement_stages=refinement_stages, deployed=True)
