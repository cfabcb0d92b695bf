"""tf-pose-estimation's MobileNetV2 OpenPose family (``mobilenet_v2_*`` graphs).

Topology, as the published files have it (read from ``graph_opt.pb`` and the four
``mobilenet_v2_pose_dm*`` TFLite files):

* Backbone: the first 14 layers of slim's MobileNetV2 (``Conv`` + ``expanded_conv`` ...
  ``expanded_conv_12``) at width multiplier ``width``, TF ``SAME`` padding (asymmetric
  on stride 2), ReLU6. Features: ``concat(expanded_conv_5, upsample(expanded_conv_12))``,
  stride 8, the upsampling being TF1's legacy bilinear resize (no half-pixel centres).
* Six OpenPose stages, each with a PAF branch (TF ``L1``) and a heatmap branch (``L2``) of
  five separable layers (depthwise + pointwise conv, BN, ReLU; the last without ReLU).
  Stages 2-6 read ``concat(pafs, heatmaps, features)``. The file's output
  ``concat_stage7`` is ``[heatmaps | pafs]``.

Normalisation of the backbone differs by file:

* ``"small"`` (``graph_opt.pb``): the backbone's 39 FusedBatchNorm nodes were frozen with
  ``is_training=True`` and no statistics, so TensorFlow normalises with the *batch*
  statistics of each call. :class:`TFBatchNorm` with ``batch_stats=True`` reproduces
  that: per-image mean and (biased) variance over H, W at inference (the single-image
  batch TF sees; images of a batch don't influence each other), batch statistics over
  N, H, W in training. The head's BNs are ordinary (moving statistics, no scale).
* ``"dm05"``, ``"dm07"``, ``"dm10"``, ``"dm14"`` (TFLite): BN folded into conv biases.

Input: no graph normalises its input. The TFLite files take raw BGR 0..255 (their
documented input; BGR also fits COCO ground truth better than RGB), and so does the
GraphDef, whose per-image BN right after the first convolution makes its output nearly
independent of any input scale and offset anyway. So :attr:`input_config` is BGR with
``mean=0, std=1`` and the module itself applies no normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from pafpose.errors import PafposeError
from pafpose.fields import OPENPOSE_COCO18
from pafpose.models._base import Fields, InputConfig, PafModel
from pafpose.models._registry import register_model

Norm = Literal["batch_stats", "bn", "bias", "none"]

# tf-pose's PAF layout, measured: projecting each channel pair's field on annotated limbs
# of COCO single-person photos, limb i of COCO18.limbs (pointing from limbs[i][0] to
# limbs[i][1]) lies in the same (x, y) channels as in the CMU COCO model, for graph_opt.pb,
# dm10 and dm14 with clear margins (dm05/dm07 agree, with weaker fields). See
# tests/test_import_tensorflow.py::test_paf_layout_against_coco_ground_truth.
TF_POSE_COCO18 = OPENPOSE_COCO18


@dataclass(frozen=True)
class Variant:
    """What distinguishes the published weight sets.

    Attributes:
        width: MobileNetV2 width (depth) multiplier.
        head: channels of the OpenPose stages (stage 1's 4th layer has 4x as many).
        folded: BN folded into conv biases (TFLite) rather than BN layers (GraphDef).
    """

    width: float
    head: int
    folded: bool


VARIANTS: dict[str, Variant] = {
    "small": Variant(0.5, 64, folded=False),
    "dm05": Variant(0.5, 64, folded=True),
    "dm07": Variant(0.75, 96, folded=True),
    "dm10": Variant(1.0, 128, folded=True),
    "dm14": Variant(1.4, 128, folded=True),
}

# slim MobileNetV2 (expansion t, channels c, repeats n, stride s), up to expanded_conv_12.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
_FEATURE_BLOCK = 5  # expanded_conv_5: the stride-8 features, concatenated with the last block's


def make_divisible(v: float, divisor: int = 8) -> int:
    """slim's channel rounding for width multipliers (never more than 10 % down)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class TFBatchNorm(nn.Module):
    """TensorFlow's FusedBatchNorm (eps 1e-3), with the two modes the files use.

    Args:
        channels: number of channels.
        scale: whether a learned gamma exists (slim's ``scale=False`` fixes it to 1).
        batch_stats: normalise with the statistics of the input itself, as a graph frozen
            with ``is_training=True`` does: per image over (H, W) in eval mode (the single
            image TF normalised), over (N, H, W) in training mode. No running statistics.
    """

    def __init__(self, channels: int, scale: bool = True, batch_stats: bool = False, eps: float = 1e-3,
                 momentum: float = 0.01) -> None:
        super().__init__()
        self.batch_stats, self.eps, self.momentum = batch_stats, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels))
        if not batch_stats:
            self.register_buffer("running_mean", torch.zeros(channels))
            self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_stats:
            if self.training:
                return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.bias.numel()}, scale={self.weight is not None}, batch_stats={self.batch_stats}"


class ConvUnit(nn.Module):
    """Conv with TF ``SAME`` padding, then normalisation and activation.

    ``norm``: ``"batch_stats"`` / ``"bn"`` (a :class:`TFBatchNorm`), ``"bias"`` (a conv
    bias: BN folded) or ``"none"``.
    """

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, norm: Norm = "bias",
                 scale: bool = True, act: Literal["relu6", "relu"] | None = None) -> None:
        super().__init__()
        self.stride, self.k = stride, k
        pad = 0 if stride > 1 else k // 2  # stride 2: TF pads bottom/right more, done in forward
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=norm == "bias")
        self.bn = TFBatchNorm(cout, scale, norm == "batch_stats") if norm in ("bn", "batch_stats") else None
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            pads = []
            for size in (x.shape[-1], x.shape[-2]):
                total = max((math.ceil(size / self.stride) - 1) * self.stride + self.k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act == "relu6":
            return F.relu6(x)
        return F.relu(x) if self.act == "relu" else x


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (absent for t=1), 3x3 depthwise, 1x1 linear project."""

    def __init__(self, cin: int, cout: int, t: int, stride: int, norm: Norm) -> None:
        super().__init__()
        hidden = cin * t
        self.expand = ConvUnit(cin, hidden, 1, norm=norm, act="relu6") if t != 1 else None
        self.depthwise = ConvUnit(hidden, hidden, 3, stride, groups=hidden, norm=norm, act="relu6")
        self.project = ConvUnit(hidden, cout, 1, norm=norm)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


def resize_bilinear_tf(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``ResizeBilinear`` with ``align_corners=False, half_pixel_centers=False``.

    Source coordinate ``dst * in / out`` (no half-pixel shift), which ``F.interpolate`` has
    no mode for.
    """
    out: torch.Tensor = x
    for dim, n_out in ((-2, size[0]), (-1, size[1])):
        n_in = x.shape[dim]
        src = torch.arange(n_out, device=x.device, dtype=torch.float32) * (n_in / n_out)
        i0 = src.floor().long().clamp(max=n_in - 1)
        i1 = (i0 + 1).clamp(max=n_in - 1)
        frac = (src - i0.float()).to(x.dtype)
        a, b = out.index_select(dim, i0), out.index_select(dim, i1)
        frac = frac.view(-1, 1) if dim == -2 else frac
        out = a + (b - a) * frac
    return out


class Branch(nn.Module):
    """One OpenPose stage branch: five separable (depthwise + pointwise) layers."""

    def __init__(self, cin: int, c: int, wide: int, cout: int, folded: bool) -> None:
        super().__init__()
        norm: Norm = "bias" if folded else "bn"
        layers = []
        for i, (k, width) in enumerate(((3, c), (3, c), (3, c), (1, wide), (1, cout))):
            last = i == 4
            layers.append(nn.ModuleDict({
                "depthwise": ConvUnit(cin, cin, k, groups=cin, norm="none"),
                "pointwise": ConvUnit(cin, width, 1, norm=norm, scale=False, act=None if last else "relu"),
            }))
            cin = width
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer["pointwise"](layer["depthwise"](x))
        return x


class Stage(nn.Module):
    def __init__(self, cin: int, c: int, wide: int, n_heatmaps: int, n_pafs: int, folded: bool) -> None:
        super().__init__()
        self.pafs = Branch(cin, c, wide, n_pafs, folded)  # TF "L1"
        self.heatmaps = Branch(cin, c, wide, n_heatmaps, folded)  # TF "L2"

    def forward(self, x: torch.Tensor) -> Fields:
        return self.heatmaps(x), self.pafs(x)


class MobileNetV2OpenPose(PafModel):
    """tf-pose-estimation's MobileNetV2 + 6-stage OpenPose network.

    Args:
        variant: ``"small"`` (``graph_opt.pb`` of ``mobilenet_v2_small``: width 0.5,
            per-image BN in the backbone) or ``"dm05"``, ``"dm07"``, ``"dm10"``, ``"dm14"``
            (the ``mobilenet_v2_pose_dm*`` TFLite files: width 0.5 / 0.75 / 1.0 / 1.4,
            BN folded).
        stages: number of OpenPose stages (the files have 6).

    Example:
        >>> model = MobileNetV2OpenPose("dm10").eval()
        >>> heatmaps, pafs = model(torch.zeros(1, 3, 368, 432))  # (1, 19, 46, 54), (1, 38, 46, 54)
    """

    def __init__(self, variant: str = "small", stages: int = 6) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise PafposeError(f"unknown tf-pose-mobilenet-v2 variant {variant!r}; known: {', '.join(VARIANTS)}")
        if stages < 1:
            raise PafposeError(f"stages must be >= 1, got {stages}")
        self.variant = variant
        v = VARIANTS[variant]
        self.spec = TF_POSE_COCO18
        self.input_config = InputConfig("BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad_value=0.0, stride=8,
                                        height=368)
        norm: Norm = "bias" if v.folded else "batch_stats"
        stem = make_divisible(32 * v.width)
        self.conv = ConvUnit(3, stem, 3, 2, norm=norm, act="relu6")
        blocks, cin, widths = [], stem, []
        for t, c, n, s in _BLOCKS:
            cout = make_divisible(c * v.width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, t, s if i == 0 else 1, norm))
                widths.append(cout)
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        features = widths[_FEATURE_BLOCK] + widths[-1]
        nh, npf = self.spec.num_heatmaps, self.spec.num_pafs
        self.stages = nn.ModuleList(
            Stage(features if i == 0 else features + nh + npf, v.head, 4 * v.head if i == 0 else v.head, nh, npf,
                  v.folded)
            for i in range(stages)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Stride-8 features: ``concat(expanded_conv_5, upsample(expanded_conv_12))``."""
        x = self.conv(x)
        low = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == _FEATURE_BLOCK:
                low = x
        return torch.cat([low, resize_bilinear_tf(x, (low.shape[-2], low.shape[-1]))], dim=1)

    def forward(self, x: torch.Tensor) -> list[Fields] | Fields:
        feats = self.features(x)
        outputs = [self.stages[0](feats)]
        for stage in self.stages[1:]:
            hm, paf = outputs[-1]
            outputs.append(stage(torch.cat([paf, hm, feats], dim=1)))
        return self._output(outputs)

    def tf_scopes(self) -> dict[str, str]:
        """Module path of each :class:`ConvUnit` -> its TensorFlow variable scope.

        The scope is what both file formats name the layer by: ``SCOPE/Conv2D`` (GraphDef)
        or ``SCOPE/weights`` (TFLite).
        """
        scopes = {"conv": "MobilenetV2/Conv"}
        for i, block in enumerate(self.blocks):
            base = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            for part in ("expand", "depthwise", "project"):
                if getattr(block, part) is not None:
                    scopes[f"blocks.{i}.{part}"] = f"{base}/{part}"
        for s in range(len(self.stages)):
            for branch, tf_branch in (("pafs", "L1"), ("heatmaps", "L2")):
                for j in range(5):
                    for part in ("depthwise", "pointwise"):
                        scopes[f"stages.{s}.{branch}.layers.{j}.{part}"] = (
                            f"Openpose/MConv_Stage{s + 1}_{tf_branch}_{j + 1}_{part}")
        return scopes


    def from_openvino(self, raw: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """State dict from an OpenVINO IR converted from these TF graphs (layers keep TF names).

        Such IRs fold batch-norm into biases, so they load into the folded (``dm*``) variants.
        """
        if not VARIANTS[self.variant].folded:
            raise PafposeError(f"IR weights have batch-norm folded: load them into a dm* variant, not {self.variant}")
        state: dict[str, torch.Tensor] = {}
        for path, scope in self.tf_scopes().items():
            layer = f"{scope}/depthwise" if scope.endswith("depthwise") else f"{scope}/Conv2D"
            if f"{layer}.weight" not in raw:
                raise PafposeError(f"the IR has no layer {layer}: not a tf-pose MobileNetV2 file")
            stride = raw.get(f"{layer}.@strides")
            unit = self.get_submodule(path)
            if stride is not None and int(stride[0]) != unit.stride:
                raise PafposeError(f"IR layer {layer} has stride {int(stride[0])}, the model {unit.stride}")
            state[f"{path}.conv.weight"] = torch.from_numpy(raw[f"{layer}.weight"].copy())
            if unit.conv.bias is not None:
                if f"{layer}.bias" not in raw:
                    raise PafposeError(f"IR layer {layer} has no bias; the model's {path} needs one")
                state[f"{path}.conv.bias"] = torch.from_numpy(raw[f"{layer}.bias"].copy())
        return state


@register_model("tf-pose-mobilenet-v2")
def tf_pose_mobilenet_v2(variant: str = "small", stages: int = 6) -> MobileNetV2OpenPose:
    """tf-pose-estimation's MobileNetV2 OpenPose (``variant``: small, dm05, dm07, dm10, dm14)."""
    return MobileNetV2OpenPose(variant, stages)
