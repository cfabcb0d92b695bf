"""The result rows of a batch run and their files.

One row per image or video frame (:data:`SCHEMA`), written as *shards*: each finished unit
of work (a batch of images, or one whole video) is one Parquet or JSON Lines file under
``OUT/results/``, written to a hidden temporary file and renamed into place, so a shard is
either complete or absent (:mod:`pafpose.batch.ledger` builds resume on that). Rows are
streamed into the temporary file as they come, so a long video never holds its rows in
memory. :func:`read_results` reads a run's shards back as one table, each input once.

``OUT`` may be an object-store URL (``s3://bucket/poses``): a shard is then written to a local
temporary file and uploaded to its final key, where it appears whole when the upload
completes (:mod:`pafpose.storage`), so the same promise holds. Paths are :class:`~pathlib.Path`
on disk and URL strings in object storage (:func:`place`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pafpose.pose import Pose
from pafpose.skeleton import SKELETONS

#: One person, :meth:`pafpose.pose.Pose.to_dict`'s shape (the one of ``pafpose serve`` too):
#: ``track_id`` (null unless tracked), ``score`` (0..1), ``keypoints``: ``[x, y, score]`` per
#: keypoint in the skeleton's order, in the image's pixels, null where missing; ``parts``: more
#: keypoint groups by name (face, hands...), null when the person has none.
POINTS = pa.list_(pa.list_(pa.float32()))
PERSON = pa.struct([("track_id", pa.int64()), ("score", pa.float32()), ("keypoints", POINTS),
                    ("parts", pa.map_(pa.string(), POINTS))])

#: The columns of every result file, in order.
SCHEMA = pa.schema([
    ("key", pa.string()),        # the input's identity: absolute path or URL (resume and dedup go by it)
    ("source", pa.string()),     # the path or URL as listed
    ("kind", pa.string()),       # "image" or "video"
    ("frame", pa.int64()),       # frame index in a video (0-based); null for images and a video's error row
    ("width", pa.int32()),       # the image's (or frame's) width in pixels; null when it couldn't be read
    ("height", pa.int32()),
    ("people", pa.list_(PERSON)),
    ("skeleton", pa.string()),   # the keypoint layout of ``keypoints`` (pafpose skeleton name, e.g. coco18)
    ("model", pa.string()),      # the model (zoo name or weights file)
    ("options", pa.string()),    # the Estimator's options as JSON (EstimatorConfig.to_dict), as asked
    ("error", pa.string()),      # null, or why this input (or the rest of this video) has no poses
    # what ran, for results from mixed machines and versions (null in shards of an older pafpose):
    ("backend", pa.string()),    # resolved: "openvino", "torch" or "onnxruntime" (never "auto")
    ("precision", pa.string()),  # resolved: "float32", "bfloat16", "float16" or "int8"
    ("device", pa.string()),     # "cpu", "cuda:0"...
    ("model_sha256", pa.string()),  # of the weights: the zoo's published file(s), or the file given
    ("pafpose_version", pa.string()),
    ("host", pa.string()),       # the machine that computed the row
    ("written", pa.timestamp("ms", tz="UTC")),  # when the row's unit was finished
])

#: The schema's metadata ``pafpose.keypoints`` (in every Parquet shard too): per skeleton name,
#: the names of the keypoints ``people.keypoints`` holds, in order (``json.loads`` it).
SCHEMA = SCHEMA.with_metadata({"pafpose.keypoints": json.dumps({name: list(s.keypoints)
                                                                 for name, s in SKELETONS.items()})})
#: The columns that say what ran.
PROVENANCE = ("backend", "precision", "device", "model_sha256", "pafpose_version", "host", "written")

FORMATS = ("parquet", "jsonl")
SUFFIXES = {"parquet": ".parquet", "jsonl": ".jsonl"}


def people(poses: Sequence[Pose]) -> list[dict[str, Any]]:
    """The ``people`` column's value for one image's poses (:meth:`Pose.to_dict`, unrounded)."""
    return [p.to_dict(decimals=None) for p in poses]


def row(key: str, source: str, kind: str, frame: int | None, size: tuple[int, int] | None,
        found: Sequence[Pose] | None, skeleton: str, model: str, options: str, error: str | None = None,
        provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """One result row (``size`` is ``(width, height)``; ``found`` None for an error row;
    ``provenance``: the :data:`PROVENANCE` columns, null when not given)."""
    w, h = size if size is not None else (None, None)
    return {"key": key, "source": source, "kind": kind, "frame": frame, "width": w, "height": h,
            "people": [] if found is None else people(found), "skeleton": skeleton, "model": model,
            "options": options, "error": error, **dict.fromkeys(PROVENANCE), **(provenance or {})}


def _json_safe(value: Any) -> Any:
    """NaN -> null, floats to 0.001 (the precision OpenPose JSON keeps)."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return value


class ShardWriter:
    """Appends rows to one shard file (the temporary file :func:`write_shard` renames)."""

    def __init__(self, path: str, fmt: str, flush_rows: int = 256) -> None:
        self.format = fmt
        self.rows = 0
        self._pending: list[dict[str, Any]] = []
        self._flush_rows = flush_rows
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer: Any = pq.ParquetWriter(path, SCHEMA, compression="zstd")
        else:
            self._writer = open(path, "w", encoding="utf-8")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self._pending.append(r)
            self.rows += 1
            if len(self._pending) >= self._flush_rows:
                self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        if self.format == "parquet":
            self._writer.write_table(pa.Table.from_pylist(self._pending, schema=SCHEMA))
        else:
            self._writer.write("".join(json.dumps(_json_safe(r), allow_nan=False) + "\n" for r in self._pending))
        self._pending = []

    def close(self) -> None:
        self.flush()
        self._writer.close()


Place = Path | str  #: a file or folder: a Path on disk, a URL string in object storage


def place(where: str | Path) -> Place:
    """``where`` as batch's code handles it: an object-store URL stays a string (a Path would
    make ``s3://b/p`` the local ``s3:/b/p``), anything else is a Path."""
    from pafpose.storage import is_object_url

    text = str(where)
    return text.rstrip("/") if is_object_url(text) else Path(where)


def child(folder: Place, *names: str) -> Place:
    """``folder/name/...`` on disk or in object storage."""
    if isinstance(folder, str):
        from pafpose.storage import join

        return join(folder, *names)
    return folder.joinpath(*names)


def exists(path: Place) -> bool:
    """Whether the file (or object) is there."""
    if isinstance(path, str):
        from pafpose.storage import kind

        return kind(path) == "file"
    return path.exists()


def name_of(path: Place) -> str:
    """The last part of a path or URL."""
    return path.rsplit("/", 1)[-1] if isinstance(path, str) else path.name


def write_bytes(path: Place, data: bytes) -> None:
    """A whole file (or object) with ``data``: renamed into place on disk, uploaded whole in
    object storage."""
    if isinstance(path, str):
        from pafpose.storage import write_bytes as put

        put(path, data)
    else:
        from pafpose.io import write_bytes_atomic

        write_bytes_atomic(data, path)


def rename(path: Place, name: str) -> None:
    """Rename a file or object within its folder (in object storage: a copy, then a removal)."""
    if isinstance(path, str):
        from pafpose.storage import move

        move(path, path.rsplit("/", 1)[0] + "/" + name)
    else:
        import os

        os.replace(path, path.with_name(name))


def remove(path: Place) -> None:
    """Remove a file or object; nothing if it is not there."""
    if isinstance(path, str):
        from pafpose.storage import delete

        delete(path)
    else:
        path.unlink(missing_ok=True)


def write_shard(path: Place, fmt: str, produce: Callable[[ShardWriter], None]) -> Place:
    """Write a shard atomically: ``produce(writer)`` appends the rows; the file appears, whole,
    only when it returns (an exception or a kill leaves no shard). In object storage, the
    rows go to a local temporary file first, uploaded when they are all there."""
    from pafpose.io import atomic_output

    def write(tmp: str) -> None:
        writer = ShardWriter(tmp, fmt)
        try:
            produce(writer)
        finally:
            writer.close()

    if isinstance(path, str):
        import os
        import tempfile

        from pafpose.storage import upload

        fd, tmp = tempfile.mkstemp(prefix="pafpose-shard-", suffix=SUFFIXES[fmt])
        os.close(fd)
        try:
            write(tmp)
            upload(tmp, path)
        finally:
            os.unlink(tmp)
        return path
    return atomic_output(path, write)


def read_shard(path: Place, columns: Sequence[str] | None = None) -> pa.Table:
    """One shard as a table with :data:`SCHEMA`'s columns (or ``columns`` of them)."""
    if not isinstance(path, str):
        path = Path(path)
    wanted = list(columns) if columns else list(SCHEMA.names)
    if name_of(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        if isinstance(path, str):
            from pafpose.storage import open_file

            source: Any = open_file(path)
        else:
            source = path
        with pq.ParquetFile(source) as file:
            present = set(file.schema_arrow.names)
            table = file.read(columns=[c for c in wanted if c in present])
        for name in wanted:  # a column a shard of an older pafpose lacks (the provenance): null
            if name not in present:
                table = table.append_column(SCHEMA.field(name), pa.nulls(table.num_rows, SCHEMA.field(name).type))
        return table.select(wanted)
    # JSON Lines through Python's json, in chunks: pyarrow's JSON reader has no map type (``parts``)
    schema = SCHEMA if not columns else pa.schema([SCHEMA.field(c) for c in columns])
    chunks, rows = [], []
    if isinstance(path, str):
        import io

        from pafpose.storage import read_text

        lines: Any = io.StringIO(read_text(path))
    else:
        lines = open(path, encoding="utf-8")  # closed by the with below
    with lines as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("written") is not None:  # an ISO 8601 string in JSON
                    r["written"] = datetime.fromisoformat(r["written"])
                rows.append(r)
            if len(rows) >= 4096:
                chunks.append(pa.Table.from_pylist(rows, schema=schema))
                rows = []
    chunks.append(pa.Table.from_pylist(rows, schema=schema))
    return pa.concat_tables(chunks)


def shard_paths(out: str | Path) -> list[Place]:
    """A run's shards (``OUT/results/part-*``), in name order."""
    folder = child(place(out), "results")
    if isinstance(folder, str):
        from pafpose.storage import listing

        return [u for u, _ in listing(folder) if _is_shard(name_of(u))]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _is_shard(p.name))


def _is_shard(name: str) -> bool:
    return name.startswith("part-") and any(name.endswith(s) for s in SUFFIXES.values())


def results_frame(out: str | Path, columns: Sequence[str] | None = None) -> Any:
    """:func:`read_results` as a pandas DataFrame whose integer columns stay integers
    (pandas' nullable ``Int64``/``Int32``: ``frame`` is null for images, which plain pandas
    would turn into float64) and strings pandas' own."""
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.string(): pd.StringDtype()}
    return read_results(out, columns).to_pandas(types_mapper=mapping.get)


def read_results(out: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Every result of the batch run(s) in ``out``, each input once: one table with
    :data:`SCHEMA` (or ``columns``), ordered by shard name.

    A run never writes an input twice, but should two shards ever hold the same key (e.g.
    shards copied together from two output folders), the rows of the first shard by name
    are kept and the other's dropped.
    """
    wanted = list(columns) if columns else list(SCHEMA.names)
    read = wanted if "key" in wanted else [*wanted, "key"]
    seen: set[str] = set()
    tables = []
    for path in shard_paths(out):
        table = read_shard(path, read)
        keys = table.column("key").to_pylist()
        fresh = set(keys) - seen
        if len(fresh) < len(set(keys)):
            table = table.filter(pa.array([k in fresh for k in keys]))
        seen |= fresh
        tables.append(table.select(wanted))
    if not tables:
        return SCHEMA.empty_table().select(wanted)
    return pa.concat_tables(tables)
