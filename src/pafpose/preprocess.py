"""Normalisation: the one place where BGR pixels become what a network sees, and back.

A network sees ``(pixel - mean) / std`` per channel, in its channel order, as its
:class:`~pafpose.models.InputConfig` says. Inference and export build :class:`Normalise`
into the graph (the torch backend, ONNX and OpenVINO files), training data uses
:func:`normalise` on its crops, and the training pictures :func:`denormalise`: written once,
so that training, inference and deployment cannot drift apart. The arithmetic is float32
``(x - mean) / std`` everywhere, in that order, so every path gives the same bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from pafpose.models._base import InputConfig


def normalise(pixels: np.ndarray, input_config: InputConfig) -> np.ndarray:
    """``... x 3`` BGR pixels 0..255 (channels last, any dtype) -> float32 network input,
    channels last, in the network's channel order."""
    ic = input_config
    x = pixels.astype(np.float32)
    if ic.channel_order == "RGB":
        x = x[..., ::-1]
    return (x - np.array(ic.mean, np.float32)) / np.array(ic.std, np.float32)


def denormalise(x: np.ndarray, input_config: InputConfig) -> np.ndarray:
    """The inverse of :func:`normalise`: float32 BGR pixels, channels last, not clipped (a
    network's input or a training crop, to be looked at)."""
    ic = input_config
    pixels = np.asarray(x, np.float32) * np.array(ic.std, np.float32) + np.array(ic.mean, np.float32)
    return pixels[..., ::-1] if ic.channel_order == "RGB" else pixels


class Normalise(nn.Module):
    """:func:`normalise` as a layer, for graphs: N x 3 x H x W BGR pixels (uint8 or float32),
    or N x H x W x 3 with ``nhwc`` (the layout images have), -> float32 N x 3 x H x W network
    input (from NHWC input, a channels-last view: no copy of the pixels before the arithmetic).
    """

    def __init__(self, input_config: InputConfig, nhwc: bool = False) -> None:
        super().__init__()
        ic = input_config
        self.nhwc, self.rgb = nhwc, ic.channel_order == "RGB"
        self.register_buffer("mean", torch.tensor(ic.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(ic.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        if self.rgb:
            x = x.flip(1)
        return (x - self.mean) / self.std
