"""pafpose: multi-person 2D pose estimation with Part Affinity Fields.

The ``pafpose`` command: ``main`` and the parser here, the options commands share in
``options.py``, one module per command. Library code never imports this package."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

# The command's errors are one line each: OpenCV's and FFmpeg's own logging would add more
# (set before OpenCV is first imported; a user's own setting wins).
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from pafpose import __version__
from pafpose.cli import batch, bench, evaluate, explain, export, openpose_flags, predict, serve, show_data, train, zoo
from pafpose.errors import PafposeError


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option as one line (what, and where help is) rather than the usage blob."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pafpose", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pafpose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    zoo.add_parsers(sub)
    predict.add_parser(sub)
    batch.add_parser(sub)
    explain.add_parser(sub)
    evaluate.add_parser(sub)
    show_data.add_parser(sub)
    train.add_parser(sub)
    export.add_parser(sub)
    bench.add_parser(sub)
    serve.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; user mistakes are one line on stderr and exit 2, Ctrl-C exits 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["predict"], ["batch"]):  # OpenPose's flags in the forms gflags takes (-flag, --flag=false)
        argv = openpose_flags.prepare_argv(argv)
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
