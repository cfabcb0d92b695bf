"""What every PAF network declares: its input convention and its field layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from pafpose.fields import FieldSpec


@dataclass(frozen=True)
class InputConfig:
    """How an image must be prepared for a network.

    It belongs to the weights: a zoo entry states its own (``PretrainedCfg.input_config``),
    an architecture's is the fallback (for new networks and unknown files), and loading
    attaches the resolved one as ``net.input_config`` (:func:`pafpose.weights.resolve_input_config`).

    The network sees ``(pixel - mean) / std`` per channel, pixels in 0..255 in
    ``channel_order``; padding to a multiple of ``stride`` uses ``pad_value`` (0..255).

    Attributes:
        channel_order: ``"BGR"`` (as OpenCV reads) or ``"RGB"``.
        mean: per channel, in 0..255 units, in ``channel_order``.
        std: per channel, in 0..255 units.
        pad_value: pixel value of padding, 0..255.
        stride: output stride; input sides must be multiples of it.
        height: default inference input height.
    """

    channel_order: Literal["BGR", "RGB"] = "BGR"
    mean: tuple[float, float, float] = (128.0, 128.0, 128.0)
    std: tuple[float, float, float] = (256.0, 256.0, 256.0)
    pad_value: float = 0.0
    stride: int = 8
    height: int = 368

    def summary(self) -> str:
        """One line, as ``pafpose models`` prints it: ``height 368, BGR, mean 128, std 256, pad 0, stride 8``."""

        def values(v: tuple[float, ...]) -> str:
            return f"{v[0]:g}" if len(set(v)) == 1 else "/".join(f"{x:g}" for x in v)

        return (f"height {self.height}, {self.channel_order}, mean {values(self.mean)}, std {values(self.std)}, "
                f"pad {self.pad_value:g}, stride {self.stride}")


Fields = tuple[torch.Tensor, torch.Tensor]


class PafModel(nn.Module):
    """Base class: a network from a normalised image to (heatmaps, PAFs).

    ``forward(x)`` returns, in training mode, the list of every stage's
    ``(heatmaps, pafs)`` (for intermediate supervision); in eval mode only the last
    stage's pair. Channel layouts follow ``self.spec``.
    """

    spec: FieldSpec
    input_config: InputConfig

    def _output(self, stages: list[Fields]) -> list[Fields] | Fields:
        return stages if self.training else stages[-1]

    def num_parameters(self) -> int:
        """Number of parameters (the figure published model summaries give)."""
        return sum(p.numel() for p in self.parameters())
