"""Shared set-up of the benchmarks that score COCO AP on a ../shared/coco subset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def parser(doc: str) -> argparse.ArgumentParser:
    """``--shared``, ``--set`` (default train2017-mini, the tuning set), ``--limit``, ``--json``."""
    repo = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("PAFPOSE_SHARED", repo.parent / "shared")))
    p.add_argument("--set", default="train2017-mini")
    p.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    p.add_argument("--json", type=Path)
    return p


def load(args: argparse.Namespace) -> tuple[Path, Any, list[int]] | None:
    """``(set folder, ground truth, image ids)``, or None (with a message) when the set is absent.

    Points ``PAFPOSE_WEIGHTS_PATH`` at ../shared/weights unless it is set.
    """
    root = args.shared / "coco" / args.set
    if not (root / "person_keypoints.json").is_file():
        print(f"no {root}/person_keypoints.json: nothing to measure")
        return None
    os.environ.setdefault("PAFPOSE_WEIGHTS_PATH", str(args.shared / "weights"))
    from pafpose.evaluate import load_annotations

    gt = load_annotations(root / "person_keypoints.json")
    return root, gt, sorted(gt.getImgIds())[: args.limit or None]
