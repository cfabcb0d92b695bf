"""What every tracker of a sequence does: :class:`SequenceTracker`'s push / flush / reset.

A caller pushes each frame's people in order, with a payload (the image, an index, anything)
that travels with the frame, and gets back the frames that are now final; at the end of the
sequence :meth:`~SequenceTracker.flush` gives the rest. An online tracker gives each frame
back at once and holds nothing; an offline one gives each back later, smoothed from the
frames on both sides. Either way every pushed frame comes back exactly once, in order, so the
caller never needs to know which kind it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from pafpose.pose import Poses


class SequenceTracker(ABC):
    """Person ids (and smoothing) through the frames of one sequence, by push and flush.

    Example:
        >>> tracker = make_tracker(offline=is_recording(source))
        >>> for image in frames:
        ...     for image, people in tracker.push(estimator.predict(image), image):
        ...         show(image, people)
        >>> for image, people in tracker.flush():
        ...     show(image, people)
    """

    @abstractmethod
    def push(self, poses: Any, payload: Any = None, time_s: float | None = None,
             image: np.ndarray | None = None) -> list[tuple[Any, Poses]]:
        """Add the next frame's people (``time_s``: its time in seconds, None: one frame after
        the last; ``image``: the frame the people were found in, BGR, which lets the tracker
        tell people apart by what they wear); the frames now final, in order, as
        ``(payload, tracked people)``."""

    @abstractmethod
    def flush(self) -> list[tuple[Any, Poses]]:
        """The frames still held, in order (at the end of the sequence)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything, held frames included: ready for a new sequence, ids from 0."""
