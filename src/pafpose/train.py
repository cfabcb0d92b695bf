"""Training: masked L2 on every stage's heatmaps and PAFs (intermediate supervision, summed
as the original), checkpoints that resume bit for bit, and DistributedDataParallel.

One process trains on one device; ``torchrun --nproc_per_node N`` runs N processes that
split each global batch (gloo on CPU, nccl on GPU). The data order is a permutation drawn
from ``(seed, epoch)`` and every sample's augmentation from ``(seed, epoch, index)``, so
runs with the same global batch see the same samples per step whatever the process count,
and a checkpoint (model, optimiser, scheduler, scaler, RNG states, data position) resumes
exactly where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from pafpose.device import cpu_has_bfloat16
from pafpose.errors import PafposeError
from pafpose.train_config import NUMBERS, TrainConfig

__all__ = ["NUMBERS", "EpochSampler", "NonFiniteLossError", "TrainConfig", "Trainer", "stage_losses"]

log = logging.getLogger(__name__)


class NonFiniteLossError(PafposeError):
    """The loss of an iteration is NaN or infinite: the run diverged. That step is not
    applied, and no checkpoint is written from it."""

    def __init__(self, iteration: int, stages: list[float], hint: str = "") -> None:
        self.iteration, self.stages = iteration, stages
        super().__init__(f"iteration {iteration}: the loss is not finite (stages "
                         f"{', '.join(f'{v:g}' for v in stages)}); training stopped without applying or saving "
                         f"this step" + (f". {hint}" if hint else ""))


def _strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None: ``log.jsonl`` stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def stage_losses(outputs: list[tuple[torch.Tensor, torch.Tensor]],
                 batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Masked L2 of every stage, ``sum(mask * (prediction - target)^2) / 2 / batch``, heatmaps
    and PAFs together (the original's Euclidean loss per stage)."""
    mask = batch["mask"][:, None]
    n = mask.shape[0]
    out = []
    for hm, paf in outputs:
        loss = ((hm.float() - batch["heatmaps"]) ** 2 * mask).sum() + ((paf.float() - batch["pafs"]) ** 2 * mask).sum()
        out.append(loss / 2 / n)
    return out


class EpochSampler(torch.utils.data.Sampler):
    """This process' share of a ``(seed, epoch)`` permutation, from a given position on.

    Process ``r`` of ``w`` takes every ``w``-th index starting at ``r``, so with a per-process
    batch ``B / w`` the processes together take the single-process batch of ``B``.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch, self.start = 0, 0

    def set_state(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per = self.n // self.world  # drop the tail so that every process has as many samples
        return perm[: per * self.world][self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.n // self.world - self.start)


def _distributed() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's environment; initialises the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _rng_state() -> dict[str, Any]:
    # numpy's key as a tensor: checkpoints stay loadable with torch.load(weights_only=True)
    name, key, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(key.astype(np.int64)), pos, has_gauss,
                                                       cached], "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """One training run (one process of it under torchrun)."""

    def __init__(self, config: TrainConfig, resume: str | Path | None = None, progress: bool = True) -> None:
        from pafpose.data import AugmentConfig, CocoKeypoints
        from pafpose.device import resolve_device
        from pafpose.models import build_architecture, list_architectures

        self.config = c = config
        self.rank, self.world, local = _distributed()
        if c.batch_size % self.world:
            raise PafposeError(f"batch_size {c.batch_size} must be divisible by the {self.world} processes")
        self.device = resolve_device(c.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", local)
        torch.manual_seed(c.seed)
        np.random.seed(c.seed)
        random.seed(c.seed)
        if c.model not in list_architectures():
            raise PafposeError(f"unknown architecture {c.model!r}; known: {', '.join(list_architectures())}")
        if c.init:
            from pafpose.weights import resolve

            net = (resolve(c.model, c.init) if Path(c.init).is_file() else resolve(c.init)).network
            if type(net) is not type(build_architecture(c.model)):
                raise PafposeError(f"--init {c.init} is a {type(net).__name__}, not a {c.model} network")
        else:
            net = build_architecture(c.model)
        self.net = net.to(self.device).train()
        if self.device.type == "cpu":  # oneDNN's convolutions are faster on NHWC memory (measured)
            self.net = self.net.to(memory_format=torch.channels_last)
        self.model: torch.nn.Module = self.net
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.dataset = CocoKeypoints(c.annotations, c.images, self.net.spec, self.net.input_config,
                                     augment=AugmentConfig(size=c.size) if c.augment else None, size=c.size,
                                     seed=c.seed)
        if len(self.dataset) < c.batch_size:
            raise PafposeError(f"{len(self.dataset)} usable images, fewer than the batch size {c.batch_size}")
        self.val_gt: Any = None
        if c.val_annotations and c.val_images:  # checked now, not after the training it follows
            from pafpose.data.annotations import load_annotations

            self.val_gt = load_annotations(c.val_annotations)
            if not Path(c.val_images).is_dir():
                raise PafposeError(f"val_images {c.val_images}: no such image folder")
        if self.rank == 0:
            from pafpose.io import check_output_dir

            check_output_dir(c.out, "out")
        self.sampler = EpochSampler(len(self.dataset), c.seed, self.rank, self.world)
        params = [p for p in self.net.parameters() if p.requires_grad]
        if c.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, c.lr_steps, c.lr_gamma)
        # float16 needs loss scaling; bfloat16 has float32's range and doesn't
        self.amp = c.amp and (self.device.type == "cuda" or cpu_has_bfloat16())
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.iteration = 0
        self.epoch, self.position = 0, 0  # data position: epoch and batches done in it
        self.best_ap = -1.0
        self.saved: int | None = None  # iteration of the last good last.pt (None: none yet)
        self.skipped = 0  # unreadable images passed over since the start (all processes)
        self.out = Path(c.out)
        self.progress = progress and self.rank == 0
        self.writer: Any = None
        self._sample: Any = None
        if resume:
            self.load_checkpoint(resume)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "iteration": self.iteration, "epoch": self.epoch, "position": self.position,
                "best_ap": self.best_ap, "rng": _rng_state(), "config": asdict(self.config),
                "architecture": self.config.model}

    def save_checkpoint(self, name: str = "last.pt") -> Path | None:
        """Atomically write the whole training state (rank 0 only); non-finite weights are
        refused, so a good checkpoint is never replaced by a diverged one."""
        from pafpose.io import atomic_output

        if self.rank != 0:
            return None
        bad = [k for k, v in self.net.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise PafposeError(f"iteration {self.iteration}: the weights are not finite (first: {bad[0]}); "
                               f"{self.out / name} not written. {self._kept()}")
        state = self.state()
        path = atomic_output(self.out / name, lambda tmp: torch.save(state, tmp))
        if name == "last.pt":
            self.saved = self.iteration
        return path

    def _kept(self) -> str:
        """What the user still has, for the message of a diverged run."""
        last = self.out / "last.pt"
        kept = (f"{last} is from iteration {self.saved}" if self.saved is not None
                else f"{last} was not written by this run")
        return f"{kept}. Lower the learning rate (or set grad_clip) and resume or start again"

    def load_checkpoint(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_file():
            raise PafposeError(f"{p}: no such checkpoint")
        try:
            state = torch.load(p, map_location=self.device, weights_only=True)
        except Exception as err:  # torch raises many kinds on a damaged file
            raise PafposeError(f"{p}: not a readable pafpose checkpoint ({type(err).__name__})") from err
        if not isinstance(state, dict) or "model" not in state or state.get("architecture") != self.config.model:
            raise PafposeError(f"{p}: not a checkpoint of a {self.config.model} training run")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration, self.epoch, self.position = state["iteration"], state["epoch"], state["position"]
        self.best_ap = state["best_ap"]
        self.saved = self.iteration if p.resolve() == (self.out / "last.pt").resolve() else None
        _set_rng_state(state["rng"])

    # ------------------------------------------------------------------ loop
    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches from the saved data position on, epoch after epoch."""
        from pafpose.data import collate

        local = self.config.batch_size // self.world
        per_epoch = (len(self.dataset) // self.world) // local
        while True:
            if self.position >= per_epoch:
                self.epoch, self.position = self.epoch + 1, 0
            self.dataset.set_epoch(self.epoch)
            self.sampler.set_state(self.epoch, self.position * local)
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=local, sampler=self.sampler, num_workers=self.config.workers,
                collate_fn=collate, drop_last=True, persistent_workers=False)
            for batch in loader:
                self.position += 1
                yield batch
            self.position = per_epoch

    def step(self, batch: dict[str, torch.Tensor]) -> list[float]:
        """One optimiser step; returns the per-stage losses averaged over all processes.

        A NaN or infinite loss raises :class:`NonFiniteLossError` before the step is applied: a
        diverged run stops at once instead of training on, and saving, NaN weights."""
        c = self.config
        skipped = float(batch["skipped"].sum()) if "skipped" in batch else 0.0
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        image = batch["image"]
        if self.device.type == "cpu":
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            outputs = self.model(image)
        losses = stage_losses(outputs, batch)
        if self.writer is not None:  # the first sample, for the sample images
            self._sample = (batch["image"][0].detach().float().cpu(),
                            (batch["heatmaps"][0].cpu(), batch["pafs"][0].cpu()),
                            tuple(x[0].detach().float().cpu() for x in outputs[-1]))
        values = torch.cat([torch.stack([x.detach().float() for x in losses]),
                            torch.tensor([skipped], device=self.device)])
        if self.world > 1:  # before the step: every process sees the same losses and stops together
            dist.all_reduce(values)
            values[:-1] /= self.world
        stages = values[:-1].tolist()
        if not all(math.isfinite(v) for v in stages):
            raise NonFiniteLossError(self.iteration + 1, stages)
        total = sum(losses)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if c.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        self.skipped += int(values[-1])
        return stages

    def validate(self) -> dict[str, float] | None:
        """COCO AP of the current weights on the validation set (rank 0), as `pafpose eval` computes it."""
        c = self.config
        if self.val_gt is None or self.rank != 0:
            return None
        from pafpose.decoder import DecoderConfig
        from pafpose.evaluate import evaluate
        from pafpose.predict import Estimator

        est = Estimator(self.net, device=self.device, height=c.val_height, decoder=DecoderConfig(fill_missing=True))
        try:
            metrics = evaluate(est.predict, self.val_gt, c.val_images, progress=False).metrics
        finally:
            self.net.train()
        if metrics["AP"] > self.best_ap:
            self.best_ap = metrics["AP"]
            self.save_checkpoint("best.pt")
        return metrics

    def _log_images(self) -> None:
        """TensorBoard: the last batch's first crop, its target fields against the last stage's."""
        from pafpose.preprocess import denormalise
        from pafpose.viz import fields_panel

        if self.writer is None or self._sample is None:
            return
        image, target, prediction = self._sample
        x = denormalise(image.numpy().transpose(1, 2, 0), self.net.input_config)
        bgr = np.ascontiguousarray(np.clip(x, 0, 255).astype(np.uint8))
        panel = fields_panel(bgr, tuple(t.numpy() for t in target), tuple(t.numpy() for t in prediction),
                             self.net.spec)
        self.writer.add_image("samples/target_vs_prediction", panel, self.iteration, dataformats="HWC")

    def _log(self, record: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        record = _strict_json(record)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "iteration":
                    self.writer.add_scalar(key, value, record["iteration"])
            for i, value in enumerate(record.get("stages", [])):
                if value is not None:
                    self.writer.add_scalar(f"loss/stage{i + 1}", value, record["iteration"])

    def run(self) -> dict[str, Any]:
        """Train to ``config.iterations``; returns the last logged record."""
        from tqdm import tqdm

        c = self.config
        if self.rank == 0:
            import yaml

            from pafpose.io import write_bytes_atomic

            write_bytes_atomic(yaml.safe_dump(asdict(c), sort_keys=False).encode(), self.out / "config.yaml")
            if c.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError as err:
                    raise PafposeError("tensorboard: pip install 'pafpose[train]' (or set tensorboard: false)") from err
                self.writer = SummaryWriter(str(self.out / "tensorboard"))
        record: dict[str, Any] = {}
        batches = self._batches()
        bar = tqdm(total=c.iterations, initial=self.iteration, unit="it", disable=not self.progress)
        t0, seen = time.perf_counter(), 0
        try:
            while self.iteration < c.iterations:
                try:
                    stages = self.step(next(batches))
                except NonFiniteLossError as err:
                    self._log({"iteration": err.iteration, "loss": sum(err.stages), "stages": err.stages,
                               "error": "the loss is not finite"})
                    raise NonFiniteLossError(err.iteration, err.stages, self._kept()) from None
                seen += c.batch_size
                bar.update()
                bar.set_postfix(loss=f"{sum(stages):.3f}")
                last = self.iteration == c.iterations
                if self.iteration % c.log_every == 0 or last:
                    elapsed = time.perf_counter() - t0
                    record = {"iteration": self.iteration, "loss": sum(stages), "stages": stages,
                              "lr": self.scheduler.get_last_lr()[0], "images_per_s": seen / elapsed,
                              "epoch": self.epoch, "skipped": self.skipped}
                    self._log(record)
                    t0, seen = time.perf_counter(), 0
                if self.iteration % c.checkpoint_every == 0 or last:
                    self.save_checkpoint()
                    self._log_images()
                if (c.val_every and self.iteration % c.val_every == 0) or (last and c.val_annotations):
                    metrics = self.validate()
                    if metrics is not None:
                        record = {"iteration": self.iteration, **{f"val/{k}": v for k, v in metrics.items()}}
                        self._log(record)
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        return record
