"""Per-client tracking for ``pafpose serve``: a client that sends its frames with the same
``session`` gets each person's ``track_id`` kept across them (a webcam page, a video
client). Sessions are bounded in count and in idle time, so clients can't grow the
server's memory: the least recently used session goes first, and one unused for
``ttl_s`` seconds is forgotten."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from pafpose.pose import Pose, Poses
from pafpose.tracking import Tracker, TrackerConfig
from pafpose.tracking.online import answered


class Sessions:
    """At most ``max_sessions`` trackers, each forgotten after ``ttl_s`` seconds unused."""

    def __init__(self, max_sessions: int = 64, ttl_s: float = 60.0, config: TrackerConfig | None = None) -> None:
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self.config = config or TrackerConfig()
        self._trackers: OrderedDict[str, tuple[Tracker, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._trackers)

    def update(self, session: str, poses: Sequence[Pose], now: float | None = None,
               image: np.ndarray | None = None) -> Poses:
        """The session's next frame's people, with their track ids (frames in the order they arrive;
        ``image``: the decoded upload, from which what people wear is read to tell them apart).

        Each person given comes back in their place, but for a piece of another person (a
        head or a limb found apart, a repeat), which comes back as part of that person
        (:meth:`~pafpose.tracking.Tracker.update`). One with no keypoint (all under the
        request's threshold) has nothing to track by, and stays untracked (``track_id`` None),
        as a sessionless request lists them."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in [k for k, (_, seen) in self._trackers.items() if now - seen > self.ttl_s]:
                del self._trackers[key]
            tracker = self._trackers.pop(session, (None, 0.0))[0] or Tracker(self.config)
            self._trackers[session] = (tracker, now)
            while len(self._trackers) > self.max_sessions:
                self._trackers.popitem(last=False)
            given = poses if isinstance(poses, Poses) else list(poses)  # (a Poses keeps its image_size)
            tracked, places = tracker.update_placed(given, None, image)
        given = list(given)
        # the tracker answers its people in the order given; those with nothing to track by go back in their
        # places, as given (the pieces it merged into their person are no one of their own)
        back = dict(zip(places.tolist(), tracked, strict=True))
        return tracked.derive(back[i] if i in back else p for i, p in enumerate(given)
                              if i in back or not answered(p))
