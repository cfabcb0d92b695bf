"""Where the network runs: PyTorch, ONNX Runtime or OpenVINO.

Everything around the network (resize, padding, test-time augmentation, the decoder) is
the Estimator's and the same for every backend; a backend maps a normalised NCHW float32
batch to ``(heatmaps, pafs)`` tensors at feature resolution. ONNX Runtime and OpenVINO are
optional (``pip install 'pafpose[onnx]'`` / ``'pafpose[openvino]'``) and run on the CPU.

The ONNX file a backend needs is exported once per network and weights and kept under
``$PAFPOSE_HOME/exported`` (written atomically), so later starts skip the export. OpenVINO
runs a network's own IR when its weights came from one (human-pose-estimation-0001's
INT8 IR runs in INT8, as the Open Model Zoo ships it); otherwise the exported ONNX file.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pafpose.errors import PafposeError

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "openvino")
Fields = tuple[torch.Tensor, torch.Tensor]


def fuse_conv_bn(net: nn.Module) -> nn.Module:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` in a ``Sequential`` into
    the convolution (eval mode only): one layer less per pair at inference, same outputs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, conv), (bn_name, bn) in itertools.pairwise(children):
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
                    and bn.running_mean is not None):
                setattr(module, name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
                setattr(module, bn_name, nn.Identity())
    return net


class TorchBackend:
    """The PyTorch network: channels-last memory, batch-norm folded, autocast on a GPU."""

    name = "torch"

    def __init__(self, net: nn.Module, device: torch.device, dtype: torch.dtype | None = None,
                 optimize: bool = True) -> None:
        self.net, self.device, self.dtype = net, device, dtype
        if optimize:
            fuse_conv_bn(net)
            net.to(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> Fields:
        x = x.to(self.device, non_blocking=True)
        if self.dtype is None:
            return self.net(x)
        with torch.autocast(self.device.type, dtype=self.dtype):
            hm, paf = self.net(x)
        return hm.float(), paf.float()


def _state_digest(net: nn.Module) -> str:
    h = hashlib.sha256(type(net).__name__.encode())
    for key, value in net.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def exported_onnx(net: nn.Module, name: str) -> Path:
    """The network as a dynamic-shape ONNX file in the cache (exported on first use)."""
    from pafpose.export import export_onnx
    from pafpose.weights import cache_dir

    path = cache_dir() / "exported" / f"{name}-{_state_digest(net)}.onnx"
    if not path.is_file():
        export_onnx(net, path, dynamic=True, normalise=False)
    return path


class OnnxRuntimeBackend:
    """ONNX Runtime's CPU provider on the exported network."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise PafposeError("backend onnxruntime: pip install 'pafpose[onnx]'") from err
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> Fields:
        hm, paf = self.session.run(None, {self.input: np.ascontiguousarray(x.cpu().numpy())})
        return torch.from_numpy(hm), torch.from_numpy(paf)


class OpenVINOBackend:
    """OpenVINO's CPU plugin, latency mode, on an IR or ONNX file.

    ``raw_pixels``: the file normalises inside (as Open Model Zoo IRs do), so the normalised
    input is turned back into pixels by a pre-processing step that OpenVINO folds into the
    first layer's constants.
    """

    name = "openvino"

    def __init__(self, path: str | Path, threads: int | None = None,
                 raw_pixels: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise PafposeError("backend openvino: pip install 'pafpose[openvino]'") from err
        core = ov.Core()
        model = core.read_model(str(path))
        model.reshape({model.inputs[0]: ov.PartialShape([-1, 3, -1, -1])})
        if raw_pixels is not None:
            mean, std = raw_pixels
            ppp = ov.preprocess.PrePostProcessor(model)
            # x_pixels = x * std + mean = (x - (-mean / std)) / (1 / std)
            ppp.input().preprocess().mean([-m / s for m, s in zip(mean, std, strict=True)]).scale(
                [1.0 / s for s in std])
            model = ppp.build()
        # f32: on CPUs with bfloat16 units OpenVINO would otherwise compute in bfloat16, and the
        # fields would differ from the other backends' by far more than rounding
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        names = [sorted(o.get_names()) for o in self.compiled.outputs]
        # heatmaps have fewer channels than PAFs in every layout pafpose knows
        self._order = sorted(range(len(names)), key=lambda i: self.compiled.outputs[i].get_partial_shape()[1]
                             .get_length())

    def __call__(self, x: torch.Tensor) -> Fields:
        self.request.infer({0: np.ascontiguousarray(x.cpu().numpy())})
        outs = [self.request.get_output_tensor(i).data for i in self._order]
        return torch.from_numpy(outs[0].copy()), torch.from_numpy(outs[1].copy())


def make_backend(kind: str, net: nn.Module, device: torch.device, dtype: torch.dtype | None = None,
                 threads: int | None = None, name: str = "model", ir: Path | None = None,
                 optimize: bool = True) -> Any:
    """A backend of ``kind`` for ``net``; ``ir``: the network's own OpenVINO IR, if it has one;
    ``optimize``: let the torch backend fold batch-norm (not for a network still training)."""
    if kind not in BACKENDS:
        raise PafposeError(f"unknown backend {kind!r}; known: {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise PafposeError(f"threads must be at least 1, got {threads}")
    if kind == "torch":
        if threads:
            torch.set_num_threads(int(threads))
        return TorchBackend(net, device, dtype, optimize=optimize)
    if device.type != "cpu":
        raise PafposeError(f"backend {kind} runs on the CPU; use --backend torch for {device}")
    if dtype is not None:
        raise PafposeError(f"backend {kind} runs float32 (float16/bfloat16 are for --backend torch on a GPU)")
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(exported_onnx(net, name), threads)
    ic = net.input_config
    if ir is not None:
        try:
            return OpenVINOBackend(ir, threads, raw_pixels=(ic.mean, ic.std))
        except RuntimeError as err:  # e.g. an IR version this runtime no longer reads
            log.warning("OpenVINO can't run %s (%s); running the exported network instead", ir,
                        str(err).splitlines()[0])
    return OpenVINOBackend(exported_onnx(net, name), threads)
