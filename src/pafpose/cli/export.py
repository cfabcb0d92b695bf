"""pafpose export --model M --format onnx|openvino --out FILE: the network for other runtimes.

The exported graph takes float32 N x 3 x H x W BGR pixels 0..255 (normalisation inside) and
returns the last stage's heatmaps and PAFs; the file's metadata names the skeleton and
stride. --dynamic (the default unless --height/--width are given) leaves batch, height and
width free; otherwise they are fixed (the batch stays free). The export is checked against
PyTorch on a test input before the command reports success.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import MAX_SIDE, number

    p = sub.add_parser("export", help="export a network to ONNX or OpenVINO IR",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="zoo name or architecture (default human-pose-estimation-0001, or with "
                   "--weights the architecture a pafpose checkpoint names)")
    p.add_argument("--weights", type=Path, help="weights file (instead of the zoo's), e.g. a pafpose checkpoint")
    p.add_argument("--format", choices=("onnx", "openvino"), required=True)
    p.add_argument("--out", type=Path, required=True, help="output file (.onnx, or .xml for openvino)")
    side = number(1, MAX_SIDE, integer=True)
    p.add_argument("--height", type=side, help="fixed input height (a multiple of the stride)")
    p.add_argument("--width", type=side, help="fixed input width (a multiple of the stride)")
    p.add_argument("--dynamic", action="store_true", help="free height and width (the default without --height)")
    p.set_defaults(func=run)


def check(net: object, path: Path, fmt: str, height: int, width: int) -> float:
    """Largest difference between the exported file's outputs and PyTorch's on one input."""
    import numpy as np
    import torch

    from pafpose.export import _PixelInput

    x = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    with torch.no_grad():
        ref = _PixelInput(net, net.input_config).eval()(torch.from_numpy(x))
    if fmt == "onnx":
        import onnxruntime as ort

        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    else:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled(x)
        got = [result[compiled.outputs[0]], result[compiled.outputs[1]]]
    return max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref, strict=True))


def run(args: argparse.Namespace) -> int:
    from pafpose.errors import PafposeError
    from pafpose.export import export_onnx, export_openvino
    from pafpose.weights import resolve

    if args.dynamic and (args.height or args.width):
        raise PafposeError("--dynamic leaves height and width free: give it or --height/--width, not both")
    if args.out.is_dir():
        raise PafposeError(f"--out {args.out}: is a folder; name a file")
    wanted = {"onnx": ".onnx", "openvino": ".xml"}[args.format]
    if args.out.suffix.lower() != wanted:
        raise PafposeError(f"--out {args.out}: a {args.format} file is named *{wanted}")
    net = resolve(args.model, args.weights).network
    s = net.spec.stride
    height = args.height or net.input_config.height
    width = args.width or height
    for name, value in (("--height", height), ("--width", width)):
        if value < s or value % s:
            raise PafposeError(f"{name} must be a positive multiple of the stride {s}, got {value}")
    dynamic = not (args.height or args.width)
    if args.format == "onnx":
        out = export_onnx(net, args.out, height, width, dynamic=dynamic)
    else:
        out = export_openvino(net, args.out, height, width, dynamic=dynamic)
    error = check(net, out, args.format, height, width)
    shape = "N x 3 x H x W (dynamic)" if dynamic else f"N x 3 x {height} x {width}"
    print(f"wrote {out}: input 'image' {shape} BGR pixels 0..255, outputs 'heatmaps', 'pafs'; "
          f"largest difference from PyTorch {error:.2g}")
    if error > 1e-3:
        raise PafposeError(f"{out}: its outputs differ from PyTorch's by {error:.3g}")
    return 0
