"""What a batch run has done: the shard files present under ``OUT/results/``.

There is no separate journal to keep in step: a shard is renamed into place whole once its
unit of work (a batch of images, a video) is finished, and its name is a hash of the
unit's keys, so the same unit done twice (a task Ray retries after a worker died) lands in
the same file instead of a second one. A new run reads the keys of the shards present and
works only on the rest: after a crash, Ctrl-C or a killed worker, what is redone is the
units that were in flight, at most one per worker.

``OUT`` may be an object-store URL (:func:`~pafpose.batch.results.place`): the shards are
objects, a damaged one is set aside by a rename (a copy), and the run's lock is an object with
a heartbeat (:func:`exclusive`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pafpose.batch.results import (
    SCHEMA,
    SUFFIXES,
    Place,
    child,
    name_of,
    place,
    read_shard,
    remove,
    rename,
    shard_paths,
)
from pafpose.errors import PafposeError


def shard_name(keys: Iterable[str], fmt: str) -> str:
    """``part-<hash of the keys>.parquet`` (or ``.jsonl``): the same unit, the same name."""
    digest = hashlib.sha1("\n".join(keys).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"part-{digest}{SUFFIXES[fmt]}"


@dataclass
class Done:
    """The keys the shards present hold, and counts over them."""

    keys: set[str] = field(default_factory=set)
    shards: int = 0
    rows: int = 0
    error_keys: set[str] = field(default_factory=set)  #: inputs with an error row
    bad: list[str] = field(default_factory=list)  #: shards that could not be read (set aside, redone)


def scan(out: str | Path, warn: Callable[[str], None] | None = None, threads: int = 8) -> Done:
    """Read the keys (and error column) of every shard in ``out``.

    A shard that can't be read (damaged on disk; a run never leaves one half-written) is
    renamed ``*.bad`` and reported, so that its inputs are done again.
    """
    done = Done()
    paths = shard_paths(out)

    def read(path: Place) -> tuple[Place, list[str] | None, list[str | None]]:
        try:
            table = read_shard(path, ["key", "error"])
        except Exception:  # any reader error: the file is damaged, whatever the library says
            return path, None, []
        return path, table.column("key").to_pylist(), table.column("error").to_pylist()

    with ThreadPoolExecutor(max(1, threads)) as pool:
        for path, keys, errors in pool.map(read, paths):
            if keys is None:
                with contextlib.suppress(OSError, PafposeError):
                    rename(path, name_of(path) + ".bad")
                done.bad.append(name_of(path))
                if warn is not None:
                    warn(f"{path}: damaged result file, set aside as {name_of(path)}.bad; its inputs are done again")
                continue
            done.shards += 1
            done.rows += len(keys)
            done.keys.update(keys)
            done.error_keys.update(k for k, e in zip(keys, errors, strict=True) if e is not None)
    return done


def drop_rows(out: str | Path, keys: set[str], threads: int = 8) -> int:
    """Remove every row of the inputs ``keys`` from the shards of ``out`` (``--retry-errors``:
    their error rows go, so that the run does them again); returns how many of ``keys`` were
    found. Each shard is rewritten atomically without them, or deleted when nothing is left:
    a crash half-way leaves those inputs either as they were or missing, and a missing input
    is simply done by the next run, so each input still ends up in the results once."""
    if not keys:
        return 0
    from pafpose.batch.results import write_shard

    found: set[str] = set()

    def rewrite(path: Place) -> None:
        held = read_shard(path, ["key"]).column("key").to_pylist()
        gone = [k in keys for k in held]
        if not any(gone):
            return
        table = read_shard(path)
        found.update(k for k, g in zip(held, gone, strict=True) if g)
        if all(gone):
            remove(path)
            return
        import pyarrow as pa

        kept = table.filter(pa.array([not g for g in gone])).to_pylist()
        write_shard(path, "parquet" if name_of(path).endswith(".parquet") else "jsonl", lambda w: w.write(kept))

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(rewrite, shard_paths(out)))
    return len(found)


def clean_temporaries(out: str | Path, older_than: float = 3600.0) -> int:
    """Remove the hidden temporary shards (``.part-*.part.*``), COCO lines (``.coco-*.part.*``)
    and run markers (``.run-*``) a
    killed run left more than ``older_than`` seconds ago; returns how many. Recent ones may
    still be in use by the workers of a run that was killed a moment ago."""
    folder = child(place(out), "results")
    removed = 0
    if isinstance(folder, str):  # no temporary shards in object storage (uploads appear whole): markers only
        from pafpose.storage import delete, listing

        now = time.time()
        for url, mtime in listing(folder):
            if name_of(url).startswith((".run-", ".progress-")) and now - mtime > older_than:
                removed += delete(url)
    elif folder.is_dir():
        now = time.time()
        for p in [*folder.glob(".part-*.part.*"), *folder.glob(".coco-*.part.*"), *folder.glob(".run-*"),
                  *folder.glob(".progress-*")]:
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > older_than:
                    p.unlink()
                    removed += 1
    return removed


#: Estimator options that don't change results (where and how fast it runs).
_NEUTRAL = ("threads", "device")


def changed_options(out: str | Path, model: str, options: dict) -> list[str]:
    """The Estimator options (and ``model``) that differ between the shards already in
    ``out`` and this run: results made with other options are kept, so a user who changed
    them should know (the first shard speaks for all: one run writes one set)."""
    import json

    paths = shard_paths(out)
    if not paths:
        return []
    try:
        first = read_shard(paths[0], ["model", "options"]).slice(0, 1).to_pylist()
    except Exception:  # damaged: scan() reports it
        return []
    if not first or first[0]["options"] is None:
        return []
    before = json.loads(first[0]["options"])
    names = sorted(k for k in set(before) | set(options)
                   if k not in _NEUTRAL and before.get(k) != options.get(k))
    return (["model"] if first[0]["model"] != model else []) + names


def older_layout(out: str | Path) -> bool:
    """Whether ``out``'s shards hold people in the layout before ``Pose.to_dict`` (``id`` and
    flat keypoints): a run must not add shards of another layout to them."""
    paths = shard_paths(out)
    if not paths:
        return False
    path = paths[0]
    try:
        if name_of(path).endswith(".parquet"):
            import pyarrow.parquet as pq

            if isinstance(path, str):
                from pafpose.storage import open_file

                return pq.read_schema(open_file(path)).field("people").type != SCHEMA.field("people").type
            return pq.read_schema(path).field("people").type != SCHEMA.field("people").type
        import json

        if isinstance(path, str):
            from pafpose.storage import read_text

            lines = read_text(path).splitlines()[:256]
        else:
            with open(path, encoding="utf-8") as f:
                lines = [line for line, _ in zip(f, range(256), strict=False)]
        for line in lines:
            people = json.loads(line).get("people") or []
            if people:
                return "track_id" not in people[0]
    except Exception:  # damaged: scan() reports it
        return False
    return False


@contextlib.contextmanager
def exclusive(out: str | Path) -> Iterator[None]:
    """Hold ``OUT/.pafpose-batch.lock`` for the run: a second run on the same folder is a
    one-line error, not two runs writing the same shards. The lock goes with the process,
    however it ends (``kill -9`` included). In object storage: see :func:`_object_lock`."""
    import fcntl

    where = place(out)
    if isinstance(where, str):
        with _object_lock(where):
            yield
        return
    path = where / ".pafpose-batch.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PafposeError(f"{out}: another pafpose batch is writing there; wait for it or use another --out") \
                from None
        except OSError:
            pass  # a file system without locks (some network mounts): carry on unguarded
        yield
    finally:
        os.close(fd)


#: Seconds between the renewals of an object-storage lock, and the age at which a lock not
#: renewed is taken as left by a run that died elsewhere.
LOCK_BEAT, LOCK_STALE = 20.0, 90.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def _object_lock(out: str) -> Iterator[None]:
    """``OUT/.pafpose-batch.lock`` as an object: its run's id, host, pid and the time it was
    last renewed (every :data:`LOCK_BEAT` s, by a thread). A run finding another's lock stops
    with one line, unless that lock's process is gone (same host) or it was not renewed for
    :data:`LOCK_STALE` s (a run killed on another machine). Object storage has no atomic
    create, so two runs started within the same instant could both go on; they would write
    the same shards under the same names (a name is the hash of the unit's inputs, and an
    upload replaces an object whole), so the results stay each input once, at the cost of the
    work done twice."""
    import json
    import socket
    import threading
    import uuid

    from pafpose.storage import delete, read_bytes, write_bytes

    url = child(out, ".pafpose-batch.lock")
    assert isinstance(url, str)
    me = {"run": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}

    def held() -> dict | None:
        for _ in range(3):
            try:
                data = read_bytes(url, 1 << 16)
            except Exception:  # none (or unreadable: a lock is a courtesy, taken over)
                return None
            try:
                return json.loads(data)
            except ValueError:  # read while its run renewed it (a stream's ranges across two versions): again
                time.sleep(0.05)
        return None

    other = held()
    if other is not None and other.get("run") != me["run"]:
        age = time.time() - float(other.get("beat", 0))
        gone = other.get("host") == me["host"] and not _alive(int(other.get("pid", -1)))
        if not gone and age < LOCK_STALE:
            raise PafposeError(f"{out}: another pafpose batch is writing there (host {other.get('host')}, pid "
                               f"{other.get('pid')}, lock renewed {max(age, 0):.0f} s ago); wait for it or use "
                               f"another --out (a lock not renewed for {LOCK_STALE:.0f} s is taken over)")

    def beat() -> None:
        write_bytes(url, json.dumps({**me, "beat": time.time()}).encode())

    beat()
    time.sleep(0.2)  # two runs starting together: the last to write holds it, the other sees that
    if (held() or {}).get("run") != me["run"]:
        raise PafposeError(f"{out}: another pafpose batch started writing there just now; wait for it or use "
                           "another --out")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LOCK_BEAT):
            with contextlib.suppress(Exception):  # a missed renewal is retried at the next beat
                beat()

    thread = threading.Thread(target=renew, name="pafpose-batch-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        if (held() or {}).get("run") == me["run"]:
            with contextlib.suppress(Exception):
                delete(url)
