"""Reading COCO person-keypoints files: every image and annotation entry checked in one place.

Training, ``show-data`` and evaluation all read annotation files through
:func:`load_annotations`, so they agree on what a usable entry is. A file that is not
JSON, or whose top level is not a COCO object, is one clear error. A broken entry (wrong
types, missing keys, NaN/inf or absurd numbers, an annotation of an unlisted image, a
duplicate id) is left out and described in ``skipped``: the rest of the file is still
usable, and what was left out is reported, never silently scored or trained on.
A COCO-WholeBody file (part arrays ``foot_kpts``, ``face_kpts``... beside ``keypoints``) has
them checked the same way, and a person without them is left out of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pycocotools.coco import COCO

from pafpose.errors import PafposeError
from pafpose.skeleton import COCO_WHOLEBODY_FIELDS

KEYPOINTS = 17  # COCO person keypoints: 17 (x, y, v)
#: COCO-WholeBody's keypoint arrays beside ``keypoints`` and their points (a file has all or none).
WHOLEBODY_KEYPOINTS = {key: count for key, _, count in COCO_WHOLEBODY_FIELDS}
MAX_COORD = 1e6  # pixels: anything beyond is a broken value, not a photo
MAX_ID = 2**63 - 1  # ids must fit the int64 arrays pycocotools builds
_REASONS_SHOWN = 3


class CocoAnnotations(COCO):
    """A pycocotools ``COCO`` built from exactly the entries that passed the checks.

    Attributes:
        source: the file it was read from.
        skipped: one message per image or annotation entry that was left out, and why.
    """

    def __init__(self, source: str = "", skipped: list[str] | None = None) -> None:
        super().__init__()
        self.source = source
        self.skipped: list[str] = skipped if skipped is not None else []

    def summary(self) -> str:
        """One line: how many entries were left out and the first few reasons."""
        return skipped_summary(self.skipped)


def skipped_summary(skipped: Sequence[str], noun: str = "entries") -> str:
    """``"3 entries skipped (a; b; c)"`` (the first few reasons), or ``"0 entries skipped"``."""
    head = " ".join(x for x in (str(len(skipped)), noun, "skipped") if x)
    if not skipped:
        return head
    more = "; ..." if len(skipped) > _REASONS_SHOWN else ""
    return f"{head} ({'; '.join(skipped[:_REASONS_SHOWN])}{more})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) <= MAX_COORD)


def _is_id(value: Any) -> bool:
    return _is_int(value) and 0 <= value <= MAX_ID


def _numbers(values: Any, n: int) -> bool:
    return isinstance(values, list) and len(values) == n and all(_is_number(v) for v in values)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_image(img: Any) -> str | None:
    """Why image entry ``img`` is unusable, or None."""
    if not isinstance(img, dict):
        return f"is a {type(img).__name__}, not an object"
    if not _is_id(img.get("id")):
        return f"needs a whole-number 'id' >= 0, has {_describe(img.get('id'))}"
    name = img.get("file_name")
    if not isinstance(name, str) or not name or "\x00" in name:
        return f"needs a 'file_name' string, has {_describe(name)}"
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            return f"file_name {name!r} must be a path inside the image folder"
    for key in ("width", "height"):
        if key in img and not (_is_int(img[key]) and 0 < img[key] <= MAX_COORD):
            return f"{key} must be a positive whole number, has {_describe(img[key])}"
    return None


def _check_segmentation(segm: Any) -> str | None:
    if segm is None or segm == []:
        return None
    if isinstance(segm, list):
        for poly in segm:
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                    and all(_is_number(v) for v in poly)):
                return "segmentation polygons must be lists of >= 3 finite (x, y) points"
        return None
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and 0 < v <= MAX_COORD for v in size)):
            return "an RLE segmentation needs 'size' [height, width]"
        if isinstance(counts, str) and counts.isascii():
            return None
        if isinstance(counts, list) and all(_is_int(v) and 0 <= v <= size[0] * size[1] for v in counts):
            return None
        return "an RLE segmentation needs 'counts' (a string or whole numbers)"
    return f"segmentation is a {type(segm).__name__}"


def _check_keypoints(kps: Any, field: str, n: int) -> str | None:
    """Why ``kps`` is no flat ``[x, y, v] * n`` list, or None."""
    if not isinstance(kps, list) or len(kps) != 3 * n:
        count = len(kps) if isinstance(kps, list) else "no list of"
        return f"has {count} {field} values, needs {3 * n} numbers ({n} x, y, v)"  # COCO's body: 51
    if not all(_is_number(v) for v in kps):
        bad = next(v for v in kps if not _is_number(v))
        return f"{field} must be finite numbers within +-{MAX_COORD:g}, has {_describe(bad)}"
    if any(v not in (0, 1, 2) for v in kps[2::3]):
        return f"{field} visibility flags must be 0, 1 or 2"
    return None


def _check_annotation(ann: Any, image_ids: set[int], wholebody: bool = False) -> str | None:
    """Why annotation ``ann`` is unusable, or None; fills ``category_id`` and ``num_keypoints``.
    ``wholebody``: the file is COCO-WholeBody's, so the part arrays are required too."""
    if not isinstance(ann, dict):
        return f"is a {type(ann).__name__}, not an object"
    missing = [k for k in ("image_id", "keypoints", "area", "iscrowd", "bbox") if k not in ann]
    if missing:
        return f"lacks {', '.join(missing)}: not a person-keypoints file"
    if "id" in ann and not _is_id(ann["id"]):
        return f"'id' must be a whole number >= 0, has {_describe(ann['id'])}"
    if not _is_id(ann["image_id"]):
        return f"'image_id' must be a whole number >= 0, has {_describe(ann['image_id'])}"
    kps = ann["keypoints"]
    why = _check_keypoints(kps, "keypoint", KEYPOINTS)
    if why is not None:
        return why
    if wholebody:
        lacking = [k for k in WHOLEBODY_KEYPOINTS if k not in ann]
        if lacking:
            return f"lacks {', '.join(lacking)}, which the file's other people have (COCO-WholeBody)"
        for field, n in WHOLEBODY_KEYPOINTS.items():
            why = _check_keypoints(ann[field], field, n)
            if why:
                return why
    if not _numbers(ann["bbox"], 4) or ann["bbox"][2] < 0 or ann["bbox"][3] < 0:
        return "bbox must be 4 finite numbers (x, y, width >= 0, height >= 0)"
    area = ann["area"]
    if not (isinstance(area, (int, float)) and not isinstance(area, bool) and 0 <= area <= MAX_COORD**2):
        return f"area must be a finite number >= 0, has {_describe(area)}"
    if not isinstance(ann["iscrowd"], int) or ann["iscrowd"] not in (0, 1):
        return f"iscrowd must be 0 or 1, has {_describe(ann['iscrowd'])}"
    labelled = sum(1 for v in kps[2::3] if v > 0)
    if "num_keypoints" in ann and not (_is_int(ann["num_keypoints"]) and ann["num_keypoints"] == labelled):
        return f"num_keypoints is {_describe(ann['num_keypoints'])}, but {labelled} keypoints are labelled"
    if "category_id" in ann and not (_is_int(ann["category_id"]) and ann["category_id"] == 1):
        return f"category_id is {_describe(ann['category_id'])}, not the person category 1"
    why = _check_segmentation(ann.get("segmentation"))
    if why:
        return why
    if ann["image_id"] not in image_ids:
        return f"refers to image {ann['image_id']}, which is not listed (or was skipped)"
    ann["iscrowd"] = int(ann["iscrowd"])
    ann.setdefault("category_id", 1)
    ann.setdefault("num_keypoints", labelled)
    return None


def read_json(path: str | Path) -> Any:
    """The parsed JSON of ``path``; anything but a readable JSON file is one-line error."""
    p = Path(path)
    if not p.is_file():
        raise PafposeError(f"{p}: no such annotation file")
    try:
        return json.loads(p.read_bytes())
    except RecursionError:
        raise PafposeError(f"{p}: not usable JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, or an integer too long to convert
        raise PafposeError(f"{p}: not valid JSON ({str(err).splitlines()[0][:200]})") from err


def validate(data: Any, source: str = "annotations") -> tuple[dict[str, Any], list[str]]:
    """``(a COCO dict of the valid entries only, one message per entry left out)``.

    A document that is not a COCO object with ``images`` and ``annotations`` lists, or whose
    entries are all broken, is a :class:`PafposeError`.
    """
    if not isinstance(data, dict):
        raise PafposeError(f"{source}: not a COCO annotation file (the top level is not an object)")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise PafposeError(f"{source}: not a COCO annotation file (no '{key}' list)")
    skipped: list[str] = []
    images, image_ids = [], set()
    for i, img in enumerate(data["images"]):
        why = _check_image(img)
        if why is None and img["id"] in image_ids:
            why = f"repeats image id {img['id']}"
        if why:
            skipped.append(f"image entry {i} {why}")
            continue
        image_ids.add(img["id"])
        images.append(img)
    kept: list[dict[str, Any]] = []
    ann_ids: set[int] = set()
    wholebody = any(isinstance(a, dict) and not WHOLEBODY_KEYPOINTS.keys().isdisjoint(a) for a in data["annotations"])
    for i, ann in enumerate(data["annotations"]):
        why = _check_annotation(ann, image_ids, wholebody)
        if why is None and "id" in ann and ann["id"] in ann_ids:  # pycocotools indexes by id: one would hide
            why = f"repeats annotation id {ann['id']}"
        if why:
            skipped.append(f"annotation {i} {why}")
            continue
        ann_ids.add(ann.get("id", -1))
        kept.append(ann)
    next_id = 1 + max((a["id"] for a in kept if "id" in a), default=0)
    for ann in kept:
        if "id" not in ann:
            ann["id"], next_id = next_id, next_id + 1
    if data["images"] and not images:
        raise PafposeError(f"{source}: no usable image entry ({skipped[0]})")
    if data["annotations"] and not kept:
        raise PafposeError(f"{source}: no usable annotation ({skipped[-1]})")
    out = {"images": images, "annotations": kept,
           "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    return out, skipped


def load_annotations(path: str | Path) -> CocoAnnotations:
    """A pycocotools ``COCO`` of a person-keypoints file's valid entries; ``.skipped`` says
    which entries were left out and why (see the module docstring)."""
    data, skipped = validate(read_json(path), str(path))
    coco = CocoAnnotations(str(path), skipped)
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
