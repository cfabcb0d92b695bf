"""Options every command that runs a network shares: the Estimator's (built from
:class:`~pafpose.estimator_config.EstimatorConfig`'s fields) and the decoder's (one per
:class:`~pafpose.decoder.DecoderConfig` field), and the one-line messages commands print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pafpose.checks import number


def add_model_arguments(p: argparse.ArgumentParser, **decoder_defaults: Any) -> None:
    """The Estimator's options, shared by the commands that run a network: one per
    :class:`~pafpose.estimator_config.EstimatorConfig` field (its help is the field's doc),
    then one per decoder threshold."""
    from dataclasses import fields

    from pafpose.checks import MAX_HEIGHT, MAX_SCALES, SCALE_RANGE
    from pafpose.estimator_config import BACKENDS, PARTS, PRECISIONS, EstimatorConfig

    how = {  # how each field is typed on the command line; max_side and decoder have no flag of their own
        "model": {},
        "weights": {"type": Path},
        "device": {},
        "precision": {"choices": PRECISIONS},
        "backend": {"choices": BACKENDS},
        "threads": {"type": number(1, 1024, integer=True)},
        "height": {"type": number(1, MAX_HEIGHT, integer=True)},
        "scales": {"type": number(*SCALE_RANGE), "nargs": "+", "action": _AtMost(MAX_SCALES)},
        "flip": {"action": "store_true"},
        "parts": {"nargs": "+", "choices": (*PARTS, "wholebody"), "metavar": "PART"},
        "face_detector": {"type": face_detector, "metavar": "body|detector"},
        "hand_detector": {"type": hand_detector, "metavar": "body|detector"},
    }
    g = p.add_argument_group("model")
    for f in fields(EstimatorConfig):
        if f.name in how:
            default = list(f.default) if f.name in ("scales", "parts") else f.default
            flags = ["--" + f.name] + (["--" + f.name.replace("_", "-")] if "_" in f.name else [])
            g.add_argument(*flags, default=default, help=f.metadata["help"], **how[f.name])
    add_decoder_arguments(p, **decoder_defaults)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~pafpose.estimator_config.EstimatorConfig` a command's options describe."""
    from pafpose.decoder import DecoderConfig
    from pafpose.estimator_config import EstimatorConfig

    decoder = DecoderConfig(**{name: getattr(args, name) for name in args._decoder_fields})
    extra = {"max_side": args.max_side} if getattr(args, "max_side", None) is not None else {}  # --net-resolution's
    return EstimatorConfig(model=args.model, weights=args.weights, device=args.device, height=args.height,
                           scales=tuple(args.scales), flip=args.flip, precision=args.precision, decoder=decoder,
                           backend=args.backend, threads=args.threads, parts=tuple(args.parts),
                           face_detector=args.face_detector, hand_detector=args.hand_detector, **extra)


def _detector(part: str, names: tuple[str, ...], one: str) -> Any:
    """The type of ``--face_detector`` / ``--hand_detector``: pafpose's names, or OpenPose's
    numbers where they mean the same (0: from the body; 1: ``one``, a MediaPipe detector)."""

    def parse(text: str) -> str:
        named = {"0": "body", "1": "detector"}.get(text, text)
        if named in names:
            return named
        if text in ("2", "3"):
            what = "rectangles given by the user" if text == "2" else "hand tracking"
            raise argparse.ArgumentTypeError(f"{text} (OpenPose's {what}) is not offered: {part} come from the "
                                             f"body (0/body) or {one} too (1/detector)")
        raise argparse.ArgumentTypeError(f"{text!r}: use body (0) or detector (1)")

    return parse


def face_detector(text: str) -> str:
    """``--face_detector``: 0/body (the body's nose, eyes, ears) or 1/detector (MediaPipe's face detector too)."""
    from pafpose.estimator_config import FACE_DETECTORS

    return _detector("faces", FACE_DETECTORS, "MediaPipe's face detector")(text)


def hand_detector(text: str) -> str:
    """``--hand_detector``: 0/body (the body's arms) or 1/detector. OpenPose's 1 is OpenCV, which
    has no hand detector there; pafpose's 1 is MediaPipe's palm detector, as its face detector's 1."""
    from pafpose.estimator_config import HAND_DETECTORS

    return _detector("hands", HAND_DETECTORS, "MediaPipe's palm detector")(text)


def _AtMost(n: int) -> type[argparse.Action]:  # noqa: N802 (a class factory, used as action=)
    """An argparse action for ``nargs="+"`` that takes at most ``n`` values."""

    class AtMost(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            if len(values) > n:
                parser.error(f"argument {option_string}: scales must be 1 to {n} numbers, got {len(values)}")
            setattr(namespace, self.dest, values)

    return AtMost


def add_decoder_arguments(p: argparse.ArgumentParser, **defaults: Any) -> None:
    """One option per :class:`~pafpose.decoder.DecoderConfig` field (``--peak-threshold`` ...).

    ``defaults`` overrides the dataclass' defaults for one command (``pafpose eval`` fills
    missing keypoints); options left unset keep them.
    """
    from dataclasses import MISSING, fields
    from typing import get_args

    from pafpose.checks import number
    from pafpose.decoder import DECODER_BOUNDS, DecoderConfig, Refine

    g = p.add_argument_group("decoder", "thresholds of the decoder (pafpose.DecoderConfig; see its docs)")
    for f in fields(DecoderConfig):
        default = defaults.get(f.name, f.default)
        assert default is not MISSING  # every field has a default
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help="default: %(default)s")
        elif f.name == "refine":
            g.add_argument(flag, choices=get_args(Refine), default=default, help="default: %(default)s")
        else:
            lo, hi, kw = DECODER_BOUNDS[f.name]
            what = "whole number " if kw.get("integer") else ""
            g.add_argument(flag, type=number(lo, hi, **kw), default=default, metavar="N",
                           help=f"default: %(default)s; {what}in {lo:g}..{hi:g}")
    p.set_defaults(_decoder_fields=[f.name for f in fields(DecoderConfig)])


def make_estimator(args: argparse.Namespace) -> Any:
    """The Estimator a command's options describe."""
    from pafpose.predict import Estimator

    return Estimator(config_from_args(args))


def backend_line(args: argparse.Namespace, est: Any) -> str:
    """One line: where the network runs (``--backend auto`` resolved), for a command to print once."""
    c = est.config
    why = " (chosen by --backend auto)" if args.backend == "auto" else ""
    return f"network: {c.backend} {c.precision} on {est.device}{why}"


def warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"pafpose: {message}", file=sys.stderr)


def stop_on_sigterm() -> Any:
    """Make ``kill`` (SIGTERM) stop a run the way Ctrl-C does (finished outputs kept, videos
    playable, Ray stopped); the previous handler, for the caller to put back (None off the
    main thread, where no handler can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)
