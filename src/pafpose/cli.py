"""pafpose: multi-person 2D pose estimation with Part Affinity Fields."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

# The command's errors are one line each: OpenCV's and FFmpeg's own logging would add more
# (set before OpenCV is first imported; a user's own setting wins).
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from pafpose import (
    __version__,
    bench_cli,
    eval_cli,
    explain_cli,
    export_cli,
    predict_cli,
    serve_cli,
    show_data_cli,
    train_cli,
)
from pafpose.errors import PafposeError
from pafpose.skeleton import SKELETONS, get_skeleton


def _skeleton(args: argparse.Namespace) -> None:
    sk = get_skeleton(args.name)
    print(f"{sk.name}: {sk.num_keypoints} keypoints, {len(sk.limbs)} limbs")
    for i, name in enumerate(sk.keypoints):
        print(f"  {i:2d} {name}")
    for i, (a, b) in enumerate(sk.limbs):
        print(f"  limb {i:2d}: {a} -> {b}")


def _models(args: argparse.Namespace) -> None:
    from pafpose.weights import ZOO, list_pretrained, resolve_input_config

    names = list_pretrained(args.pattern)
    if not names:
        raise PafposeError(f"no model matches {args.pattern!r}")
    for name in names:
        cfg = ZOO[name]
        w, h = cfg.input_size
        flags = [] if cfg.commercial else ["NON-COMMERCIAL"]
        if not cfg.available:
            flags.append("no automatic download")
        print(f"{name}  [{cfg.architecture}, {cfg.skeleton}, {cfg.file_format}]"
              + (f"  ({'; '.join(flags)})" if flags else ""))
        # what the Estimator runs it with, beside the size its authors publish
        print(f"    input: {resolve_input_config(cfg).summary()} (published: {w}x{h})")
        print(f"    license: {cfg.license}")
        if cfg.accuracy:
            print(f"    accuracy: {cfg.accuracy}")
        print(f"    source: {cfg.origin_url}")
        for wf in cfg.files:
            size = f"{wf.size:,} bytes" if wf.size else "size unknown"
            print(f"    file {wf.name}: {size}, sha256 {wf.sha256 or 'unknown'}")
            for url in wf.urls:
                print(f"      {url}")


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option as one line (what, and where help is) rather than the usage blob."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pafpose", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pafpose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("skeleton", help="print a keypoint set and its limbs")
    p.add_argument("name", choices=sorted(SKELETONS))
    p.set_defaults(func=_skeleton)
    p = sub.add_parser("models", help="list the pretrained models of the zoo")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*body25*'")
    p.set_defaults(func=_models)
    predict_cli.add_parser(sub)
    explain_cli.add_parser(sub)
    eval_cli.add_parser(sub)
    show_data_cli.add_parser(sub)
    train_cli.add_parser(sub)
    export_cli.add_parser(sub)
    bench_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; user mistakes are one line on stderr and exit 2, Ctrl-C exits 130."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except PafposeError as err:
        print(f"pafpose: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `pafpose ... | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # a path the user gave can't be written or read (permissions, full disk...)
        where = f"{err.filename}: " if err.filename else ""
        print(f"pafpose: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pafpose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
