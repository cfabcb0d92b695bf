"""Request batching: requests that arrive together go through the network in one call.

One worker thread owns the network. It takes the oldest waiting request, gathers the
waiting requests with the same key (up to ``max_batch``) until the oldest has waited
``wait`` seconds, and runs them in one call. The key holds everything that must be equal
for a shared call to give each request what it would get alone (the network input size,
the test-time options), so results never depend on the company. Under load the window
costs nothing: requests pile up while the network is busy and leave as full batches; alone,
a request waits at most ``wait``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pafpose.errors import PafposeError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class BusyError(PafposeError):
    """The queue is full: the caller should answer 503 and the client retry later."""


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """One request's result and how it was obtained.

    Attributes:
        value: what ``run`` returned for this request.
        batch_size: how many requests shared the call.
        queued_s: time from submission to the start of the call.
        run_s: duration of the call.
    """

    value: R
    batch_size: int
    queued_s: float
    run_s: float


@dataclass(eq=False)
class _Entry:
    key: Hashable
    item: Any
    future: Future = field(default_factory=Future)
    arrival: float = field(default_factory=time.monotonic)


class Batcher(Generic[T, R]):
    """Runs ``run(key, items) -> results`` (one result per item, in order) in batches.

    Args:
        run: the batched call; it runs on the batcher's own thread only.
        max_batch: most items per call; 1 runs every request alone.
        wait: seconds the oldest request may wait for others with its key.
        max_queue: most requests waiting at once; :meth:`submit` raises :class:`BusyError` beyond.
        after: called on the worker thread after each call, once its results are delivered (the
            service returns freed memory there, :mod:`pafpose.serve.memory`); its errors are logged.

    Example:
        >>> batcher = Batcher(lambda key, xs: [x * 2 for x in xs], max_batch=4, wait=0.01)
        >>> batcher.submit("k", 21).result().value
        42
        >>> batcher.close()
    """

    def __init__(self, run: Callable[[Hashable, list[T]], Sequence[R]], max_batch: int = 8, wait: float = 0.005,
                 max_queue: int = 64, name: str = "pafpose-batcher", after: Callable[[], object] | None = None) -> None:
        if max_batch < 1 or max_queue < 1 or wait < 0:
            raise PafposeError(f"bad batcher limits: max_batch={max_batch}, max_queue={max_queue}, wait={wait}")
        self._run = run
        self._after = after
        self.max_batch = max_batch
        self.wait = wait
        self.max_queue = max_queue
        self._name = name
        self._queue: deque[_Entry] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # calls made
        self.items = 0  # requests answered through them

    @property
    def queued(self) -> int:
        """Requests waiting now (cancelled ones included until the worker drops them)."""
        return len(self._queue)

    def submit(self, key: Hashable, item: T) -> Future[Outcome[R]]:
        """Queue ``item``; the future gets its :class:`Outcome` (or the exception ``run`` raised).

        Cancelling the future before its batch starts takes it out of the work.
        """
        entry = _Entry(key, item)
        with self._cond:
            if self._closed:
                raise BusyError("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise BusyError(f"server busy: {len(self._queue)} requests are waiting for the network; retry later")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._queue.append(entry)
            self._cond.notify()
        return entry.future

    def close(self, timeout: float | None = None) -> None:
        """Finish what is queued, then stop the worker; later submissions raise :class:`BusyError`."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _next_batch(self) -> list[_Entry] | None:
        """The next batch, oldest request first; None once closed and drained."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue[0]
            deadline = first.arrival + self.wait
            while True:
                same = [e for e in self._queue if e.key == first.key][: self.max_batch]
                left = deadline - time.monotonic()
                if len(same) >= self.max_batch or left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            chosen = {id(e) for e in same}
            self._queue = deque(e for e in self._queue if id(e) not in chosen)
            return same

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [e for e in batch if e.future.set_running_or_notify_cancel()]  # drops cancelled requests
            if live:
                self._execute(live)
                if self._after is not None:
                    try:
                        self._after()
                    except Exception:  # housekeeping: the requests already have their answers
                        log.exception("the batcher's after-call hook failed")

    def _execute(self, live: list[_Entry]) -> None:
        start = time.monotonic()
        try:
            values = list(self._run(live[0].key, [e.item for e in live]))
            if len(values) != len(live):
                raise RuntimeError(f"batched call returned {len(values)} results for {len(live)} items")
        except Exception as err:  # the worker must survive whatever one batch does
            if len(live) == 1:
                log.exception("request failed in the network call")
                live[0].future.set_exception(err)
                return
            log.warning("a batch of %d failed (%s); running its requests one by one", len(live), err)
            for entry in live:
                self._execute_alone(entry)
            return
        run_s = time.monotonic() - start
        self.batches += 1
        self.items += len(live)
        for entry, value in zip(live, values, strict=True):
            entry.future.set_result(Outcome(value, len(live), start - entry.arrival, run_s))

    def _execute_alone(self, entry: _Entry) -> None:
        start = time.monotonic()
        try:
            (value,) = self._run(entry.key, [entry.item])
        except Exception as err:  # this request's own failure, reported to it alone
            log.exception("request failed in the network call")
            entry.future.set_exception(err)
            return
        self.batches += 1
        self.items += 1
        entry.future.set_result(Outcome(value, 1, start - entry.arrival, time.monotonic() - start))
