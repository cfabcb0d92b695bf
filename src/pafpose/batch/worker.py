"""The work of one Ray actor: one :class:`~pafpose.predict.Estimator`, loaded once, turning
units of work into result shards.

A unit is a batch of images or one whole video (tracked over its frames, as ``pafpose
predict`` tracks it). The per-file outputs (OpenPose JSON, drawn images, drawn video) are
written first, each atomically and under the names ``pafpose predict`` gives them; the
unit's shard last, so that a shard present means the unit's outputs are all there. A file
that can't be read becomes an error row and the unit goes on.

Nothing here imports Ray: Ray Data runs :class:`PoseWorker` (a callable class) in its
actors, and the class is usable, and tested, without it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pafpose import storage
from pafpose.batch.inputs import Item
from pafpose.batch.ledger import shard_name
from pafpose.batch.results import ShardWriter, child, exists, place, read_shard, row, write_shard
from pafpose.errors import PafposeError
from pafpose.outputs import OutputOptions, Writer
from pafpose.video import FrameRange

#: What a worker returns per input to the driver (progress, summary): small, whatever the results.
SUMMARY = pa.schema([
    ("key", pa.string()),
    ("kind", pa.string()),
    ("rows", pa.int64()),       # result rows written (1 per image; a video's frames, plus its error row)
    ("frames", pa.int64()),     # video frames with poses
    ("people", pa.int64()),
    ("error", pa.string()),     # the first error of this input, if any
    ("seconds", pa.float64()),  # the worker's time on it, of which:
    ("read", pa.float64()),     #   reading and decoding the file (for a video: its frames)
    ("infer", pa.float64()),    #   the Estimator (preprocess, network, decoding people)
    ("write", pa.float64()),    #   writing its outputs: result rows, per-file JSON, drawings
    ("started", pa.float64()),  # when the worker began the unit this input was in (Unix time)
    ("ended", pa.float64()),    # and when it finished it
    ("worker", pa.string()),    # host:pid of the actor
    ("skipped", pa.bool_()),    # its shard was already there (a retried task): nothing redone
])

#: Most bytes read from one image URL (as the largest image file pafpose reads).
MAX_URL_BYTES = 800 * 2**20


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs, as plain values (shipped to actors on other machines)."""

    config: dict[str, Any]  #: EstimatorConfig.to_dict()
    out: str  #: absolute output folder (on a cluster, a path every node sees) or object-store URL
    format: str = "parquet"
    outputs: dict[str, Any] | None = None  #: OutputOptions.to_dict(): the per-file outputs, as pafpose predict's
    frames: tuple[int, int, int | None] = (0, 1, None)  #: FrameRange (first, step, last) of each video
    timeout: float = 10.0  #: seconds to wait for a URL
    batch_size: int = 1  #: images or frames per network call
    track: bool = True  #: track people through each video
    online: bool = False  #: video files tracked as live streams are (by default offline, as pafpose predict)
    model: str = ""  #: the model's name for the ``model`` column
    marker: str = ""  #: a file the driver made under OUT/results: seen here means OUT is shared
    progress: str = ""  #: the local folder of the progress files of videos in hand ("": OUT/results)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _file_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a ``file://`` URL, refused unless a regular file: a FIFO or device would
    hold the worker forever (as the local-path reader refuses them)."""
    import stat
    import urllib.parse
    import urllib.request

    from pafpose.images import ImageError

    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ImageError("missing" if isinstance(err, FileNotFoundError) else "unreadable",
                         f"{url}: can't be read ({err.strerror or err})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
        raise ImageError("unreadable", f"{url}: {what}")
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes + 1)


def _read_by(response: Any, deadline: float, max_bytes: int) -> bytes:
    """The body of ``response`` read in chunks, each socket read bounded by what is left of
    the deadline: a server that drips bytes can't hold a worker past it."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)  # the socket under http.client's buffered reader, where there is one
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if sock is not None:
            sock.settimeout(left)
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _deadline_opener(timeout: float) -> tuple[Any, threading.Timer]:
    """A urllib opener whose connections are cut ``timeout`` seconds from now, and the timer
    that cuts them (cancel it when done): urllib's own timeout bounds each socket read, so a
    server dripping its response headers byte by byte would hold a worker far longer."""
    import urllib.request

    sockets: list[socket.socket] = []

    def recorded(connection: type) -> type:
        class Recorded(connection):  # type: ignore[misc,valid-type]
            def connect(self) -> None:
                super().connect()
                sockets.append(self.sock)

        return Recorded

    class Http(urllib.request.HTTPHandler):
        def do_open(self, http_class: Any, req: Any, **kw: Any) -> Any:
            return super().do_open(recorded(http_class), req, **kw)

    class Https(urllib.request.HTTPSHandler):
        def do_open(self, http_class: Any, req: Any, **kw: Any) -> Any:
            return super().do_open(recorded(http_class), req, **kw)

    def cut() -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    return urllib.request.build_opener(Http, Https), timer


def fetch(url: str, timeout: float, max_bytes: int = MAX_URL_BYTES) -> bytes:
    """The bytes at ``url`` (http, https, file), in bounded size and time (``timeout`` is the
    whole fetch's deadline, headers and body, not each read's); any failure is one
    :class:`~pafpose.images.ImageError` naming the URL."""
    import urllib.error

    from pafpose.images import ImageError

    if "\x00" in url:
        raise ImageError("unreadable", f"{url!r}: a URL with a NUL byte names nothing")
    deadline = time.monotonic() + timeout
    late = f"{url}: not fetched within {timeout:g} s (--timeout)"
    timer = None
    try:
        if storage.is_object_url(url):  # s3://, gs://...: pyarrow's file systems, their own timeouts
            return storage.read_bytes(url, max_bytes)
        if url[:7].lower() == "file://":
            data = _file_url(url, max_bytes)
        else:
            opener, timer = _deadline_opener(timeout)
            with opener.open(url, timeout=timeout) as r:
                data = _read_by(r, deadline, max_bytes)
            if time.monotonic() >= deadline:  # the cut connection ended the body early: not the whole file
                raise TimeoutError
    except ImageError:
        raise
    except urllib.error.HTTPError as err:
        raise ImageError("unreadable", f"{url}: can't be fetched (HTTP {err.code} {err.reason})") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        if isinstance(err, TimeoutError) or time.monotonic() >= deadline:  # cut by the deadline
            raise ImageError("unreadable", late) from None
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, TimeoutError):
            raise ImageError("unreadable", f"{url}: no answer within {timeout:g} s") from None
        raise ImageError("unreadable", f"{url}: can't be fetched ({reason})") from None  # a reset, a bad scheme...
    finally:
        if timer is not None:
            timer.cancel()
    if len(data) > max_bytes:
        raise ImageError("too-large", f"{url}: larger than any image pafpose reads ({max_bytes / 2**20:.0f} MiB)")
    if not data:
        raise ImageError("empty", f"{url}: empty response")
    return data


#: The files a worker keeps while it runs a video: ``.progress-<pid>``, ``key<TAB>frames done``.
PROGRESS_PREFIX = ".progress-"


class VideoProgress:
    """How far the video in hand is, for the driver's progress (a video is one unit of work,
    which would otherwise show nothing until its last frame): a small file under the results
    folder, rewritten whole at most once a second, removed when the video ends."""

    def __init__(self, results: Path, key: str, every: float = 1.0) -> None:
        self.path = results / f"{PROGRESS_PREFIX}{os.getpid()}"
        self.key, self.every = key, every
        self.frames = 0
        self._last = 0.0

    def frame(self) -> None:
        self.frames += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            tmp = self.path.with_name(self.path.name + ".tmp")
            with contextlib.suppress(OSError):  # progress is a courtesy: never a failed video
                tmp.write_text(f"{self.key}\t{self.frames}\n", encoding="utf-8")
                os.replace(tmp, self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def videos_in_progress(results: Path) -> int:
    """Frames done so far of the videos the workers have in hand (their progress files)."""
    total = 0
    for p in results.glob(f"{PROGRESS_PREFIX}*"):
        if p.name.endswith(".tmp"):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(p.read_text(encoding="utf-8").split("\t")[1])
    return total


def provenance(est: Any, host: str) -> dict[str, Any]:
    """What runs in this actor, for every row it writes (the :data:`~pafpose.batch.results.PROVENANCE`
    columns but the time): the backend and precision ``auto`` resolved to, the device, the
    weights' sha256, pafpose's version and the host."""
    import pafpose
    from pafpose.weights import weights_sha256

    config = est.config
    return {"backend": config.backend, "precision": config.precision, "device": str(est.device),
            "model_sha256": weights_sha256(config.model, config.weights), "pafpose_version": pafpose.__version__,
            "host": host}


class PoseWorker:
    """Ray Data's callable class: ``worker(batch)`` processes a batch of :class:`Item` rows
    (a ``pyarrow.Table`` with ``key``, ``source``, ``kind``, ``name``) and returns one
    :data:`SUMMARY` row per input.

    The settings ride on a subclass (:func:`worker_class`), so that a worker needs no
    constructor arguments: Ray Data builds it, and rebuilds it after a crash, from the class
    alone.
    """

    settings: dict[str, Any] = {}  # noqa: RUF012 (set per run on a subclass)

    def __init__(self) -> None:
        from pafpose.estimator_config import EstimatorConfig
        from pafpose.predict import Estimator

        s = WorkerSettings(**self.settings)
        self.s = s
        self.out = place(s.out)
        self.results = child(self.out, "results")
        self.progress = Path(s.progress) if s.progress else Path(self.results)
        self.host = socket.gethostname()
        if isinstance(self.results, str):  # object storage: the driver's marker read through this node's credentials
            if s.marker and not exists(child(self.results, s.marker)):
                raise PafposeError(f"--out {s.out}: the driver's marker can't be seen from {self.host}: do the nodes "
                                   "see the same object store, with the same endpoint and credentials?")
        elif s.marker and not (self.results / s.marker).exists():
            raise PafposeError(f"--out {s.out} is not the same folder on {self.host} as where the run started: on a "
                               "cluster, --out (and the inputs) must be on storage every node mounts at one path")
        self.est = Estimator(EstimatorConfig.from_dict(s.config))
        self.provenance = provenance(self.est, self.host)
        self.outputs = OutputOptions.from_dict(s.outputs or {"out": s.out, "json": "none"})
        self.coco = self.outputs.json == "coco"  # one file for the run: the driver merges each unit's lines
        if self.coco:
            self.outputs = self.outputs.replace(json="none")
        if self.outputs.controlnet is not None:  # people found as ControlNet's preprocessor finds them
            from pafpose.controlnet import detector

            self.est = detector(self.est, self.outputs.controlnet[0])
        self.frames = FrameRange(*s.frames)
        self.options = json.dumps(s.config, sort_keys=True)
        self.skeleton = self.est.skeleton.name
        self.worker = f"{self.host}:{os.getpid()}"
        self._clock: dict[str, float] = {}  # seconds per stage of the unit in hand

    # ------------------------------------------------------------------ the unit of work
    def __call__(self, batch: pa.Table) -> pa.Table:
        started = time.time()
        items = [Item(**r) for r in batch.select(["key", "source", "kind", "name"]).to_pylist()]
        images = [i for i in items if i.kind == "image"]
        summaries = self.images(images) if images else []
        for item in items:
            if item.kind == "video":
                summaries += self.video(item)
        ended = time.time()
        for s in summaries:
            s["started"], s["ended"] = started, ended
        return pa.Table.from_pylist(summaries, schema=SUMMARY)

    def _existing(self, path: Any, started: float) -> list[dict[str, Any]] | None:
        """The summary of a unit whose shard is already there (Ray retried a task whose first
        attempt wrote it before its worker died): nothing is redone."""
        if not exists(path):
            return None
        try:
            t = read_shard(path, ["key", "kind", "frame", "people", "error"]).to_pylist()
        except Exception:  # damaged: do it again (the new shard replaces it)
            return None
        out: dict[str, dict[str, Any]] = {}
        for r in t:
            s = out.setdefault(r["key"], self._summary(r["key"], r["kind"], 0, 0, 0, None, 0.0, True))
            s["rows"] += 1
            s["frames"] += r["frame"] is not None
            s["people"] += len(r["people"] or [])
            s["error"] = s["error"] or r["error"]
        spent = (time.perf_counter() - started) / max(1, len(out))
        for s in out.values():
            s["seconds"] = spent
        return list(out.values())

    def _summary(self, key: str, kind: str, rows: int, frames: int, people: int, error: str | None,
                 seconds: float, skipped: bool = False, stages: dict[str, float] | None = None) -> dict[str, Any]:
        st = stages or {}
        return {"key": key, "kind": kind, "rows": rows, "frames": frames, "people": people, "error": error,
                "seconds": seconds, "read": st.get("read", 0.0), "infer": st.get("infer", 0.0),
                "write": st.get("write", 0.0), "worker": self.worker, "skipped": skipped}

    def _row(self, item: Item, frame: int | None, size: tuple[int, int] | None, found: Sequence[Any] | None,
             error: str | None = None) -> dict[str, Any]:
        return row(item.key, item.source, item.kind, frame, size, found, self.skeleton, self.s.model, self.options,
                   error, {**self.provenance, "written": datetime.now(timezone.utc)})

    # ------------------------------------------------------------------ images
    def _read(self, item: Item) -> Any:
        from pafpose.images import ImageError, decode_image, open_image

        if "\x00" in item.key:  # os calls raise ValueError for it: an error row, not a failed worker
            raise ImageError("unreadable", f"{item.source!r}: a path with a NUL byte names no file")
        if "://" not in item.key:
            file = open_image(item.key)
        else:
            data = fetch(item.key, self.s.timeout)
            try:
                file = decode_image(data)
            except ImageError as err:
                raise ImageError(err.problem, f"{item.key}: {err}") from None
        # a ControlNet canvas too large: this input alone
        self._writer(staged=False).check(file.width, file.height, item.key)
        return file

    def _writer(self, staged: bool = True) -> Writer:
        """A unit's writer: the names are the driver's (unique across the run). With ``--out``
        in object storage, the files meant for it go to a local folder of the unit's own
        (:meth:`_publish` uploads them; ``staged`` False: a writer that only checks sizes)."""
        outputs = self.outputs
        if isinstance(self.out, str) and staged:
            import shutil
            import tempfile

            if getattr(self, "_staged", None) is not None:  # a unit that failed half-way: its files go
                shutil.rmtree(self._staged, ignore_errors=True)
            self._staged = Path(tempfile.mkdtemp(prefix="pafpose-unit-"))
            outputs = outputs.replace(out=self._staged, json_dir=outputs.json_dir or self._staged,
                                      images_dir=outputs.images_dir or self._staged)
        return Writer(outputs, self.est.spec, self.est.decoder.config)

    def _publish(self) -> None:
        """``--out`` in object storage: upload the unit's files (each appears whole) to the same
        names under ``--out``, before its shard: a shard present means its files are there."""
        staged, self._staged = getattr(self, "_staged", None), None
        if staged is None:
            return
        import shutil

        try:
            for path in sorted(p for p in staged.rglob("*") if p.is_file()):
                storage.upload(path, child(self.out, *path.relative_to(staged).parts))
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def images(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        """A batch of images -> their per-file outputs, then their shard (one row each, in order)."""
        from pafpose.loops import predict_files
        from pafpose.outputs import picture_suffix

        started = time.perf_counter()
        path = child(self.results, shard_name([i.key for i in items], self.s.format))
        existing = self._existing(path, started)
        if existing is not None:
            return existing
        self._clock = dict.fromkeys(("read", "infer", "write"), 0.0)
        before = self._spent()
        writer = self._writer()
        rows: dict[str, dict[str, Any]] = {}
        with self._sidecar(path) as coco:  # before the shard: a shard present means its COCO lines are there
            for item, file, found in predict_files(self.est, items, self._read_timed, self.s.batch_size,
                                                   self.outputs.keep_fields):
                t0 = time.perf_counter()
                if isinstance(found, PafposeError):
                    size = None if file is None else (file.width, file.height)
                    message = str(found) if file is None else f"{item.source}: {found}"
                    rows[item.key] = self._row(item, None, size, None, message)
                else:
                    written = writer.image(found, file.image, item.name, location=item.key,
                                           suffix=picture_suffix(item.key))
                    rows[item.key] = self._row(item, None, (file.width, file.height), written.people)
                    if coco is not None:
                        coco.add(item.key, None, item.name, written.people)
                self._clock["write"] += time.perf_counter() - t0
            writer.finish()
        t0 = time.perf_counter()
        self._publish()
        write_shard(path, self.s.format, lambda w: w.write(rows[i.key] for i in items))
        self._clock["write"] += time.perf_counter() - t0
        self._clock["infer"] = self._spent() - before  # the Estimator's own stages (reading files apart)
        n = len(items)
        spent = (time.perf_counter() - started) / n
        stages = {k: v / n for k, v in self._clock.items()}
        return [self._summary(i.key, "image", 1, 0, len(rows[i.key]["people"]), rows[i.key]["error"], spent,
                              stages=stages) for i in items]

    def _sidecar(self, shard: Any) -> Any:
        """The unit's COCO lines (``--json coco``; a context: committed when the unit's outputs are
        all written), else a context of None."""
        if not self.coco:
            return contextlib.nullcontext(None)
        from pafpose.batch.coco import Sidecar, sidecar_name

        assert isinstance(shard, Path)  # --json coco needs a local --out (BatchOptions)
        return Sidecar(shard.with_name(sidecar_name(shard.name)))

    def _read_timed(self, item: Item) -> Any:
        t0 = time.perf_counter()
        try:
            return self._read(item)
        finally:
            self._clock["read"] += time.perf_counter() - t0

    def _spent(self) -> float:
        return sum(self.est.timings.values())

    # ------------------------------------------------------------------ videos
    def video(self, item: Item) -> list[dict[str, Any]]:
        """One video, start to end (people tracked through it) -> its shard (one row per frame)."""
        started = time.perf_counter()
        path = child(self.results, shard_name([item.key], self.s.format))
        existing = self._existing(path, started)
        if existing is not None:
            return existing
        count = {"frames": 0, "people": 0, "rows": 0}
        errors: list[str] = []
        self._clock = dict.fromkeys(("read", "infer", "write"), 0.0)
        before = sum(self.est.timings.values())
        write_shard(path, self.s.format, lambda w: self._frames(item, w, count, errors))
        spent = time.perf_counter() - started
        self._clock["infer"] = sum(self.est.timings.values()) - before
        self._clock["read"] = max(0.0, spent - self._clock["infer"] - self._clock["write"])  # the frames' decoding
        frames = count["frames"]
        return [self._summary(item.key, "video", count["rows"], frames, count["people"],
                              errors[0] if errors else None, spent, stages=dict(self._clock))]

    def _frames(self, item: Item, w: ShardWriter, count: dict[str, int], errors: list[str]) -> None:
        from pafpose.loops import run_video

        count["frames"] = count["people"] = 0  # this attempt's own counts
        errors.clear()
        if "\x00" in item.key:  # os calls raise ValueError for it: an error row, not a failed worker
            errors.append(f"{item.source!r}: a path with a NUL byte names no file")
            count["rows"] = 1
            w.write([self._row(item, None, None, None, errors[0])])
            return

        from pafpose.outputs import frame_name

        writer = self._writer()
        with self._sidecar(child(self.results, shard_name([item.key], self.s.format))) as coco:  # before the shard

            progress = VideoProgress(self.progress, item.key)

            def row(index: int, frame: np.ndarray, written: Any) -> bool:
                t0 = time.perf_counter()
                progress.frame()
                w.write([self._row(item, index, (frame.shape[1], frame.shape[0]), written.people)])
                if coco is not None:
                    coco.add(item.key, index, frame_name(item.name, index), written.people)
                self._clock["write"] += time.perf_counter() - t0
                return True

            with contextlib.ExitStack() as stack:
                where = item.key
                if storage.is_object_url(item.key):  # OpenCV reads files: a local copy while it runs
                    from pafpose.images import ImageError

                    try:
                        where = stack.enter_context(storage.local_copy(item.key))
                    except ImageError as err:
                        errors.append(str(err))
                        count["rows"] = 1
                        w.write([self._row(item, None, None, None, str(err))])
                        return
                try:
                    done = run_video(self.est, where, writer, item.name, frames=self.frames,
                                     batch_size=self.s.batch_size, track=self.s.track, online=self.s.online,
                                     timeout=self.s.timeout, keep_fields=self.outputs.keep_fields, on_frame=row,
                                     label=item.source)
                finally:
                    progress.close()
            writer.finish()
        self._publish()  # before the shard, which is written whole when this returns
        count["frames"], count["people"], count["rows"] = done.frames, done.people, done.frames + 1
        if done.error is not None:
            errors.append(done.error)
            w.write([self._row(item, None, None, None, done.error)])
        elif done.frames == 0:  # none of its frames asked for (--frame-first...): one row says it is done
            w.write([self._row(item, None, None, [])])
        else:
            count["rows"] = done.frames


def worker_class(settings: WorkerSettings) -> type[PoseWorker]:
    """A :class:`PoseWorker` subclass carrying ``settings`` (see :class:`PoseWorker`)."""
    return type("PoseWorker", (PoseWorker,), {"settings": settings.to_dict(), "__module__": __name__})
