"""Where the network runs: PyTorch, ONNX Runtime or OpenVINO, and what ``backend="auto"`` picks.

Everything around the network (resize, padding, test-time augmentation, the decoder) is
the Estimator's and the same for every backend. A backend maps an N x H x W x 3 uint8 or
float32 batch of BGR pixels, the layout images have, to ``(heatmaps, pafs)`` tensors at feature
resolution: normalisation and the change of layout happen inside the network's graph,
not as extra passes over the pixels in Python. OpenVINO is a dependency; ONNX Runtime is
optional (``pip install 'pafpose[onnx]'``); both run on the CPU.

The ONNX file a backend needs is exported once per network and weights and kept under
``$PAFPOSE_HOME/exported`` (written atomically), so later starts skip the export. OpenVINO
runs, by precision: ``"int8"`` the network's own INT8 IR as the Open Model Zoo ships it
(human-pose-estimation-0001's: 8-bit activations, COCO AP 0.011 lower than float32);
``"float32"`` / ``"bfloat16"`` the float network (the exported ONNX file, the IR's weights
dequantised); ``"auto"`` the network's own IR if it has one, at the IR's precision, else
the float network.

``backend="auto"`` (:func:`choose_backend`): on a GPU, torch; on a CPU, the fastest of
:data:`AUTO_CPU` this machine can run. Only backends whose COCO AP on val2017-dev is at most
0.005 below torch float32's are in that list (``benchmarks/backend_choice.py``, BENCHMARKS.md).
Where the runtime of the first one is missing, the next is taken with a one-line notice
that says what to install.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pafpose.device import cpu_has_bfloat16
from pafpose.errors import PafposeError
from pafpose.estimator_config import BACKENDS
from pafpose.preprocess import Normalise

log = logging.getLogger(__name__)

# What ``backend="auto"`` may run on a CPU, fastest first (``benchmarks/backend_choice.py``, BENCHMARKS.md
# "Backends: what auto picks"). Each loses at most 0.005 COCO AP on val2017-dev against torch float32
# (openvino bfloat16: +0.006 there, -0.0001 on train2017-mini, keypoints closer to float32's than torch
# bfloat16's). Left out: openvino int8, 1.6-2x faster again but -0.011 AP. On CPUs without bfloat16
# instructions the bfloat16 entries are skipped.
AUTO_CPU: tuple[tuple[str, str], ...] = (("openvino", "bfloat16"), ("torch", "bfloat16"), ("openvino", "float32"),
                                         ("torch", "float32"))
# what each runtime needs beyond torch (onnx: to export the network), and how to get it
RUNTIMES = {"openvino": ("openvino", "onnx"), "onnxruntime": ("onnxruntime", "onnx")}
INSTALL = {"openvino": "pip install openvino onnx", "onnxruntime": "pip install onnxruntime onnx"}

_TORCH_THREADS = torch.get_num_threads()  # PyTorch's own choice, before any backend changed it
_lowered = False  # whether a CPU backend set PyTorch to one thread (only then does torch restore it)
Fields = tuple[torch.Tensor, torch.Tensor]


class Backend(Protocol):
    """What the Estimator runs the network through."""

    @property
    def threads(self) -> int:
        """CPU threads the network keeps busy (0 on a GPU): the Estimator overlaps decoding
        with the network only where some are left."""
        ...

    def __call__(self, pixels: torch.Tensor) -> Fields:
        """N x H x W x 3 BGR pixels (uint8 or float32) -> ``(heatmaps, pafs)`` at feature resolution."""
        ...


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
        self.normalise = Normalise(net.input_config, nhwc=True).to(device)  # NCHW view of NHWC: channels-last
        if optimize:
            fuse_conv_bn(net)
            net.to(memory_format=torch.channels_last)

    @property
    def threads(self) -> int:
        """CPU threads the network keeps busy (0 on a GPU)."""
        return 0 if self.device.type != "cpu" else torch.get_num_threads()

    def __call__(self, pixels: torch.Tensor) -> Fields:
        x = self.normalise(pixels.to(self.device, non_blocking=True))
        if self.dtype is None:
            return self.net(x)
        with torch.autocast(self.device.type, dtype=self.dtype):
            hm, paf = self.net(x)
        return hm.float(), paf.float()


def _state_digest(net: nn.Module) -> str:
    """Weights and input settings: the exported graph normalises as ``net.input_config`` says,
    which comes from the zoo entry, not from the weights."""
    h = hashlib.sha256(type(net).__name__.encode())
    h.update(repr(net.input_config).encode())
    for key, value in net.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def exported_onnx(net: nn.Module, name: str) -> Path:
    """The network as a dynamic-shape ONNX file in the cache (exported on first use).

    The file's checksum is recorded beside it; a cached file that no longer matches (zero
    bytes, truncated, altered) is deleted with a notice and exported again."""
    from pafpose.export import export_onnx
    from pafpose.weights import cache_dir
    from pafpose.weights._download import discard, intact, seal

    path = cache_dir() / "exported" / f"{name}-{_state_digest(net)}-nhwc.onnx"
    if path.is_file() and not intact(path):
        discard(path, "cached exported network is damaged (checksum)")
    if not path.is_file():
        try:
            export_onnx(net, path, dynamic=True, layout="NHWC")
        except OSError as err:  # a read-only or full PAFPOSE_HOME: the runtimes read the network from a file
            raise PafposeError(f"{path.parent}: can't write the network for the CPU runtimes there "
                               f"({err.strerror or err}); set PAFPOSE_HOME to a writable folder or use "
                               "--backend torch") from None
        seal(path)
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
        # ONNX Runtime's default is one thread per physical core, which Python can't see: count all
        self.threads = int(threads) if threads else (os.cpu_count() or 1)

    def __call__(self, pixels: torch.Tensor) -> Fields:
        x = pixels.numpy()  # the exported graph takes float32 pixels
        hm, paf = self.session.run(None, {self.input: x if x.dtype == np.float32 else x.astype(np.float32)})
        return torch.from_numpy(hm), torch.from_numpy(paf)


class OpenVINOBackend:
    """OpenVINO's CPU plugin, latency mode, on an IR or ONNX file.

    A shape seen a second time gets a model compiled for exactly that shape (faster than the
    dynamic one; a video or camera runs at one shape), up to ``max_static`` shapes; other
    inputs run on the dynamic model, so a folder of photos of all sizes doesn't compile per
    photo. ``nchw``: the file takes N x 3 x H x W (an Open Model Zoo IR, which normalises
    inside); OpenVINO's pre-processing then reads the N x H x W x 3 pixels as they are.
    ``hint``: OpenVINO's inference precision for the float layers, ``"f32"`` or ``"bf16"``
    (on CPUs with bfloat16 instructions: 2-2.5x faster, the same COCO AP, see
    :data:`AUTO_CPU`), or ``None`` for OpenVINO's own choice (an INT8 IR's quantized layers
    are 8-bit either way).
    """

    name = "openvino"

    def __init__(self, path: str | Path, threads: int | None = None, nchw: bool = False, hint: str | None = "f32",
                 max_static: int = 8) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise PafposeError(f"backend openvino: {INSTALL['openvino']}") from err
        self._ov, self.path, self.nchw, self.max_static = ov, str(path), nchw, max_static
        self.core = ov.Core()
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if hint:
            self.config["INFERENCE_PRECISION_HINT"] = hint
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = self._compile(None, np.dtype(np.uint8))
        self._dynamic = {np.dtype(np.uint8): self.compiled.create_infer_request()}
        self._static: dict[tuple[Any, ...], Any] = {}
        self._seen: dict[tuple[Any, ...], int] = {}
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        # heatmaps have fewer channels than PAFs in every layout pafpose knows
        self._order = sorted(range(len(self.compiled.outputs)),
                             key=lambda i: self.compiled.outputs[i].get_partial_shape()[1].get_length())

    def _compile(self, shape: tuple[int, ...] | None, dtype: np.dtype) -> Any:
        """The model for N x H x W x 3 pixels of ``dtype`` (uint8 is converted inside)."""
        ov = self._ov
        model = self.core.read_model(self.path)
        n, h, w = (-1, -1, -1) if shape is None else shape[:3]
        if self.nchw:
            model.reshape({model.inputs[0]: ov.PartialShape([n, 3, h, w])})
        elif shape is not None:
            model.reshape({model.inputs[0]: ov.PartialShape([n, h, w, 3])})
        ppp = ov.preprocess.PrePostProcessor(model)
        if dtype == np.uint8:
            ppp.input().tensor().set_element_type(ov.Type.u8)
            ppp.input().preprocess().convert_element_type(ov.Type.f32)
        if self.nchw:
            ppp.input().tensor().set_layout(ov.Layout("NHWC"))
            ppp.input().model().set_layout(ov.Layout("NCHW"))
        return self.core.compile_model(ppp.build(), "CPU", self.config)

    def _request(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        key = (shape, dtype)
        if key in self._static:
            return self._static[key]
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] >= 2 and len(self._static) < self.max_static:
            self._static[key] = self._compile(shape, dtype).create_infer_request()
            return self._static[key]
        if dtype not in self._dynamic:
            self._dynamic[dtype] = self._compile(None, dtype).create_infer_request()
        return self._dynamic[dtype]

    def __call__(self, pixels: torch.Tensor) -> Fields:
        x = pixels.numpy()
        request = self._request(x.shape, x.dtype)
        request.infer({0: x}, share_inputs=True)  # read in place: no copy of the pixels
        outs = [request.get_output_tensor(i).data for i in self._order]
        return torch.from_numpy(outs[0].copy()), torch.from_numpy(outs[1].copy())


def runtime_missing(kind: str) -> str | None:
    """Why backend ``kind``'s runtime can't be used here (``None``: it can).

    The runtime itself is imported (a broken installation counts as missing); ``onnx``,
    needed only to export the network once, is looked up without importing it.
    """
    modules = RUNTIMES.get(kind, ())
    for i, module in enumerate(modules):
        try:
            if i == 0:
                importlib.import_module(module)
            elif importlib.util.find_spec(module) is None:
                raise ImportError(f"No module named {module!r}")
        except (ImportError, ValueError) as err:  # ValueError: find_spec on a module set to None
            return f"{module} can't be imported ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    if kind == "openvino":  # imported is not enough: its CPU plugin may fail to load
        return _openvino_cpu_missing()
    return None


def _openvino_cpu_missing() -> str | None:
    """Why OpenVINO can't run on the CPU here (its plugin missing or broken), or None."""
    try:
        import openvino as ov

        devices = ov.Core().available_devices
    except Exception as err:  # whatever the runtime raises, auto goes on without it
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        return f"openvino can't use the CPU ({first})"
    if "CPU" not in devices:
        return f"openvino can't use the CPU (its devices: {', '.join(devices) or 'none'})"
    return None


def torch_instead(kind: str, precision: str, err: BaseException) -> str:
    """The precision torch runs when ``backend="auto"`` chose ``kind``, which failed to
    start (``err``), with a one-line notice: auto promises a network that runs."""
    fallback = "bfloat16" if precision == "bfloat16" else "float32"
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:400]
    log.warning("pafpose: backend auto: %s failed to start (%s); running torch %s instead", kind, first, fallback)
    return fallback


def auto_candidates() -> tuple[tuple[str, str], ...]:
    """:data:`AUTO_CPU` less what this CPU can't compute (bfloat16 without its instructions)."""
    return tuple(c for c in AUTO_CPU if c[1] != "bfloat16" or cpu_has_bfloat16())


def choose_backend(backend: str, precision: str, device: torch.device) -> tuple[str, str]:
    """The ``(backend, precision)`` that runs: ``"auto"`` resolved for ``device``.

    ``backend="auto"``: on a GPU torch (float32 unless ``precision`` says); on a CPU the first
    of :func:`auto_candidates` at ``precision`` (any, for ``"auto"``) whose runtime is
    installed, with a one-line notice (logging, stderr by default) for each one skipped
    because its runtime is missing; ``precision="int8"`` is OpenVINO's. An explicit backend
    is kept; its ``"auto"`` precision is float32, except openvino's, which depends on the
    network's own IR and is resolved when the weights are (the Estimator does).
    """
    if backend != "auto":
        return backend, ("float32" if precision == "auto" and backend != "openvino" else precision)
    if device.type != "cpu":
        if precision == "int8":
            raise PafposeError("precision int8 runs on the CPU with --backend openvino; on a GPU use float16, "
                               "bfloat16 or float32")
        return "torch", "float32" if precision == "auto" else precision
    if precision == "int8":
        missing = runtime_missing("openvino")
        if missing:
            raise PafposeError(f"precision int8 runs on OpenVINO, but {missing}: {INSTALL['openvino']}")
        return "openvino", "int8"
    candidates = [c for c in auto_candidates() if precision in ("auto", c[1])]
    for i, (kind, prec) in enumerate(candidates):
        missing = runtime_missing(kind)
        if missing is None:
            return kind, prec
        later = candidates[i + 1:]
        instead = f"running {later[0][0]} {later[0][1]} instead (slower)" if later else "no other backend left"
        log.warning("pafpose: backend auto: %s; %s. For the faster one: %s", missing, instead, INSTALL[kind])
    # float16, or bfloat16 on a CPU without its instructions: torch, whose checks say why not
    return "torch", precision


def make_backend(kind: str, net: nn.Module, device: torch.device, precision: str | torch.dtype | None = None,
                 threads: int | None = None, name: str = "model", ir: Path | None = None,
                 optimize: bool = True) -> Backend:
    """A backend of ``kind`` for ``net``; ``precision``: ``"float32"``, ``"float16"``, ``"bfloat16"`` or
    ``"int8"`` (openvino: run ``ir``), or a torch dtype (``None``: float32); ``ir``: the network's own
    OpenVINO IR, which openvino runs at ``"int8"`` (and a float IR at float32);
    ``optimize``: let the torch backend fold batch-norm (not for a network still training).

    ``kind`` must be resolved (not ``"auto"``: see :func:`choose_backend`). The CPU runtimes
    set PyTorch's thread count to 1 for the whole process (see below).
    """
    if kind not in BACKENDS or kind == "auto":
        raise PafposeError(f"unknown backend {kind!r}; known: {', '.join(b for b in BACKENDS if b != 'auto')}")
    if threads is not None and threads < 1:
        raise PafposeError(f"threads must be at least 1, got {threads}")
    if isinstance(precision, str):
        if precision not in ("auto", "float32", "float16", "bfloat16", "int8"):
            raise PafposeError(f"unknown precision {precision!r}")
        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(precision)
    else:
        dtype, precision = precision, {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(precision, "float32")
    if precision == "int8" and (kind != "openvino" or ir is None):
        raise PafposeError("precision int8 is OpenVINO's, for a network with its own INT8 IR "
                           "(human-pose-estimation-0001): --backend openvino")
    global _lowered
    if kind == "torch":
        if threads:
            torch.set_num_threads(int(threads))
        elif _lowered:  # undo what a CPU backend did, never a caller's own setting
            torch.set_num_threads(_TORCH_THREADS)
            _lowered = False
        return TorchBackend(net, device, dtype, optimize=optimize)
    if device.type != "cpu":
        raise PafposeError(f"backend {kind} runs on the CPU; use --backend torch for {device}")
    if precision == "float16" or (precision == "bfloat16" and kind != "openvino"):
        raise PafposeError(f"backend {kind} runs float32 (float16/bfloat16 are for --backend torch; bfloat16 also "
                           "for openvino on CPUs with bfloat16 instructions)")
    # The runtime brings its own thread pool; PyTorch's, which is left only the decoder's small
    # operations, gets one thread so that the two pools don't fight over the cores (measured:
    # 48.8 -> 28.0 ms per frame with a load beside it, 17.9 -> 15.1 ms alone).
    torch.set_num_threads(1)
    _lowered = True
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(exported_onnx(net, name), threads)
    if ir is not None:
        try:  # an INT8 IR as published (its own precision: bfloat16 would gain nothing); a float one in float32
            return OpenVINOBackend(ir, threads, nchw=True, hint=None if precision == "int8" else "f32")
        except RuntimeError as err:  # e.g. an IR version this runtime no longer reads
            if precision == "int8":
                raise PafposeError(f"OpenVINO can't run {ir} ({str(err).splitlines()[0]})") from err
            log.warning("OpenVINO can't run %s (%s); running the exported network instead", ir,
                        str(err).splitlines()[0])
    onnx = exported_onnx(net, name)
    try:
        return OpenVINOBackend(onnx, threads, hint="bf16" if precision == "bfloat16" else "f32")
    except RuntimeError as err:  # its CPU plugin can't load or compile: one line, not OpenVINO's C++ trace
        raise PafposeError(f"OpenVINO can't run the network ({(str(err).strip().splitlines() or ['?'])[0]}); "
                           "--backend torch runs it") from err
