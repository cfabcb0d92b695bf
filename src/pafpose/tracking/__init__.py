"""Following people through a sequence of frames: a stable id per person and less jitter.

Two trackers behind one protocol (:class:`SequenceTracker`: :meth:`~SequenceTracker.push`
each frame's people, :meth:`~SequenceTracker.flush` at the end, :meth:`~SequenceTracker.reset`
for a new sequence), each in a module of its own:

* :mod:`~pafpose.tracking.online`: :class:`Tracker`, for live frames (cameras, streams):
  optimal assignment on a keypoint similarity with a motion model, One Euro smoothing; each
  frame given back at once. :meth:`Tracker.update` is its direct API.
* :mod:`~pafpose.tracking.offline`: :class:`OfflineTracker`, for recordings (video files,
  folders of frames): the online ids, each frame held back ``window`` frames and smoothed
  without lag from the frames on both sides, short gaps filled on request.

Which one a source gets is decided in one place: :func:`is_recording`, then
:func:`make_tracker`. :func:`track_frames` runs either over an iterable of frames. The offline
module imports the online one, never the reverse, and is itself imported only when used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pafpose.io import is_url
from pafpose.pose import Poses
from pafpose.tracking.base import SequenceTracker
from pafpose.tracking.config import TrackerConfig
from pafpose.tracking.online import OneEuro, Tracker, one_euro_step, similarity

if TYPE_CHECKING:
    from pafpose.tracking.offline import OfflineTracker, track_offline

__all__ = ["OfflineTracker", "OneEuro", "SequenceTracker", "Tracker", "TrackerConfig", "is_recording",
           "make_tracker", "one_euro_step", "similarity", "track_frames", "track_offline"]


def __getattr__(name: str) -> object:
    """The offline tracker's names, its module imported on first use."""
    if name in ("OfflineTracker", "track_offline"):
        from pafpose.tracking import offline

        return getattr(offline, name)
    raise AttributeError(f"module 'pafpose.tracking' has no attribute {name!r}")


def is_recording(source: object) -> bool:
    """Whether ``source`` is a recording, whose later frames are known (track it offline): a
    video file, a path (``str`` or ``os.PathLike``) that is not a URL. A camera index, a stream
    URL (``http://``, ``rtsp://``, ...) or an opened capture is live (track it online)."""
    return isinstance(source, (str, os.PathLike)) and not is_url(str(source))


def make_tracker(config: TrackerConfig | None = None, offline: bool = False) -> SequenceTracker:
    """A fresh tracker for one sequence: :class:`OfflineTracker` if ``offline`` (a recording,
    see :func:`is_recording`), else the online :class:`Tracker`."""
    if offline:
        from pafpose.tracking.offline import OfflineTracker

        return OfflineTracker(config)
    return Tracker(config)


def track_frames(frames: Iterable[tuple[Any, ...]], config: TrackerConfig | None = None,
                 offline: bool = False) -> Iterator[tuple[Any, Poses]]:
    """``(payload, tracked people)`` for the ``(payload, people)``, ``(payload, people,
    time_s)`` or ``(payload, people, time_s, image)`` of one sequence's frames, in order:
    online (:class:`Tracker`, each frame at once), or offline (:class:`OfflineTracker`: each
    frame ``config.window`` frames later, smoothed from the frames on both sides). ``time_s``
    (seconds, or None) tells the tracker about dropped frames; ``image`` (the BGR frame the
    people were found in) lets it tell people apart by what they wear."""
    tracker = make_tracker(config, offline)
    for payload, poses, *more in frames:
        when, image = [*more, None, None][:2]
        yield from tracker.push(poses, payload, when, image)
    yield from tracker.flush()
