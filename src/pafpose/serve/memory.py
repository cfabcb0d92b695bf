"""Why a long-running server's memory grew, and what bounds it.

Measured (BENCHMARKS.md, "Serving: soak"): ``Estimator.predict`` on images of ever other
sizes, in one thread, took the process from 372 to 1355 MB over 300 images; the soak
benchmark's server went from 395 to a peak of 1803 MB over 1,500 requests. Nothing alive
holds that memory: it is what the network's activations (tens of MB per call, another size
for every input width) left when freed, kept by glibc's malloc for reuse. Its heaps give
pages back only from their top, and large blocks stop being mmapped (returned on free) once
its dynamic mmap threshold has risen (up to 32 MB), so each new input size leaves holes
that later sizes don't fit, until the holes fit every size seen: the levelling-off.
glibc's ``malloc_trim(0)`` hands every free page of every arena back to the system: after
each predict, the same 300 images stayed at 363-408 MB, and the soak server peaked at 648
MB. The released pages fault back in (zeroed) when needed again, which costs system time,
so the server trims at most once a second (:class:`Releaser`). Smaller factors, measured
and not used: oneDNN's per-shape primitive cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY=64``
halved the growth over 200 images, without stopping it); pafpose keeps no per-shape cache
of its own (the decoder's caches hold a few small arrays, bounded). Results are untouched:
only memory that nothing uses is released.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Give the memory malloc keeps from freed blocks back to the system; False where that is
    not possible (no glibc), True otherwise. Cheap: it walks the free lists, not live data."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class Releaser:
    """:func:`release_freed_memory`, at most once every ``interval_s`` seconds.

    Trimming is not free: the released pages fault back in (zeroed) when the next call
    needs them, which showed as system time in the soak benchmark. Under load, once a
    second bounds the growth just as well (a few requests' worth between trims).
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        """Release now if the last release is ``interval_s`` old; True when it did."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval_s:
                return False
            self._last = now
        return release_freed_memory()
