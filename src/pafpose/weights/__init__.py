"""Pretrained weights: the zoo, file resolution, and importers for each published format.

``load(name_or_path)`` returns a ready network. Importer modules (one per format) expose
two pure functions: ``read(paths) -> dict[str, np.ndarray]`` with the file's own tensor
names, and ``remap(raw, model) -> dict[str, torch.Tensor]`` onto pafpose's names.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from pafpose.errors import PafposeError
from pafpose.models import build_architecture
from pafpose.models._base import PafModel
from pafpose.weights._download import cache_dir, resolve_file
from pafpose.weights._zoo import ZOO, PretrainedCfg, WeightFile, get_pretrained_cfg, list_pretrained

__all__ = ["ZOO", "PretrainedCfg", "WeightFile", "cache_dir", "get_pretrained_cfg", "list_pretrained", "load",
           "load_state"]

log = logging.getLogger(__name__)

IMPORTERS = {
    "openvino-ir": "pafpose.weights.openvino_ir",
    "tf-graphdef": "pafpose.weights.tf_graphdef",
    "tflite": "pafpose.weights.tflite",
    "caffe": "pafpose.weights.caffe",
    "torch-openpose": "pafpose.weights.torch_ports",
    "torch-lightweight": "pafpose.weights.torch_ports",
}
_SUFFIXES = {".xml": "openvino-ir", ".pb": "tf-graphdef", ".tflite": "tflite", ".caffemodel": "caffe"}


def load_state(model: PafModel, state: Mapping[str, torch.Tensor | np.ndarray], source: str) -> PafModel:
    """Copy ``state`` into ``model`` strictly; a mismatch is a one-line error naming ``source``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise PafposeError(f"{source}: does not fit {type(model).__name__} "
                           f"({len(missing)} missing, {len(unexpected)} unexpected tensors; first: {what})")
    for k, v in own.items():
        t = torch.as_tensor(np.asarray(state[k]) if not isinstance(state[k], torch.Tensor) else state[k])
        if tuple(t.shape) != tuple(v.shape):
            raise PafposeError(f"{source}: layer {k} expects shape {tuple(v.shape)}, file has {tuple(t.shape)}")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
                           for k, v in state.items()}, strict=True)
    return model


def _import(file_format: str, paths: Sequence[Path], model: PafModel) -> PafModel:
    try:
        module = importlib.import_module(IMPORTERS[file_format])
    except KeyError:
        raise PafposeError(f"no importer for format {file_format!r}; known: {', '.join(IMPORTERS)}") from None
    source = str(paths[0])
    try:
        raw = module.read(list(paths))
    except PafposeError:
        raise
    except (OSError, ValueError, IndexError, KeyError, EOFError) as err:
        raise PafposeError(f"{source}: not a readable {file_format} file ({err})") from err
    return load_state(model, module.remap(raw, model), source)


def _companions(path: Path, file_format: str) -> list[Path]:
    if file_format == "openvino-ir":
        return [path, path.with_suffix(".bin")]
    return [path]


def load(
    name_or_path: str | Path,
    architecture: str | None = None,
    file_format: str | None = None,
    device: str | torch.device = "cpu",
) -> PafModel:
    """A network with pretrained weights, in eval mode.

    Args:
        name_or_path: a zoo name (``pafpose models`` lists them) or a weights file.
        architecture: for a file, the architecture to load it into (default: the zoo
            entry with that file name).
        file_format: for a file, its format (default: from the suffix or the zoo).
    """
    path = Path(name_or_path)
    if path.suffix and path.exists():
        by_file = [c for c in ZOO.values() if c.files[0].name == path.name]
        cfg = by_file[0] if by_file else None
        arch = architecture or (cfg.architecture if cfg else None)
        fmt = file_format or (cfg.file_format if cfg else _SUFFIXES.get(path.suffix))
        if arch is None or fmt is None:
            raise PafposeError(f"{path}: unknown weights file; say which architecture (and format) it is for")
        kwargs = cfg.kwargs if cfg and cfg.architecture == arch else {}
        paths = _companions(path, fmt)
        for p in paths:
            if not p.is_file():
                raise PafposeError(f"{p}: file not found")
    elif path.suffix in _SUFFIXES or path.suffix in (".pth", ".pt", ".bin"):
        raise PafposeError(f"{path}: file not found")
    else:
        cfg = get_pretrained_cfg(str(name_or_path))
        arch, fmt, kwargs = cfg.architecture, cfg.file_format, cfg.kwargs
        paths = [resolve_file(cfg, wf) for wf in cfg.files]
    model = build_architecture(arch, **kwargs)
    _import(fmt, paths, model)
    return model.eval().to(device)
