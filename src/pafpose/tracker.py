"""The old import path of the online tracker: :mod:`pafpose.tracking` has it (no logic here)."""

from pafpose.tracking import OneEuro, Tracker, TrackerConfig, one_euro_step, similarity, track_frames

__all__ = ["OneEuro", "Tracker", "TrackerConfig", "one_euro_step", "similarity", "track_frames"]
