"""pafpose skeleton NAME and pafpose models [PATTERN]: the keypoint sets and the model zoo."""

from __future__ import annotations

import argparse
import textwrap

from pafpose.errors import PafposeError
from pafpose.skeleton import SKELETONS, get_skeleton


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("skeleton", help="print a keypoint set and its limbs")
    p.add_argument("name", choices=sorted(SKELETONS))
    p.set_defaults(func=skeleton_command)
    p = sub.add_parser("models", help="list the pretrained models of the zoo")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*body25*'")
    p.set_defaults(func=models_command)


def skeleton_command(args: argparse.Namespace) -> None:
    sk = get_skeleton(args.name)
    print(f"{sk.name}: {sk.num_keypoints} keypoints, {len(sk.limbs)} limbs")
    for i, name in enumerate(sk.keypoints):
        print(f"  {i:2d} {name}")
    for i, (a, b) in enumerate(sk.limbs):
        print(f"  limb {i:2d}: {a} -> {b}")


def models_command(args: argparse.Namespace) -> None:
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
    print(auto_backend_lines())
    print(part_network_lines())


def part_network_lines() -> str:
    """The crop networks of whole body (``--hand``, ``--face``, ``--feet``)."""
    from pafpose.weights import PART_NETS

    lines = ["Part networks (--hand, --face, --feet; run by OpenVINO on crops the body gives):"]
    for cfg in PART_NETS.values():
        (wf,) = cfg.files
        lo, hi = cfg.input_range
        lines += [f"{cfg.name}  [{cfg.input_side}x{cfg.input_side} RGB {lo:g}..{hi:g}, {cfg.license}]: {cfg.task}",
                  f"    file {wf.name}: {wf.size:,} bytes, sha256 {wf.sha256}", f"      {wf.urls[0]}"]
    return "\n".join(lines)


def auto_backend_lines() -> str:
    """What ``--backend auto`` (the default) runs these models with on this machine, and the rule."""
    from pafpose.backends import AUTO_CPU, choose_backend
    from pafpose.device import resolve_device

    device = resolve_device("auto")
    backend, precision = choose_backend("auto", "auto", device)
    order = ", ".join(f"{b} {p}" + (" (CPUs with bfloat16 instructions)" if p == "bfloat16" else "")
                      for b, p in AUTO_CPU)
    rule = (f"The rule: on a GPU torch; on a CPU the first that runs of {order}: the fastest whose COCO AP "
            "matches torch float32's (BENCHMARKS.md). --precision int8 (openvino: the INT8 IR's 8-bit activations) "
            "is faster still, at 0.011 AP.")
    return (f"--backend auto (the default) runs them here with {backend} {precision} on {device}.\n"
            + textwrap.fill(rule, 100, initial_indent="  ", subsequent_indent="  "))
