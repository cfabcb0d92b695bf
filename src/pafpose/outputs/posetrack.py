"""``--json posetrack``: one PoseTrack 2018 file per sequence (a video, or a folder of frames),
journalled as it goes.

Each frame is appended to ``SEQUENCE_posetrack.partial.jsonl`` and flushed, so a hard kill
(``kill -9``, the OOM killer) loses at most the frame in flight, and memory holds counters
only, however long the sequence. :meth:`PoseTrackFiles.end` streams the journal into
``SEQUENCE_posetrack.json`` and removes it. A journal left by an earlier killed run is kept
under another name, never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pafpose.pose import Poses


@dataclass
class _Sequence:
    journal: Path
    frames: int = 0
    annotations: int = 0


class PoseTrackFiles:
    """The frames of the open sequences, journalled, written as ``SEQUENCE_posetrack.json``
    when each ends. ``warn`` hears of a journal left by an interrupted run."""

    def __init__(self, folder: Path, warn: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self._warn = warn or (lambda message: None)
        self._open: dict[str, _Sequence] = {}

    def journal(self, sequence: str) -> Path:
        """``sequence``'s journal: one JSON line per finished frame (its image and annotations)."""
        return self.folder / f"{sequence}_posetrack.partial.jsonl"

    def _start(self, sequence: str) -> _Sequence:
        journal = self.journal(sequence)
        self.folder.mkdir(parents=True, exist_ok=True)
        if journal.exists():
            n = 1
            while (kept := journal.with_name(f"{sequence}_posetrack.partial.{n}.jsonl")).exists():
                n += 1
            os.replace(journal, kept)
            self._warn(f"{journal} was left by an interrupted run; kept as {kept.name}")
        journal.touch()  # the run's own from now on: a later frame never mistakes it for a killed run's
        seq = self._open[sequence] = _Sequence(journal)
        return seq

    def add(self, sequence: str, people: Poses, file_name: str) -> None:
        """The next frame of ``sequence`` (``file_name``: the image or frame it names), flushed
        to its journal."""
        seq = self._open.get(sequence) or self._start(sequence)
        frame = seq.frames
        image = {"file_name": file_name, "id": frame, "frame_id": frame, "vid_id": sequence, "is_labeled": True}
        annotations = people.to_posetrack(frame, seq.annotations)
        try:  # opened per frame: a run with thousands of open sequences (folders) holds no file open
            with open(seq.journal, "a", encoding="utf-8") as journal:
                journal.write(json.dumps({"image": image, "annotations": annotations}) + "\n")
        except OSError as err:  # a full disk: name the file
            raise OSError(err.errno, err.strerror or str(err), str(seq.journal)) from err
        seq.frames += 1
        seq.annotations += len(annotations)

    def end(self, sequence: str) -> Path | None:
        """Write ``sequence``'s file, streamed from its journal (None when it had no frame);
        the journal goes."""
        from pafpose.formats import posetrack_document
        from pafpose.io import atomic_output

        seq = self._open.pop(sequence, None)
        if seq is None:
            return None
        rest = json.dumps({k: v for k, v in posetrack_document([], []).items() if k not in ("images", "annotations")})

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as out:
                for key in ("image", "annotations"):  # two passes over the journal: images, then annotations
                    out.write('{"images": [' if key == "image" else '], "annotations": [')
                    first = True
                    with open(seq.journal, encoding="utf-8") as journal:
                        for line in journal:
                            record = json.loads(line)
                            items = [{**record["image"], "nframes": seq.frames}] if key == "image" \
                                else record["annotations"]
                            for item in items:
                                out.write(("" if first else ", ") + json.dumps(item))
                                first = False
                out.write("], " + rest[1:])  # the categories

        path = atomic_output(self.folder / f"{sequence}_posetrack.json", write)
        seq.journal.unlink(missing_ok=True)
        return path

    def end_all(self) -> list[Path]:
        """Write every open sequence's file."""
        return [p for s in list(self._open) if (p := self.end(s)) is not None]
