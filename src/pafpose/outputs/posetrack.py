"""``--json posetrack``: one PoseTrack 2018 file per sequence (a video, or a folder of frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pafpose.pose import Poses


class PoseTrackFiles:
    """The frames of the open sequences, written as ``SEQUENCE_posetrack.json`` when each ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._open: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def add(self, sequence: str, people: Poses, file_name: str) -> None:
        """The next frame of ``sequence`` (``file_name``: the image or frame it names)."""
        seq = self._open.setdefault(sequence, {"images": [], "annotations": []})
        frame = len(seq["images"])
        seq["images"].append({"file_name": file_name, "id": frame, "frame_id": frame, "vid_id": sequence,
                              "is_labeled": True})
        seq["annotations"] += people.to_posetrack(frame, len(seq["annotations"]))

    def end(self, sequence: str) -> Path | None:
        """Write ``sequence``'s file (None when it had no frame)."""
        from pafpose.formats import posetrack_document, write_json_atomic

        seq = self._open.pop(sequence, None)
        if seq is None:
            return None
        for image in seq["images"]:
            image["nframes"] = len(seq["images"])
        return write_json_atomic(posetrack_document(seq["images"], seq["annotations"]),
                                 self.folder / f"{sequence}_posetrack.json")

    def end_all(self) -> list[Path]:
        return [p for s in list(self._open) if (p := self.end(s)) is not None]
