"""The Estimator's options as one frozen value: what the API takes, what every command's
``model`` option group is built from, and what a server hands its worker processes.

Kept free of torch, so that building the command line stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from pafpose.checks import MAX_HEIGHT, MAX_SCALES, MAX_SIDE, SCALE_RANGE, check_number
from pafpose.decoder import DecoderConfig
from pafpose.errors import PafposeError

DEFAULT_MODEL = "human-pose-estimation-0001"
PRECISIONS = ("auto", "float32", "float16", "bfloat16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")

#: What whole body can add: ``hands`` (both), ``face`` (70 points), ``feet`` (heels, big toes).
PARTS = ("hands", "face", "feet")
#: Where face crops come from: the body's keypoints (OpenPose's ``--face_detector 0``), or
#: MediaPipe's face detector on the whole image as well (``1``: close-up portraits, where the
#: body is barely visible; a face with no body found becomes a person of its own).
FACE_DETECTORS = ("body", "detector")
#: Where hand crops come from: the body's forearms (OpenPose's ``--hand_detector 0``), or
#: MediaPipe's palm detector on the whole image as well (``detector``: close-ups and signing with
#: the elbows out of view; a hand no body takes becomes a person of its own).
HAND_DETECTORS = ("body", "detector")


def check_parts(parts: Iterable[str]) -> tuple[str, ...]:
    """``parts`` as a sorted tuple of :data:`PARTS` (``"wholebody"``/``"all"``: all three), or a one-line error."""
    if isinstance(parts, str):
        parts = (parts,)
    out: set[str] = set()
    for p in parts:
        if p in ("wholebody", "all"):
            out.update(PARTS)
        elif p in ("hand", "hands"):
            out.add("hands")
        elif p in PARTS:
            out.add(p)
        else:
            raise PafposeError(f"unknown part {p!r}: use any of {', '.join(PARTS)} (or wholebody)")
    return tuple(p for p in PARTS if p in out)


@dataclass(frozen=True)
class EstimatorConfig:
    """Everything that decides an :class:`~pafpose.predict.Estimator`'s results and where it runs.

    Each field's ``metadata["help"]`` is its one line of documentation, which the command
    line shows as well.
    """

    model: str | None = field(default=None, metadata={"help": (
        f"zoo name (pafpose models; default {DEFAULT_MODEL}, or with --weights the architecture a pafpose "
        "checkpoint names) or architecture name")})
    weights: str | None = field(default=None, metadata={"help": (
        "weights file for the model's architecture (instead of the zoo's), e.g. a `pafpose train` checkpoint")})
    device: str = field(default="auto", metadata={"help": "auto (CUDA if available), cpu, cuda, cuda:N"})
    precision: str = field(default="auto", metadata={"help": (
        "network precision: auto (what --backend auto picks; else float32, and for openvino the model's own IR as "
        "published: INT8 for the default model), float32, bfloat16 (a CPU with bfloat16 instructions, or a GPU), "
        "float16 (a GPU), int8 (openvino: the Open Model Zoo IR's 8-bit activations, 0.011 COCO AP lower)")})
    backend: str = field(default="auto", metadata={"help": (
        "where the network runs: auto (on a GPU torch; on a CPU the fastest that keeps torch float32's COCO AP: "
        "openvino bfloat16 on CPUs with bfloat16 instructions, else openvino float32, torch if OpenVINO is "
        "missing), torch, openvino, onnxruntime (pip install 'pafpose[onnx]')")})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for the network (default: the "
                                                                "runtime's choice)"})
    height: int | None = field(default=None, metadata={"help": f"network input height (default: the model's; "
                                                               f"at most {MAX_HEIGHT})"})
    scales: tuple[float, ...] = field(default=(1.0,), metadata={"help": (
        f"test-time scales, e.g. 1 0.5 1.5 2 (each {SCALE_RANGE[0]:g}..{SCALE_RANGE[1]:g}, at most {MAX_SCALES})")})
    flip: bool = field(default=False, metadata={"help": "test-time flip: average with the mirrored image"})
    decoder: DecoderConfig = field(default_factory=DecoderConfig, metadata={"help": "the decoder's thresholds"})
    max_side: int = field(default=2048, metadata={"help": "longest network input side at scale 1 (very wide "
                                                          "images are shrunk to fit)"})
    parts: tuple[str, ...] = field(default=(), metadata={"help": (
        "whole body: any of hands (21 points each), face (68 points + 2 pupils), feet (heels, big toes), or "
        "wholebody for all three: found on crops the body gives, by MediaPipe's landmark networks")})
    face_detector: str = field(default="body", metadata={"help": (
        "where face crops come from: body (its nose, eyes and ears) or detector (also MediaPipe's face "
        "detector on the whole image: close-up portraits, where the body is barely visible)")})
    hand_detector: str = field(default="body", metadata={"help": (
        "where hand crops come from: body or 0 (its forearms) or detector or 1 (also MediaPipe's palm detector on "
        "the whole image: close-up hands, signing with the elbows out of view; OpenPose's 1 is OpenCV's, which "
        "finds no hands)")})

    def __post_init__(self) -> None:
        """Normalise types (a ``Path``, a ``torch.device``, a list of scales) and check every value."""
        set_ = object.__setattr__
        if self.weights is not None:
            set_(self, "weights", os.fspath(self.weights))
        if not isinstance(self.device, str):
            set_(self, "device", str(self.device))  # a torch.device
        if self.model is not None and not isinstance(self.model, str):
            raise PafposeError(f"model must be a name, got {type(self.model).__name__} (pass a network object as "
                               "Estimator's first argument)")
        if self.precision not in PRECISIONS:
            raise PafposeError(f"unknown precision {self.precision!r}: use {', '.join(PRECISIONS)}")
        if self.backend not in BACKENDS:
            raise PafposeError(f"unknown backend {self.backend!r}: use {', '.join(BACKENDS)}")
        if self.threads is not None:
            check_number("threads", self.threads, 1, 1024, integer=True)
        if self.height is not None:
            check_number("height", self.height, 1, MAX_HEIGHT, integer=True)
        scales = self.scales
        if isinstance(scales, (str, bytes)) or not hasattr(scales, "__len__") or not 1 <= len(scales) <= MAX_SCALES:
            raise PafposeError(f"scales must be 1 to {MAX_SCALES} numbers, got {scales!r}")
        set_(self, "scales", tuple(float(check_number("each of scales", s, *SCALE_RANGE)) for s in scales))
        set_(self, "flip", bool(self.flip))
        if self.decoder is None:
            set_(self, "decoder", DecoderConfig())
        elif not isinstance(self.decoder, DecoderConfig):
            raise PafposeError(f"decoder must be a DecoderConfig, got {type(self.decoder).__name__}")
        check_number("max_side", self.max_side, 1, MAX_SIDE, integer=True)
        set_(self, "parts", check_parts(self.parts))
        if self.face_detector not in FACE_DETECTORS:
            raise PafposeError(f"unknown face detector {self.face_detector!r}: use {' or '.join(FACE_DETECTORS)}")
        if self.face_detector != "body" and "face" not in self.parts:
            set_(self, "parts", check_parts((*self.parts, "face")))  # a face detector is asked for faces
        if self.hand_detector not in HAND_DETECTORS:
            raise PafposeError(f"unknown hand detector {self.hand_detector!r}: use {' or '.join(HAND_DETECTORS)}")
        if self.hand_detector != "body" and "hands" not in self.parts:
            set_(self, "parts", check_parts((*self.parts, "hands")))  # a hand detector is asked for hands

    def replace(self, **changes: Any) -> EstimatorConfig:
        """A copy with ``changes``, checked as a new config is."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (for worker processes); :meth:`from_dict` reads them back."""
        out = asdict(self)
        out["scales"] = list(self.scales)
        out["parts"] = list(self.parts)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EstimatorConfig:
        values = dict(values)
        if isinstance(values.get("parts"), list):
            values["parts"] = tuple(values["parts"])
        if isinstance(values.get("decoder"), dict):
            values["decoder"] = DecoderConfig(**values["decoder"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PafposeError(f"unknown Estimator option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values)
