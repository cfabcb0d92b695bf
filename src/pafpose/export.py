"""Export a network to ONNX or OpenVINO IR, for runtimes without PyTorch.

The exported graph takes what a deployment has at hand, ``image``: float32 N x 3 x H x W
BGR pixels 0..255 (an OpenCV image, resized and transposed), and normalises inside, like
the Open Model Zoo IRs; it returns ``heatmaps`` and ``pafs`` at 1/stride resolution. The
file's metadata names the architecture, skeleton, stride and input convention. Height and
width are dynamic where the format allows (``dynamic=True``), else fixed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from pafpose.errors import PafposeError
from pafpose.io import atomic_output
from pafpose.preprocess import Normalise

if TYPE_CHECKING:
    from pafpose.models._base import InputConfig

FORMATS = ("onnx", "openvino")


class _PixelInput(nn.Module):
    """BGR pixels in (NCHW, or NHWC as images are laid out), the network's normalisation and
    channel order inside the graph."""

    def __init__(self, net: nn.Module, input_config: InputConfig, nhwc: bool = False) -> None:
        super().__init__()
        self.normalise, self.net = Normalise(input_config, nhwc), net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.normalise(x))


class _LastStage(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out[-1] if isinstance(out, list) else out


def metadata(net: nn.Module, layout: str) -> dict[str, str]:
    ic, spec = net.input_config, net.spec
    return {
        "pafpose.architecture": type(net).__name__,
        "pafpose.skeleton": spec.skeleton.name,
        "pafpose.keypoints": json.dumps(list(spec.skeleton.keypoints)),
        "pafpose.limbs": json.dumps([list(limb) for limb in spec.limbs]),
        "pafpose.stride": str(spec.stride),
        "pafpose.input": f"float32 {layout} BGR pixels 0..255 (normalised inside)",
        "pafpose.pad_value": str(ic.pad_value),
    }


def export_onnx(net: nn.Module, path: str | Path, height: int | None = None, width: int | None = None,
                dynamic: bool = True, layout: str = "NCHW", opset: int = 17) -> Path:
    """Write ``net`` (eval mode, CPU, float32) as ONNX, atomically; returns the path.

    ``layout="NHWC"`` takes N x H x W x 3 pixels instead (what pafpose's CPU backends feed).
    """
    try:
        import onnx
    except ImportError as err:
        raise PafposeError(f"export to ONNX needs the onnx package: pip install onnx ({err})") from err

    net = net.eval().cpu().float()
    s = net.spec.stride
    h = height or net.input_config.height
    w = width or h
    if h % s or w % s:
        raise PafposeError(f"height and width must be multiples of the stride {s}, got {h}x{w}")
    if layout not in ("NCHW", "NHWC"):
        raise PafposeError(f"layout must be NCHW or NHWC, got {layout!r}")
    nhwc = layout == "NHWC"
    module = _PixelInput(_LastStage(net), net.input_config, nhwc=nhwc)
    module.eval()  # a new wrapper is in training mode, and exporting restores that mode on all of net
    example = torch.zeros((1, h, w, 3) if nhwc else (1, 3, h, w))
    hw = (1, 2) if nhwc else (2, 3)
    axes = {"image": {0: "batch", hw[0]: "height", hw[1]: "width"}, "heatmaps": {0: "batch", 2: "h", 3: "w"},
            "pafs": {0: "batch", 2: "h", 3: "w"}} if dynamic else {"image": {0: "batch"}}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(tmp), input_names=["image"], output_names=["heatmaps", "pafs"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        model = onnx.load(str(tmp))
        for key, value in metadata(net, layout).items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(tmp))

    return atomic_output(path, write)


def export_openvino(net: nn.Module, path: str | Path, height: int | None = None, width: int | None = None,
                    dynamic: bool = True) -> Path:
    """Write ``net`` as OpenVINO IR (``path`` .xml and its .bin, float32), both renamed into place."""
    try:
        import openvino as ov
    except ImportError as err:
        raise PafposeError("export to openvino: pip install openvino onnx") from err
    path = Path(path)
    if path.suffix != ".xml":
        raise PafposeError(f"{path}: an OpenVINO IR is an .xml file (with a .bin beside it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        onnx_path = export_onnx(net, tmpdir / "model.onnx", height, width, dynamic)
        model = ov.convert_model(str(onnx_path))
        for key, value in metadata(net, "NCHW").items():
            model.set_rt_info(value, ["model_info", key])
        ov.save_model(model, str(tmpdir / "model.xml"), compress_to_fp16=False)
        os.replace(tmpdir / "model.bin", path.with_suffix(".bin"))
        os.replace(tmpdir / "model.xml", path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path
