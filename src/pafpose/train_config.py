"""What a training run depends on, as one checked value (:class:`TrainConfig`), and the rule
of each numeric option (:data:`NUMBERS`).

Kept free of torch, as :mod:`pafpose.estimator_config` is: every command's parser is built from
it (``pafpose train``'s options are its fields), and importing torch costs about two seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from pafpose.checks import check_number
from pafpose.errors import PafposeError

# Every numeric option's rule, ``name: (lo, hi, integer, lo_open)``: one table for config
# files, the command line (``pafpose train --seed -1`` is refused by argparse) and the API.
NUMBERS: dict[str, tuple[float, float, bool, bool]] = {
    "iterations": (1, 10**9, True, False),
    "batch_size": (1, 1024, True, False),
    "size": (8, 4096, True, False),
    "lr": (0, 10, False, True),
    "momentum": (0, 1, False, False),
    "weight_decay": (0, 1, False, False),
    "lr_steps": (1, 10**9, True, False),  # each step
    "lr_gamma": (0, 10, False, True),
    "grad_clip": (0, 1e9, False, False),
    "checkpoint_every": (1, 10**9, True, False),
    "val_every": (0, 10**9, True, False),
    "val_height": (8, 4096, True, False),
    "workers": (0, 256, True, False),
    "seed": (0, 2**32 - 1, True, False),  # numpy's seeds are 32-bit
    "log_every": (1, 10**9, True, False),
}
_TEXT = ("annotations", "images", "model", "out", "optimizer", "device")
_OPTIONAL_TEXT = ("init", "val_annotations", "val_images")
_FLAGS = ("augment", "amp", "tensorboard")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved beside its outputs as ``config.yaml``.

    Attributes:
        annotations: COCO person-keypoints JSON of the training set.
        images: its image folder.
        model: architecture to train (``pafpose.list_models()``).
        init: start from these weights (a zoo name or a file) instead of random ones.
        out: output folder: checkpoints, ``log.jsonl``, ``config.yaml``.
        iterations: optimiser steps.
        batch_size: global batch (split evenly over DDP processes).
        size: square crop side, input pixels.
        augment: use the original augmentation (scale, rotation, crop, flip, colour).
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lr_steps: iterations at which the learning rate is multiplied by ``lr_gamma``.
        lr_gamma: learning-rate factor at each step.
        grad_clip: maximum gradient norm (0: no clipping).
        amp: mixed precision: float16 autocast with loss scaling on a GPU, bfloat16 autocast
            on a CPU with bfloat16 instructions (1.65x faster steps on this project's CPU);
            off, float32 everywhere (as the DDP equivalence test needs).
        checkpoint_every: write ``last.pt`` (and TensorBoard sample images) every this many
            iterations and at the end.
        val_annotations: validation set for ``pafpose eval``-style AP (optional).
        val_images: its image folder.
        val_every: evaluate every this many iterations (0: only at the end, if a set is given);
            the best AP so far is kept as ``best.pt``.
        val_height: network input height for validation (default: the model's); set it to the
            scale the crops were trained at when that differs, e.g. training without augmentation.
        workers: DataLoader worker processes per training process.
        seed: seed of the data order, the augmentation and the initial weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``; under torchrun each process takes its local GPU.
        log_every: print and log the losses every this many iterations.
        tensorboard: also write TensorBoard scalars and sample images, target against predicted
            fields (needs ``pip install pafpose[train]``).
    """

    annotations: str = ""
    images: str = ""
    model: str = "lightweight-openpose"
    init: str | None = None
    out: str = "runs/train"
    iterations: int = 1000
    batch_size: int = 8
    size: int = 368
    augment: bool = True
    optimizer: str = "adam"
    lr: float = 4e-5
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_steps: list[int] = field(default_factory=list)
    lr_gamma: float = 0.333
    grad_clip: float = 0.0
    amp: bool = True
    checkpoint_every: int = 500
    val_annotations: str | None = None
    val_images: str | None = None
    val_every: int = 0
    val_height: int | None = None
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    tensorboard: bool = False

    def __post_init__(self) -> None:
        """Check every field's type and range now: a bad value from a config file or the
        command line is a one-line error before anything runs, never a NaN run."""
        if not self.annotations or not self.images:
            raise PafposeError("annotations and images are required (the training set)")
        for name in _TEXT + _OPTIONAL_TEXT:
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                setattr(self, name, value)
            if not (isinstance(value, str) or (value is None and name in _OPTIONAL_TEXT)):
                raise PafposeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                value = getattr(self, name)
                raise PafposeError(f"{name} must be true or false, got {value!r} ({type(value).__name__})")
        if self.optimizer not in ("adam", "sgd"):
            raise PafposeError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if not isinstance(self.lr_steps, list):
            raise PafposeError(f"lr_steps must be a list of iterations, got {self.lr_steps!r}")
        for name, (lo, hi, integer, lo_open) in NUMBERS.items():
            value = getattr(self, name)
            if value is None and name == "val_height":
                continue
            for v in value if name == "lr_steps" else [value]:
                check_number(name, v, lo, hi, integer=integer, lo_open=lo_open)
            if not integer:
                setattr(self, name, float(value))
        if bool(self.val_annotations) != bool(self.val_images):
            raise PafposeError("val_annotations and val_images go together (the validation set)")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """From a config file's mapping; unknown keys are a one-line error listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(values) - known)
        if unknown:
            raise PafposeError(f"unknown training option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values)
