"""The official COCO-WholeBody figures of the cases tests/helpers_wholebody.py writes: xtcocotools'
COCOeval run as mmpose's CocoWholeBodyMetric runs it (iouType keypoints_body, _foot, _face,
_lefthand, _righthand with each part's sigmas, then keypoints_wholebody; use_area=True).
Needs only xtcocotools (see helpers_wholebody.py); prints {case: {part: ten figures}} and versions.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import warnings
from typing import Any

# mmpose's configs/_base_/datasets/coco_wholebody.py, in its order (body, foot, face, left hand,
# right hand): kept apart from pafpose's own table, which the comparison checks
SIGMAS = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089,
    0.089, 0.068, 0.066, 0.066, 0.092, 0.094, 0.094, 0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020,
    0.023, 0.029, 0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011,
    0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009,
    0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009,
    0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008, 0.029, 0.022, 0.035, 0.037, 0.047,
    0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021,
    0.032, 0.02, 0.019, 0.022, 0.031]
PARTS = {"body": (0, 17), "foot": (17, 23), "face": (23, 91), "lefthand": (91, 112), "righthand": (112, 133),
         "wholebody": (0, 133)}


def official(gt: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, list[float]]:
    """xtcocotools' ten figures per part of ``results`` on ``gt`` (both as JSON holds them)."""
    import numpy as np
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    out = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'foot_score' not found, use 'score' instead"
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        found = coco.loadRes(copy.deepcopy(results))
        for part, (a, b) in PARTS.items():
            ev = COCOeval(coco, found, f"keypoints_{part}", np.array(SIGMAS[a:b]), use_area=True)
            ev.params.useSegm = None
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[part] = [float(v) for v in ev.stats]
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    from importlib.metadata import version

    figures = {name: official(c["gt"], c["results"]) for name, c in cases.items()}
    head = {"xtcocotools": version("xtcocotools"), "numpy": version("numpy"),
            "made_by": "the commands in tests/helpers_wholebody.py"}
    rows = [f"  {json.dumps(name)}: {{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in f.items()) + "}"
            for name, f in figures.items()]
    print(json.dumps(head)[:-1] + ', "figures": {\n' + ",\n".join(rows) + "\n}}")
