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

import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pafpose.batch.inputs import Item
from pafpose.batch.ledger import shard_name
from pafpose.batch.results import ShardWriter, read_shard, row, write_shard
from pafpose.errors import PafposeError
from pafpose.images import JPEG_EXTENSIONS

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
    out: str  #: absolute output folder (on a cluster, a path every node sees)
    format: str = "parquet"
    json: str = "none"  #: "openpose": one OpenPose JSON per image or frame, as pafpose predict writes
    save_images: bool = False
    save_video: bool = False
    threshold: float = 0.1  #: keypoint score below which nothing is drawn
    timeout: float = 10.0  #: seconds to wait for a URL
    batch_size: int = 1  #: images or frames per network call
    track: bool = True  #: track people through each video
    online: bool = False  #: video files tracked as live streams are (by default offline, as pafpose predict)
    model: str = ""  #: the model's name for the ``model`` column
    marker: str = ""  #: a file the driver made under OUT/results: seen here means OUT is shared

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def fetch(url: str, timeout: float, max_bytes: int = MAX_URL_BYTES) -> bytes:
    """The bytes at ``url`` (http, https, file), in bounded size and time; any failure is one
    :class:`~pafpose.images.ImageError` naming the URL."""
    import urllib.error
    import urllib.request

    from pafpose.images import ImageError

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            data = r.read(max_bytes + 1)
    except urllib.error.HTTPError as err:
        raise ImageError("unreadable", f"{url}: can't be fetched (HTTP {err.code} {err.reason})") from None
    except urllib.error.URLError as err:
        raise ImageError("unreadable", f"{url}: can't be fetched ({err.reason})") from None
    except TimeoutError:
        raise ImageError("unreadable", f"{url}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as err:  # a reset connection, an unknown scheme...
        raise ImageError("unreadable", f"{url}: can't be fetched ({err})") from None
    if len(data) > max_bytes:
        raise ImageError("too-large", f"{url}: larger than any image pafpose reads ({max_bytes / 2**20:.0f} MiB)")
    if not data:
        raise ImageError("empty", f"{url}: empty response")
    return data


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
        self.out = Path(s.out)
        self.results = self.out / "results"
        self.host = socket.gethostname()
        if s.marker and not (self.results / s.marker).exists():
            raise PafposeError(f"--out {s.out} is not the same folder on {self.host} as where the run started: on a "
                               "cluster, --out (and the inputs) must be on storage every node mounts at one path")
        self.est = Estimator(EstimatorConfig.from_dict(s.config))
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

    def _existing(self, path: Path, started: float) -> list[dict[str, Any]] | None:
        """The summary of a unit whose shard is already there (Ray retried a task whose first
        attempt wrote it before its worker died): nothing is redone."""
        if not path.exists():
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
                   error)

    # ------------------------------------------------------------------ images
    def _read(self, item: Item) -> Any:
        from pafpose.images import ImageError, decode_image, open_image

        if "://" not in item.key:
            return open_image(item.key)
        data = fetch(item.key, self.s.timeout)
        try:
            return decode_image(data)
        except ImageError as err:
            raise ImageError(err.problem, f"{item.key}: {err}") from None

    def images(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        """A batch of images -> their shard (one row each, in order)."""
        started = time.perf_counter()
        path = self.results / shard_name([i.key for i in items], self.s.format)
        existing = self._existing(path, started)
        if existing is not None:
            return existing
        rows: dict[str, dict[str, Any]] = {}
        pending: list[tuple[Item, Any]] = []
        self._clock = dict.fromkeys(("read", "infer", "write"), 0.0)
        for item in items:
            t0 = time.perf_counter()
            try:
                pending.append((item, self._read(item)))
            except PafposeError as err:
                rows[item.key] = self._row(item, None, None, None, str(err))
            self._clock["read"] += time.perf_counter() - t0
            if len(pending) >= self.s.batch_size:
                self._predict(pending, rows)
                pending = []
        self._predict(pending, rows)
        t0 = time.perf_counter()
        write_shard(path, self.s.format, lambda w: w.write(rows[i.key] for i in items))
        self._clock["write"] += time.perf_counter() - t0
        n = len(items)
        spent = (time.perf_counter() - started) / n
        stages = {k: v / n for k, v in self._clock.items()}
        return [self._summary(i.key, "image", 1, 0, len(rows[i.key]["people"]), rows[i.key]["error"], spent,
                              stages=stages) for i in items]

    def _predict(self, pending: list[tuple[Item, Any]], rows: dict[str, dict[str, Any]]) -> None:
        """Poses for decoded images, in network calls of images with equal input sizes: each
        image gets exactly the padding it gets alone, so its poses are those ``pafpose
        predict`` finds, whatever company it has in the batch."""
        groups: dict[tuple[Any, ...], list[tuple[Item, Any]]] = {}
        for item, file in pending:
            groups.setdefault(self.est.input_sizes(file.image.shape), []).append((item, file))
        for group in groups.values():
            t0 = time.perf_counter()
            try:
                found = self.est.predict_batch([file.image for _, file in group])
            except PafposeError:  # one odd image: find which, the others still get poses
                found = []
                for _, file in group:
                    try:
                        found.append(self.est.predict(file.image))
                    except PafposeError as err:
                        found.append(err)
            t1 = time.perf_counter()
            self._clock["infer"] += t1 - t0
            for (item, file), poses in zip(group, found, strict=True):
                if isinstance(poses, PafposeError):
                    rows[item.key] = self._row(item, None, (file.width, file.height), None,
                                               f"{item.source}: {poses}")
                else:
                    rows[item.key] = self._image_done(item, file, poses)
            self._clock["write"] += time.perf_counter() - t1

    def _image_done(self, item: Item, file: Any, poses: Any) -> dict[str, Any]:
        """The per-file outputs of one image, and its row (keypoints in the file's pixels)."""
        from pafpose.pose import scale_poses

        sx, sy = file.scale
        found = poses if (sx, sy) == (1.0, 1.0) else scale_poses(poses, 1 / sx, 1 / sy)
        if self.s.json == "openpose":
            self._json(item.name, found)
        if self.s.save_images:
            suffix = ".jpg" if Path(item.key.split("?")[0]).suffix.lower() in JPEG_EXTENSIONS else ".png"
            self._picture(item.name, file.image, poses, suffix)
        return self._row(item, None, (file.width, file.height), found)

    def _json(self, name: str, found: Any) -> None:
        from pafpose.formats import openpose_json, write_json_atomic

        write_json_atomic(openpose_json(found), self.out / f"{name}_keypoints.json")

    def _picture(self, name: str, image: np.ndarray, poses: Any, suffix: str) -> None:
        from pafpose.draw import poses as draw_poses
        from pafpose.io import write_image_atomic

        write_image_atomic(draw_poses(image, poses, threshold=self.s.threshold), self.out / f"{name}_rendered{suffix}")

    # ------------------------------------------------------------------ videos
    def video(self, item: Item) -> list[dict[str, Any]]:
        """One video, start to end (people tracked through it) -> its shard (one row per frame)."""
        started = time.perf_counter()
        path = self.results / shard_name([item.key], self.s.format)
        existing = self._existing(path, started)
        if existing is not None:
            return existing
        count = {"frames": 0, "people": 0}
        errors: list[str] = []
        self._clock = dict.fromkeys(("read", "infer", "write"), 0.0)
        before = sum(self.est.timings.values())
        write_shard(path, self.s.format, lambda w: self._frames(item, w, count, errors))
        spent = time.perf_counter() - started
        self._clock["infer"] = sum(self.est.timings.values()) - before
        self._clock["read"] = max(0.0, spent - self._clock["infer"] - self._clock["write"])  # the frames' decoding
        frames = count["frames"]
        return [self._summary(item.key, "video", frames + len(errors), frames, count["people"],
                              errors[0] if errors else None, spent, stages=dict(self._clock))]

    def _frames(self, item: Item, w: ShardWriter, count: dict[str, int], errors: list[str]) -> None:
        from pafpose.io import is_url
        from pafpose.video import VideoWriter, capture_info, open_capture

        count["frames"] = count["people"] = 0  # this attempt's own counts
        errors.clear()
        try:
            cap = open_capture(item.key, timeout=self.s.timeout)
        except PafposeError as err:
            errors.append(str(err))
            w.write([self._row(item, None, None, None, str(err))])
            return
        fps, total = capture_info(cap)
        video = VideoWriter(self.out / f"{item.name}_rendered.mp4", fps) if self.s.save_video else None
        try:
            offline = not self.s.online and not is_url(item.key)  # a file: smoothed from both sides, as predict
            for index, frame, poses in self.est.stream(cap, batch_size=self.s.batch_size, timeout=self.s.timeout,
                                                       track=self.s.track, offline=offline):
                t0 = time.perf_counter()
                count["frames"] += 1
                count["people"] += len(poses)
                name = f"{item.name}_{index:012d}"
                if self.s.json == "openpose":
                    self._json(name, poses)
                if video is not None or self.s.save_images:
                    from pafpose.draw import poses as draw_poses

                    drawn = draw_poses(frame, poses, threshold=self.s.threshold)
                    if video is not None:
                        video.write(drawn)
                    if self.s.save_images:
                        from pafpose.io import write_image_atomic

                        write_image_atomic(drawn, self.out / f"{name}_rendered.jpg")
                w.write([self._row(item, index, (frame.shape[1], frame.shape[0]), poses)])
                self._clock["write"] += time.perf_counter() - t0
        finally:
            cap.release()
            if video is not None:
                video.close()
        frames = count["frames"]
        if frames == 0:
            errors.append(f"{item.source}: no frame could be decoded")
        elif total and "://" not in item.key and frames + max(2, total // 100) < total:
            errors.append(f"{item.source}: the video ended after {frames} of its {total} frames (truncated or "
                          "damaged); the frames read are kept")
        if errors:
            w.write([self._row(item, None, None, None, errors[0])])


def worker_class(settings: WorkerSettings) -> type[PoseWorker]:
    """A :class:`PoseWorker` subclass carrying ``settings`` (see :class:`PoseWorker`)."""
    return type("PoseWorker", (PoseWorker,), {"settings": settings.to_dict(), "__module__": __name__})
