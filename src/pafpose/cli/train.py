"""pafpose train --config CONFIG.yaml [--OPTION VALUE ...]: train a PAF network.

The config file's values (see configs/ and pafpose.train.TrainConfig) are the defaults;
each option on the command line overrides one of them. The resolved configuration is
written beside the outputs (OUT/config.yaml), with OUT/last.pt (every --checkpoint-every
iterations, atomically), OUT/best.pt (best validation AP) and OUT/log.jsonl. --resume
OUT/last.pt continues a run exactly where it stopped. Every option is checked (type, finite,
in range) before anything runs, and so are the validation set and OUT; a NaN or infinite
loss stops the run at that iteration (exit 2) without saving it, and a checkpoint is never
replaced by non-finite weights. For several processes or machines:
torchrun --nproc_per_node N -m pafpose.cli train --config ... (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number
    from pafpose.train_config import NUMBERS, TrainConfig

    p = sub.add_parser("train", help="train a network on a COCO-format dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML file of TrainConfig values")
    p.add_argument("--resume", type=Path, help="continue from this checkpoint (OUT/last.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("options", "override the config file (pafpose.train.TrainConfig fields)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif f.name in NUMBERS:  # the same rule as in a config file: finite, in range, right type
            lo, hi, integer, lo_open = NUMBERS[f.name]
            g.add_argument(flag, type=number(lo, hi, integer=integer, lo_open=lo_open), default=None, metavar="N",
                           nargs="*" if isinstance(default, list) else None)
        else:
            g.add_argument(flag, default=None)
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> Any:
    """TrainConfig from the config file, overridden by the command line."""
    import yaml

    from pafpose.errors import PafposeError
    from pafpose.train_config import TrainConfig

    values: dict[str, Any] = {}
    if args.config is not None:
        if not args.config.is_file():
            raise PafposeError(f"{args.config}: no such config file")
        try:
            loaded = yaml.safe_load(args.config.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as err:
            raise PafposeError(f"{args.config}: not UTF-8 text (byte {err.start}); a config file is YAML") from None
        except yaml.YAMLError as err:
            raise PafposeError(f"{args.config}: not valid YAML ({str(err).splitlines()[0]})") from err
        except RecursionError:
            raise PafposeError(f"{args.config}: not usable YAML (nested too deeply)") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise PafposeError(f"{args.config}: expected a mapping of TrainConfig options")
        values.update(loaded or {})
    for f in fields(TrainConfig):
        value = getattr(args, f.name)
        if value is not None:
            values[f.name] = value
    try:
        return TrainConfig.from_dict(values)
    except TypeError as err:
        raise PafposeError(f"bad training option: {err}") from err


def run(args: argparse.Namespace) -> int:
    from pafpose.train import Trainer

    config = resolve(args)
    trainer = Trainer(config, resume=args.resume, progress=not args.quiet)
    if trainer.rank == 0:
        print(f"{config.model}: {trainer.dataset.report.summary()}; {trainer.world} process(es), "
              f"global batch {config.batch_size}, device {trainer.device}")
        if trainer.val_gt is not None and trainer.val_gt.skipped:
            print(f"validation set {config.val_annotations}: {trainer.val_gt.summary()}")
    record = trainer.run()
    if trainer.rank == 0:
        shown = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in record.items() if k != "stages"}
        print(f"done at iteration {trainer.iteration}: {shown}; outputs in {config.out}")
        if trainer.skipped:
            print(f"{trainer.skipped} unreadable image(s) passed over during training (see the warnings)")
    return 0
