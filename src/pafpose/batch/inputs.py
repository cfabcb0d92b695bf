"""What a batch run works on: command-line sources (files, folders, globs, URLs), list
files (one path or URL per line) and Parquet/CSV manifests (a column of paths or URLs),
turned into one :class:`Item` per image or video, each with a stable ``key``.

The key is what resume and exactly-once go by: the absolute path of a file (without
resolving symlinks: no system call per entry, so a million-line manifest enumerates in
seconds) or the URL as written. A missing or unreadable file named in a list or manifest is
still an item (it becomes an error row when it is read); a command-line source that names
nothing is an enumeration error, as in ``pafpose predict``.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pafpose import storage
from pafpose.errors import PafposeError
from pafpose.io import VIDEO_EXTENSIONS, UniqueNames, expand_sources

#: Suffixes of list files: one path or URL per line (blank lines and ``#`` comments skipped).
LIST_SUFFIXES = (".txt", ".lst", ".list")
#: Suffixes of manifests: a table with a column of paths or URLs.
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")
#: URL schemes that are live streams or video services, never single images.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt")

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Item:
    """One input: an image or a video.

    Attributes:
        key: what the done-ledger goes by: the absolute path, or the URL.
        source: the path or URL as it was given (in the results' ``source`` column).
        kind: ``"image"`` or ``"video"``.
        name: output name without suffix for the per-file outputs (``sub/photo``), unique in the run.
    """

    key: str
    source: str
    kind: str
    name: str


@dataclass
class Inputs:
    """The items of a run, in a stable order, without repeats."""

    items: list[Item] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  #: one line per source that names nothing usable
    ignored: int = 0  #: files in folders that are neither images nor videos


def _kind(path: str) -> str:
    suffix = os.path.splitext(path.split("?")[0])[1].lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "image"


def _url_kind(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    return "video" if scheme in STREAM_SCHEMES else _kind(url.split("://", 1)[1])


def _url_name(url: str) -> str:
    host, _, path = url.split("://", 1)[1].split("?")[0].rstrip("/").partition("/")
    stem = Path(path).stem if path else host
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[-60:] or "url"


def list_entries(path: Path) -> Iterator[str]:
    """The paths and URLs a list file names, one per line; blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    yield entry
    except UnicodeDecodeError as err:
        raise PafposeError(f"{path}: not a text list of paths (not UTF-8: {err.reason})") from None
    except OSError as err:
        raise PafposeError(f"{path}: can't be read ({err.strerror or err})") from None


def manifest_entries(path: Path | str, column: str) -> Iterator[str]:
    """The values of ``column`` of a Parquet or CSV manifest (a file, or an object-store URL),
    read a record batch at a time (a manifest of millions of rows is never held whole); empty
    values are skipped."""
    import pyarrow as pa

    source: Any = storage.open_file(path) if isinstance(path, str) else path
    suffix = os.path.splitext(str(path))[1].lower()
    try:
        if suffix == ".csv":
            from pyarrow import csv

            reader: Any = csv.open_csv(source, convert_options=csv.ConvertOptions(column_types={column: pa.string()}))
            names = reader.schema.names
        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(source)
            names = pf.schema_arrow.names
        if column not in names:
            raise PafposeError(f"{path}: no column {column!r} (it has: {', '.join(names)}); --path-column names the "
                               "column of paths or URLs")
        batches = iter(reader) if suffix == ".csv" else pf.iter_batches(columns=[column], batch_size=65536)
        for batch in batches:
            for value in batch.column(column).cast(pa.string()).to_pylist():
                if value and value.strip():
                    yield value.strip()
    except PafposeError:
        raise
    except pa.ArrowException as err:
        raise PafposeError(f"{path}: not a readable manifest ({str(err).splitlines()[0]})") from None
    except OSError as err:
        raise PafposeError(f"{path}: can't be read ({err.strerror or err})") from None


def enumerate_inputs(specs: list[str], out: str | Path | None = None, path_column: str = "path") -> Inputs:
    """Resolve a batch run's sources into items.

    Each spec is a list file (``.txt``, ``.lst``, ``.list``), a manifest (``.csv``,
    ``.parquet``) whose ``path_column`` holds paths or URLs, or anything ``pafpose predict``
    takes except cameras: a file, a folder (recursive), a glob, a URL. Relative paths in a
    list or manifest are relative to its folder. Drawn outputs of an earlier run inside
    ``out`` are not inputs.
    """
    result = Inputs()
    seen: set[str] = set()
    names = UniqueNames()

    def add(key: str, source: str, kind: str, name: str) -> None:
        if key not in seen:
            seen.add(key)
            result.items.append(Item(key, source, kind, names.take(name)))

    def add_entry(entry: str, base: Path | str) -> None:
        if _URL.match(entry):
            add(entry, entry, _url_kind(entry), _url_name(entry))
        elif isinstance(base, str):  # a list or manifest in object storage: relative to its prefix
            scheme, _, where = base.partition("://")
            url = f"{scheme}://{posixpath.normpath(posixpath.join(where, entry))}"
            add(url, entry, _url_kind(url), _url_name(url))
        else:
            path = entry if os.path.isabs(entry) else os.path.join(base, entry)
            key = os.path.abspath(path)
            if key == entry:
                key = entry  # one string, not two equal ones: a million entries are held at once
            add(key, entry, _kind(entry), os.path.splitext(os.path.basename(entry))[0] or "file")

    for spec in specs:
        p = Path(spec)
        suffix = p.suffix.lower()
        try:
            if storage.is_object_url(spec):
                _object_source(spec, path_column, add_entry, result)
            elif _URL.match(spec):
                add_entry(spec, Path.cwd())
            elif p.is_file() and suffix in LIST_SUFFIXES:
                for entry in list_entries(p):
                    add_entry(entry, p.parent)
            elif p.is_file() and suffix in MANIFEST_SUFFIXES:
                for entry in manifest_entries(p, path_column):
                    add_entry(entry, p.parent)
            else:
                sources, errors, ignored = expand_sources([spec], out)
                result.errors += errors
                result.ignored += ignored
                for s in sources:
                    if s.kind == "camera":
                        result.errors.append(f"{spec}: a camera is live, not a data set (use pafpose predict); "
                                             "a file of that name does not exist")
                    else:
                        add(os.path.abspath(s.location), s.location, "image" if s.kind == "image" else "video", s.name)
        except PafposeError as err:
            result.errors.append(str(err))
    return result


def _object_source(url: str, path_column: str, add_entry: Any, result: Inputs) -> None:
    """An object-store source: a list or manifest object (entries relative to its prefix), a
    prefix (every image and video under it, recursively), or one object."""
    from pafpose.images import IMAGE_EXTENSIONS

    suffix = os.path.splitext(url.split("?")[0])[1].lower()
    where = storage.kind(url)
    base = url.rsplit("/", 1)[0]
    if where == "file" and suffix in LIST_SUFFIXES:
        for line in storage.read_text(url).splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                add_entry(entry, base)
    elif where == "file" and suffix in MANIFEST_SUFFIXES:
        for entry in manifest_entries(url, path_column):
            add_entry(entry, base)
    elif where == "dir":
        found = 0
        for obj in storage.list_objects(url):
            ext = os.path.splitext(obj)[1].lower()
            if ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS:
                add_entry(obj, base)
                found += 1
            else:
                result.ignored += 1
        if not found:
            result.errors.append(f"{url}: no image or video under this prefix")
    elif where == "file":
        add_entry(url, base)
    else:
        result.errors.append(f"{url}: no such object or prefix")


__all__ = ["LIST_SUFFIXES", "MANIFEST_SUFFIXES", "Inputs", "Item", "enumerate_inputs",
           "list_entries", "manifest_entries"]
