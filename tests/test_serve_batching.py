"""The batcher of `pafpose serve`, without a network: grouping, limits, failures, no mixed results."""

import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor

import pytest

from pafpose.serve import ServeSettings
from pafpose.serve.batching import Batcher, BusyError


class Recorder:
    """A batched call that remembers its batches and answers (key, item) for each item."""

    def __init__(self, delay=0.0, gate=None):
        self.batches = []
        self.delay = delay
        self.gate = gate
        self.lock = threading.Lock()

    def __call__(self, key, items):
        if self.gate is not None:
            assert self.gate.wait(10)
        time.sleep(self.delay)
        with self.lock:
            self.batches.append((key, list(items)))
        return [(key, item) for item in items]


def test_requests_with_the_same_key_share_calls():
    run = Recorder(delay=0.05)
    b = Batcher(run, max_batch=4, wait=0.05)
    futures = [(key, i, b.submit(key, i)) for i in range(12) for key in ("a", "b") if i % 2 or key == "a"]
    outcomes = {(key, i): f.result(timeout=10) for key, i, f in futures}
    b.close()
    assert {k: o.value for k, o in outcomes.items()} == {k: k for k in outcomes}  # every request its own answer
    assert all(len(items) <= 4 and all((key, it) in outcomes for it in items) for key, items in run.batches)
    assert sum(len(items) for _, items in run.batches) == len(futures)
    assert len(run.batches) < len(futures)  # they did share calls...
    for key, items in run.batches:  # ...and each says how many it shared with
        assert {outcomes[(key, i)].batch_size for i in items} == {len(items)}
    assert b.batches == len(run.batches) and b.items == len(futures)


def test_max_batch_1_runs_every_request_alone():
    run = Recorder(delay=0.01)
    b = Batcher(run, max_batch=1, wait=1.0)  # the window is moot: nobody waits for company
    futures = [b.submit("k", i) for i in range(6)]
    start = time.monotonic()
    assert [f.result(timeout=10).value for f in futures] == [("k", i) for i in range(6)]
    assert time.monotonic() - start < 1.0
    assert [items for _, items in run.batches] == [[i] for i in range(6)]
    b.close()


def test_the_oldest_waits_at_most_the_window_and_a_full_batch_leaves_at_once():
    run = Recorder()
    b = Batcher(run, max_batch=3, wait=0.5)
    alone = b.submit("k", 0).result(timeout=10)
    assert alone.batch_size == 1 and alone.queued_s >= 0.45
    full = [b.submit("k", i) for i in range(3)]
    outcomes = [f.result(timeout=10) for f in full]
    assert all(o.batch_size == 3 and o.queued_s < 0.4 for o in outcomes)
    b.close()


def test_concurrent_submitters_never_get_each_others_results():
    run = Recorder(delay=0.002)
    b = Batcher(run, max_batch=8, wait=0.002, max_queue=1000)

    def client(n):
        out = []
        for i in range(40):
            item = f"client{n}-{i}"
            out.append((item, b.submit(i % 3, item).result(timeout=30).value))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [r for chunk in pool.map(client, range(8)) for r in chunk]
    b.close()
    assert len(results) == 320
    assert all(value == (int(item.split("-")[1]) % 3, item) for item, value in results)
    assert max(len(items) for _, items in run.batches) > 1


def test_cancelled_requests_are_dropped_and_a_full_queue_is_busy():
    gate = threading.Event()
    run = Recorder(gate=gate)
    b = Batcher(run, max_batch=1, wait=0.0, max_queue=2)
    first = b.submit("k", "first")  # taken by the worker, which then waits on the gate
    deadline = time.monotonic() + 5
    while b.queued and time.monotonic() < deadline:
        time.sleep(0.005)
    second, third = b.submit("k", "second"), b.submit("k", "third")
    with pytest.raises(BusyError, match="busy"):
        b.submit("k", "fourth")
    assert second.cancel()
    gate.set()
    assert first.result(timeout=10).value == ("k", "first")
    assert third.result(timeout=10).value == ("k", "third")
    with pytest.raises(CancelledError):
        second.result()
    assert [items for _, items in run.batches] == [["first"], ["third"]]
    b.close()


def test_a_failing_batch_is_retried_one_by_one_and_the_worker_survives():
    calls = []

    def run(key, items):
        calls.append(list(items))
        if "bad" in items:
            raise ValueError("cannot do bad")
        return [item.upper() for item in items]

    b = Batcher(run, max_batch=3, wait=0.2)
    futures = [b.submit("k", item) for item in ("good", "bad", "fine")]
    assert futures[0].result(timeout=10).value == "GOOD"
    assert futures[2].result(timeout=10).value == "FINE"
    with pytest.raises(ValueError, match="cannot do bad"):
        futures[1].result(timeout=10)
    assert calls[0] == ["good", "bad", "fine"] and sorted(map(tuple, calls[1:])) == [("bad",), ("fine",), ("good",)]
    assert b.submit("k", "later").result(timeout=10).value == "LATER"  # still serving
    b.close()


def test_a_wrong_number_of_results_is_an_error_not_a_mix_up():
    b = Batcher(lambda key, items: ["only one"], max_batch=2, wait=0.2)
    futures = [b.submit("k", i) for i in range(2)]
    # retried alone, each call returns one result for one item: right again
    assert [f.result(timeout=10).value for f in futures] == ["only one", "only one"]
    b.close()
    b = Batcher(lambda key, items: [], max_batch=1)
    with pytest.raises(RuntimeError, match="0 results for 1"):
        b.submit("k", 1).result(timeout=10)
    b.close()


def test_close_answers_what_is_queued_then_refuses():
    run = Recorder(delay=0.02)
    b = Batcher(run, max_batch=2, wait=0.0)
    futures = [b.submit("k", i) for i in range(5)]
    b.close(timeout=10)
    assert [f.result(timeout=0).value for f in futures] == [("k", i) for i in range(5)]
    with pytest.raises(BusyError, match="shutting down"):
        b.submit("k", 9)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(lambda key, items: items, max_batch=0)


def test_settings_default_batching_by_device_and_checks():
    assert ServeSettings().batch_limit("cpu") == 1 and ServeSettings().batch_limit("cuda") == 8
    assert ServeSettings(max_batch=3).batch_limit("cpu") == 3
    for bad, words in (({"max_batch": 0}, "max_batch"), ({"max_upload_bytes": 0}, "max_upload_bytes"),
                       ({"timeout_s": 0}, "timeout_s"), ({"max_side": 10}, "max_side"),
                       ({"batch_wait_ms": -1}, "batch_wait_ms")):
        with pytest.raises(ValueError, match=words):
            ServeSettings(**bad)


def test_the_after_hook_runs_after_each_call_once_answers_are_out_and_its_errors_are_survived():
    run = Recorder(delay=0.02)
    calls = []

    def after():
        calls.append(len(run.batches))
        if len(calls) == 1:
            raise RuntimeError("a failing hook must not stop the worker")

    b = Batcher(run, max_batch=1, wait=0.0, after=after)
    results = [b.submit("k", i).result(timeout=10).value for i in range(3)]
    b.close()
    assert results == [("k", 0), ("k", 1), ("k", 2)]
    assert calls == [1, 2, 3]  # once per call, after it


def test_freed_memory_is_released_through_glibc():
    import platform

    from pafpose.serve.memory import release_freed_memory

    released = release_freed_memory()
    assert released is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def test_memory_is_released_at_most_once_per_interval():
    from pafpose.serve.memory import Releaser, release_freed_memory

    releaser = Releaser(interval_s=0.3)
    first = [releaser() for _ in range(5)]
    assert first == [release_freed_memory()] + [False] * 4  # the first releases (on glibc), the rest wait
    time.sleep(0.35)
    assert releaser() == release_freed_memory()
