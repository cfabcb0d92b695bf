"""``--json coco``: one COCO results file for a run, journalled as it goes.

Each image's results are appended to ``coco_results.partial.jsonl`` and flushed, so a hard
kill (``kill -9``, the OOM killer) loses at most the image in flight; :meth:`CocoJournal.finish`
streams the journal into ``coco_results.json`` (memory bounded however many images) with
``coco_image_ids.json`` naming each id's image, and removes the journal. A journal left by an
earlier killed run is kept under another name, never overwritten.

People with whole-body parts (feet, face, hands) make the file COCO-WholeBody results
(:meth:`~pafpose.pose.Poses.to_coco_wholebody`): then every result of the run carries the four
part arrays, all zeros for a person without parts, since the official evaluation reads them
from every result. A run without parts writes the body-only results it always has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pafpose.pose import COCO_WHOLEBODY_FIELDS, Poses

_NO_PARTS = {key: [0.0] * (3 * count) for key, _, count in COCO_WHOLEBODY_FIELDS}


def results_for(people: Poses, image_id: int) -> list[dict[str, Any]]:
    """One image's results for ``--json coco``: COCO-WholeBody's when some person has
    whole-body parts, else COCO's body-only ones."""
    return people.to_coco_wholebody(image_id) if people.has_wholebody() else people.to_coco(image_id)


def is_wholebody(results: Iterable[dict[str, Any]]) -> bool:
    """Whether some result carries COCO-WholeBody's part arrays."""
    return any(COCO_WHOLEBODY_FIELDS[0][0] in r for r in results)


def _with_parts(result: dict[str, Any]) -> dict[str, Any]:
    """A body-only result with empty part arrays, in COCO-WholeBody's field order (score last)."""
    if COCO_WHOLEBODY_FIELDS[0][0] in result:
        return result
    return {**{k: v for k, v in result.items() if k != "score"}, **_NO_PARTS, "score": result["score"]}


def write_results(folder: Path, records: Iterable[tuple[int, str, list[dict[str, Any]]]],
                  wholebody: bool = False) -> list[Path]:
    """``coco_results.json`` and ``coco_image_ids.json`` in ``folder`` from ``(image id, name,
    results)`` per image, streamed: memory holds one image's results at a time, however many
    images a run has. A run's journal and a batch run's merge both end here. ``wholebody``
    (some result has parts) gives every result the part arrays, so that the file is one kind."""
    from pafpose.formats import write_json_atomic
    from pafpose.io import atomic_output

    names: dict[int, str] = {}

    def results(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("[")
            first = True
            for image_id, name, found in records:
                names[image_id] = name
                for result in found:
                    if wholebody:
                        result = _with_parts(result)
                    out.write(("" if first else ", ") + json.dumps({**result, "image_id": image_id}))
                    first = False
            out.write("]")

    return [atomic_output(folder / "coco_results.json", results),
            write_json_atomic({str(k): v for k, v in sorted(names.items())}, folder / "coco_image_ids.json")]


class CocoIds:
    """COCO image ids: a COCO-style file name's own (``000000000139.jpg``), else the next free
    number; a repeated COCO id (the same name in two folders) is not trusted twice."""

    def __init__(self, locations: Iterable[str] = ()) -> None:
        from pafpose.formats import coco_image_id

        self._known: dict[str, int] = {}
        for location in locations:
            found = coco_image_id(location)
            if found is not None and found not in self._known.values():
                self._known[location] = found
        self._used = set(self._known.values())
        self._next = 1

    def __call__(self, location: str | None) -> int:
        known = self._known.get(location) if location else None
        if known is not None:
            return known
        while self._next in self._used:
            self._next += 1
        self._used.add(self._next)
        return self._next


class CocoJournal:
    """The COCO results of a run in ``folder``, one image at a time."""

    def __init__(self, folder: Path, ids: CocoIds, warn: Callable[[str], None]) -> None:
        self.folder = folder
        self.ids = ids
        self.partial = folder / "coco_results.partial.jsonl"
        self._warn = warn
        self._file: Any = None
        self.wholebody = False  # some person had whole-body parts: the file is COCO-WholeBody results

    def add(self, name: str, people: Poses, location: str | None) -> None:
        """Append one image's results (people in its pixels) and flush them."""
        image_id = self.ids(location)
        found = results_for(people, image_id)
        self.wholebody = self.wholebody or is_wholebody(found)
        self._line({"image_id": image_id, "name": name, "results": found})

    def _line(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.partial.exists():
                n = 1
                while (kept := self.partial.with_name(f"coco_results.partial.{n}.jsonl")).exists():
                    n += 1
                os.replace(self.partial, kept)
                self._warn(f"{self.partial} was left by an interrupted run; kept as {kept.name}")
            self._file = open(self.partial, "a", encoding="utf-8")
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as err:  # a full disk: name the file
            raise OSError(err.errno, err.strerror or str(err), str(self.partial)) from err

    def _records(self) -> Iterator[tuple[int, str, list[dict[str, Any]]]]:
        """The journal's images, read back one line at a time."""
        if self._file is None or not self.partial.exists():
            return
        self._file.flush()
        with open(self.partial, encoding="utf-8") as journal:
            for line in journal:
                record = json.loads(line)
                yield record["image_id"], record["name"], record["results"]

    def finish(self) -> list[Path]:
        """Write ``coco_results.json`` and ``coco_image_ids.json``; the journal goes."""
        written = write_results(self.folder, self._records(), wholebody=self.wholebody)
        if self._file is not None:  # the final files hold everything
            self._file.close()
            self._file = None
            self.partial.unlink(missing_ok=True)
        return written
