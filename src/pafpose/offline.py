"""The old import path of the offline tracker: :mod:`pafpose.tracking` has it (no logic here)."""

from pafpose.tracking import TrackerConfig
from pafpose.tracking.offline import OfflineTracker, track_offline

__all__ = ["OfflineTracker", "TrackerConfig", "track_offline"]
