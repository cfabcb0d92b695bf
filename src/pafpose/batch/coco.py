"""``--json coco`` in a batch run: the one COCO results file ``pafpose predict`` writes.

A COCO file is one document for a whole run, its image ids given in the run's order, while
a batch run's units finish in any order on any worker. So each unit writes its people's COCO
results beside its shard (``results/coco-<hash>.jsonl``: one line per image or frame, the
results with exact floats, the id left to the driver), renamed into place before the shard,
so that a shard present means its COCO lines are there too; once every input is done the
driver streams them, in ``pafpose predict``'s order (the images as listed, then each video's
frames), into ``coco_results.json`` and ``coco_image_ids.json`` with predict's ids (a COCO
file name's own id, else the next free number). Memory holds one sidecar's lines at a time.
People with whole-body parts make it COCO-WholeBody results, as in ``pafpose predict``
(:mod:`pafpose.outputs.coco`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pafpose.batch.inputs import Item
from pafpose.pose import Poses

SIDECAR_PREFIX = "coco-"


def sidecar_name(shard: str) -> str:
    """A shard's COCO lines: ``coco-<the shard's hash>.jsonl``."""
    return SIDECAR_PREFIX + shard.removeprefix("part-").rsplit(".", 1)[0] + ".jsonl"


class Sidecar:
    """One unit's COCO lines, written to a hidden file and renamed into place by :meth:`commit`;
    as a context manager, committed when the block ends well and discarded when it raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part.{os.getpid()}")
        self._file = open(self._tmp, "w", encoding="utf-8")

    def add(self, key: str, frame: int | None, name: str, people: Poses) -> None:
        from pafpose.outputs.coco import results_for

        record = {"key": key, "frame": frame, "name": name, "results": results_for(people, 0)}
        self._file.write(json.dumps(record) + "\n")

    def commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def _lines(path: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            out.setdefault(record["key"], []).append(record)
    return out


def write_coco(out: Path, folder: Path, items: Sequence[Item], warn: Callable[[str], None]) -> list[Path]:
    """``coco_results.json`` and ``coco_image_ids.json`` in ``folder`` from the sidecars under
    ``out/results``, in predict's order; inputs without lines (an error, or done by an earlier
    run without ``--json coco``) are counted in one notice."""
    from pafpose.batch.results import shard_paths
    from pafpose.outputs.coco import CocoIds, is_wholebody, write_results

    where: dict[str, Path] = {}
    wholebody = False  # some unit's people had whole-body parts: every result gets the part arrays
    for shard in shard_paths(out):  # only a finished unit's lines: a sidecar whose shard is gone is stale
        path = shard.with_name(sidecar_name(shard.name))
        if path.exists():
            for key, lines in _lines(path).items():
                where.setdefault(key, path)
                wholebody = wholebody or any(is_wholebody(line["results"]) for line in lines)
    ordered = [i for i in items if i.kind == "image"] + [i for i in items if i.kind == "video"]
    ids = CocoIds(i.key for i in ordered if i.kind == "image")
    missing = [i for i in ordered if i.key not in where]

    def records() -> Iterator[tuple[int, str, list[dict[str, Any]]]]:
        cached: tuple[Path | None, dict[str, list[dict[str, Any]]]] = (None, {})
        for item in ordered:
            path = where.get(item.key)
            if path is None:
                continue
            if cached[0] != path:
                cached = (path, _lines(path))
            for record in cached[1].get(item.key, []):
                yield ids(record["key"] if record["frame"] is None else None), record["name"], record["results"]

    written = write_results(folder, records(), wholebody=wholebody)
    if missing:
        warn(f"--json coco: {len(missing)} input{'s' * (len(missing) != 1)} have no COCO results (errors, or done "
             "by an earlier run without --json coco)")
    return written
