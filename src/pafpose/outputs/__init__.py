"""Everything a run writes, owned once: :class:`OutputOptions` says what, :class:`Writer`
writes it for each image and frame (``pafpose predict`` and ``pafpose batch`` alike)."""

from __future__ import annotations

from pafpose.outputs.coco import CocoIds, CocoJournal
from pafpose.outputs.options import JSON_FORMATS, HeatmapOptions, OutputOptions
from pafpose.outputs.posetrack import PoseTrackFiles
from pafpose.outputs.writer import Writer, Written, frame_name, picture_suffix

__all__ = ["JSON_FORMATS", "CocoIds", "CocoJournal", "HeatmapOptions", "OutputOptions", "PoseTrackFiles", "Writer",
           "Written", "frame_name", "picture_suffix"]
