"""Pretrained weights: the zoo, file resolution, and importers for each published format.

``load(name_or_path)`` returns a ready network, its input settings the zoo entry's
(:func:`resolve_input_config`). Importer modules (one per format) expose
two pure functions: ``read(paths) -> dict[str, np.ndarray]`` with the file's own tensor
names, and ``remap(raw, model) -> dict[str, torch.Tensor]`` onto pafpose's names.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import struct
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from pafpose.errors import PafposeError
from pafpose.io import atomic_output
from pafpose.models import build_architecture
from pafpose.models._base import InputConfig, PafModel
from pafpose.weights._download import cache_dir, discard, intact, resolve_file, seal
from pafpose.weights._zoo import (
    PART_NETS,
    ZOO,
    PartNetCfg,
    PretrainedCfg,
    WeightFile,
    get_pretrained_cfg,
    list_pretrained,
)

__all__ = ["PART_NETS", "ZOO", "PartNetCfg", "PretrainedCfg", "Resolved", "WeightFile", "architecture_of", "cache_dir",
           "get_pretrained_cfg", "list_pretrained", "load", "load_state", "resolve", "resolve_file",
           "resolve_input_config"]

log = logging.getLogger(__name__)

IMPORTERS = {
    "openvino-ir": "pafpose.weights.openvino_ir",
    "tf-graphdef": "pafpose.weights.tf_graphdef",
    "tflite": "pafpose.weights.tflite",
    "caffe": "pafpose.weights.caffe",
    "torch-openpose": "pafpose.weights.torch_ports",
    "torch-lightweight": "pafpose.weights.torch_lightweight",
    "pafpose-checkpoint": "pafpose.weights.checkpoint",
}
_SUFFIXES = {".xml": "openvino-ir", ".pb": "tf-graphdef", ".tflite": "tflite", ".caffemodel": "caffe"}


def resolve_input_config(cfg_or_name: PretrainedCfg | str, net: PafModel | None = None) -> InputConfig:
    """How input must be prepared for a weight set: its zoo entry's ``input_config``, else its
    architecture's (``net``'s, or read from a network built without memory). As timm's
    ``resolve_model_data_config``: preprocessing belongs to the weights, the architecture
    only supplies a default."""
    cfg = get_pretrained_cfg(cfg_or_name) if isinstance(cfg_or_name, str) else cfg_or_name
    if cfg.input_config is not None:
        return cfg.input_config
    if net is None:
        with torch.device("meta"):  # parameters without storage: only the declared settings are read
            net = build_architecture(cfg.architecture, **cfg.kwargs)
    return net.input_config


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


_MEMORY: dict[tuple, dict[str, torch.Tensor]] = {}


def _convert(file_format: str, paths: Sequence[Path], model: PafModel) -> dict[str, torch.Tensor]:
    try:
        module = importlib.import_module(IMPORTERS[file_format])
    except KeyError:
        raise PafposeError(f"no importer for format {file_format!r}; known: {', '.join(IMPORTERS)}") from None
    source = str(paths[0])
    try:
        raw = module.read(list(paths))
        state = module.remap(raw, model)
    except PafposeError:
        raise
    # what parsers raise on truncated or garbage bytes (struct, XML, protobuf, flatbuffers, zip)
    except (OSError, ValueError, IndexError, KeyError, EOFError, struct.error, SyntaxError, RecursionError,
            OverflowError, zipfile.BadZipFile, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise PafposeError(f"{source}: not a readable {file_format} file "
                           f"({type(err).__name__}{': ' + first if first else ''})") from err
    load_state(model, state, source)  # validates names and shapes before anything is cached
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _import(file_format: str, paths: Sequence[Path], model: PafModel, arch: str, kwargs: dict) -> PafModel:
    """Load weights: from this process' memory, else a converted copy in the cache, else the file.

    Foreign formats are parsed once; the result is kept as a ``.pt`` state dict under
    ``$PAFPOSE_HOME/converted`` (written atomically), keyed by the source files' path,
    size and modification time, so later starts skip parsing. Its checksum is recorded
    beside it: a damaged copy (zero bytes, truncated, altered) is deleted with a notice and
    converted again, never left to break every later run.
    """
    stats = [p.resolve().stat() for p in paths]
    key = (file_format, arch, tuple(sorted(kwargs.items())),
           tuple((str(p.resolve()), st.st_size, st.st_mtime_ns) for p, st in zip(paths, stats, strict=True)))
    if key in _MEMORY:
        return load_state(model, _MEMORY[key], str(paths[0]))
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    converted = cache_dir() / "converted" / f"{arch}-{paths[0].stem}-{digest}.pt"
    state = None
    if converted.is_file() and not intact(converted):
        discard(converted, "cached converted weights are damaged (checksum)")
    if converted.is_file():
        try:
            state = torch.load(converted, map_location="cpu", weights_only=True)
            load_state(model, state, str(converted))
        except Exception as err:
            discard(converted, f"cached converted weights are unusable ({type(err).__name__})")
            state = None
    if state is None:
        state = _convert(file_format, paths, model)
        if _save_atomic(state, converted):
            seal(converted)
    _MEMORY[key] = state
    return model


def _save_atomic(state: dict[str, torch.Tensor], path: Path) -> bool:
    """Cache ``state`` at ``path``; False, with a one-line warning, where it can't be (a
    read-only or full ``PAFPOSE_HOME`` only costs start-up time: the network in memory runs).
    torch reports a full disk as ``RuntimeError``; the temporary file never stays behind."""
    try:
        atomic_output(path, lambda tmp: torch.save(state, tmp))
    except (OSError, RuntimeError) as err:
        why = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        log.warning("pafpose: could not cache converted weights at %s (%s); going on without", path, why)
        return False
    return True


def _companions(path: Path, file_format: str) -> list[Path]:
    if file_format == "openvino-ir":
        return [path, path.with_suffix(".bin")]
    return [path]


def load(
    name_or_path: str | Path,
    architecture: str | None = None,
    file_format: str | None = None,
    device: str | torch.device = "cpu",
    arch_kwargs: Mapping[str, object] | None = None,
) -> PafModel:
    """A network with pretrained weights, in eval mode.

    Args:
        name_or_path: a zoo name (``pafpose models`` lists them) or a weights file.
        architecture: for a file, the architecture to load it into (default: the zoo
            entry with that file name).
        file_format: for a file, its format (default: from the suffix or the zoo).
        arch_kwargs: architecture arguments (e.g. ``{"variant": "dm10"}``), replacing the
            zoo entry's.
    """
    path = Path(name_or_path)
    if path.suffix and path.exists():
        by_file = [c for c in ZOO.values() if c.files[0].name == path.name]
        cfg = by_file[0] if by_file else None
        arch = architecture or (cfg.architecture if cfg else None)
        fmt = file_format or (cfg.file_format if cfg else _SUFFIXES.get(path.suffix))
        if cfg is None and fmt is None and path.suffix in (".pt", ".pth"):
            from pafpose.weights.checkpoint import architecture_of

            fmt, saved = "pafpose-checkpoint", architecture_of(path)
            if saved and arch and saved != arch:
                raise PafposeError(f"{path}: a checkpoint of a {saved} network, not of {arch}")
            arch = arch or saved
        if arch is None or fmt is None:
            raise PafposeError(f"{path}: unknown weights file; say which architecture (and format) it is for")
        kwargs = cfg.kwargs if cfg and cfg.architecture == arch else {}
        paths = _companions(path, fmt)
        for p in paths:
            if not p.is_file():
                raise PafposeError(f"{p}: file not found")
            if p.stat().st_size == 0:
                raise PafposeError(f"{p}: empty file (0 bytes), not {fmt} weights")
    elif path.suffix in _SUFFIXES or path.suffix in (".pth", ".pt", ".bin"):
        raise PafposeError(f"{path}: file not found")
    else:
        cfg = get_pretrained_cfg(str(name_or_path))
        arch, fmt, kwargs = cfg.architecture, cfg.file_format, cfg.kwargs
        paths = [resolve_file(cfg, wf) for wf in cfg.files]
    if arch_kwargs is not None:
        kwargs = dict(arch_kwargs)
    model = build_architecture(arch, **kwargs)
    if cfg is not None and cfg.architecture == arch:  # before importing: an importer may check it
        model.input_config = resolve_input_config(cfg, model)
    if fmt == "pafpose-checkpoint":  # already pafpose's names: nothing to convert or cache
        from pafpose.weights import checkpoint

        load_state(model, checkpoint.read(paths), str(paths[0]))
    else:
        _import(fmt, paths, model, arch, kwargs)
    return model.eval().to(device)


def architecture_of(model: str) -> str:
    """The architecture of a zoo name, or ``model`` itself when it names an architecture."""
    from pafpose.models import list_architectures

    return model if model in list_architectures() else get_pretrained_cfg(model).architecture


class Resolved(NamedTuple):
    """What a model choice resolves to."""

    network: PafModel
    cfg: PretrainedCfg | None  #: the zoo entry, when the weights are the zoo's
    ir: Path | None  #: the network's own OpenVINO IR, when asked for and it has one


def weights_sha256(model: str | None = None, weights: str | Path | None = None) -> str | None:
    """The sha256 of the weights a model runs with, for the record: of the file given
    (``weights``; an OpenVINO ``.xml`` with its ``.bin``: of their two digests), else the zoo's
    published sha256 of the model's file (of its files' digests when several), None for a
    model without known weights."""
    from pafpose.estimator_config import DEFAULT_MODEL
    from pafpose.weights._download import sha256sum

    if weights is not None:
        path = Path(weights)
        files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" and path.with_suffix(".bin").is_file() \
            else [path]
        digests = [sha256sum(f) for f in files]
    else:
        try:
            cfg = get_pretrained_cfg(DEFAULT_MODEL if model is None else model)
        except PafposeError:
            return None
        digests = [f.sha256 for f in cfg.files]
        if any(d is None for d in digests):
            return None
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def resolve(model: str | None = None, weights: str | Path | None = None, ir: bool = False) -> Resolved:
    """The one way from what a user names to a network with weights, for every command.

    Args:
        model: a zoo name or an architecture name (default ``DEFAULT_MODEL``; with ``weights``,
            the architecture the file names).
        weights: a weights file for ``model``'s architecture instead of the zoo's (a
            ``pafpose train`` checkpoint names its own).
        ir: also find the network's own OpenVINO IR (what the openvino backend runs as
            published): the file itself if it is one, else the zoo entry's.
    """
    from pafpose.estimator_config import DEFAULT_MODEL

    if weights is not None:
        if not Path(weights).is_file():
            raise PafposeError(f"{weights}: no such weights file")
        net = load(weights, architecture=None if model is None else architecture_of(model))
        return Resolved(net, None, Path(weights) if ir and Path(weights).suffix == ".xml" else None)
    name = DEFAULT_MODEL if model is None else model
    net = load(name)
    try:
        cfg: PretrainedCfg | None = get_pretrained_cfg(name)
    except PafposeError:  # an architecture without pretrained weights
        cfg = None
    own_ir = None
    if ir and cfg is not None and cfg.file_format == "openvino-ir":
        own_ir = resolve_file(cfg, cfg.files[0])
    return Resolved(net, cfg, own_ir)
