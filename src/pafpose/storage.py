"""Object storage (``s3://``, ``gs://``, ``hdfs://``, ...) read through pyarrow's file systems:
listing a prefix, reading an object's bytes in bounded size, and a local copy of one (a
video, which OpenCV reads from a file).

Credentials and endpoints are the file system's own: for S3 the AWS variables and files
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` for an S3-compatible server
such as MinIO), for Google Cloud Storage the application default credentials. Every
failure is one :class:`~pafpose.errors.PafposeError` (or, reading an input, an
:class:`~pafpose.images.ImageError`) naming the URL.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from pafpose.errors import PafposeError

#: URL schemes read as object storage (pyarrow's file systems), not over HTTP.
OBJECT_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


def is_object_url(text: str) -> bool:
    """Whether ``text`` is an object-store URL (``s3://bucket/key``, ``gs://...``)."""
    from pafpose.io import is_url

    return is_url(text) and text.split("://", 1)[0].lower() in OBJECT_SCHEMES


def _fs(url: str) -> tuple[Any, str]:
    """``(pyarrow file system, path in it)`` for an object-store URL."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(url)
    except (pa.ArrowException, ValueError, OSError) as err:
        raise PafposeError(f"{url}: can't open its storage ({_first_line(err)})") from None


def _input_fs(url: str) -> tuple[Any, str]:
    """:func:`_fs` for reading an input: a storage that can't be opened (a bad bucket name, no
    credentials) is that input's error row, not the run's failure."""
    from pafpose.images import ImageError

    try:
        return _fs(url)
    except PafposeError as err:
        raise ImageError("unreadable", str(err)) from None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _url(url: str, path: str) -> str:
    """The URL of ``path`` in the file system of ``url`` (same scheme)."""
    return f"{url.split('://', 1)[0]}://{path}"


def kind(url: str) -> str:
    """``"dir"`` (a bucket or a prefix with objects under it), ``"file"`` or ``"missing"``."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, path = _fs(url)
    try:
        info = fs.get_file_info(path.rstrip("/"))
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be read ({_first_line(err)})") from None
    if info.type == pafs.FileType.File:
        return "file"
    return "dir" if info.type == pafs.FileType.Directory else "missing"


def list_objects(url: str) -> list[str]:
    """The URLs of every object under the prefix ``url``, recursively, sorted."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, path = _fs(url)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path.rstrip("/"), recursive=True))
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be listed ({_first_line(err)})") from None
    return sorted(_url(url, i.path) for i in infos if i.type == pafs.FileType.File)


def read_bytes(url: str, max_bytes: int) -> bytes:
    """The object's bytes (at most ``max_bytes``: more is an error, never a partial read)."""
    import pyarrow as pa

    from pafpose.images import ImageError

    fs, path = _input_fs(url)
    try:
        with fs.open_input_stream(path) as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageError("unreadable", f"{url}: no such object") from None
    except (pa.ArrowException, OSError) as err:
        raise ImageError("unreadable", f"{url}: can't be read ({_first_line(err)})") from None
    if len(data) > max_bytes:
        raise ImageError("too-large", f"{url}: larger than any image pafpose reads ({max_bytes / 2**20:.0f} MiB)")
    if not data:
        raise ImageError("empty", f"{url}: empty object")
    return data


def read_text(url: str, max_bytes: int = 2**30) -> str:
    """A text object (a list of inputs) as a string; a one-line error if it can't be read."""
    from pafpose.images import ImageError

    try:
        data = read_bytes(url, max_bytes)
    except ImageError as err:
        raise PafposeError(str(err)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PafposeError(f"{url}: not a text list of paths (not UTF-8: {err.reason})") from None


def open_file(url: str) -> Any:
    """A seekable pyarrow file of the object (a Parquet or CSV manifest reads from it)."""
    import pyarrow as pa

    fs, path = _fs(url)
    try:
        return fs.open_input_file(path)
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be read ({_first_line(err)})") from None


@contextlib.contextmanager
def local_copy(url: str, chunk: int = 8 * 2**20) -> Iterator[str]:
    """A temporary local file with the object's bytes (copied in chunks, never held whole),
    removed afterwards: OpenCV reads videos from files."""
    import pyarrow as pa

    from pafpose.images import ImageError

    fs, path = _input_fs(url)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix="pafpose-", suffix=suffix)
    try:
        try:
            with os.fdopen(fd, "wb") as out, fs.open_input_stream(path) as f:
                while True:
                    block = f.read(chunk)
                    if not block:
                        break
                    out.write(block)
        except FileNotFoundError:
            raise ImageError("unreadable", f"{url}: no such object") from None
        except (pa.ArrowException, OSError) as err:
            raise ImageError("unreadable", f"{url}: can't be read ({_first_line(err)})") from None
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# ---------------------------------------------------------------------------- writing (batch's --out)
# An object appears whole when its upload completes (S3's PUT and multipart completion, GCS's
# upload): writing straight to the final key is already atomic, and an upload cut short by a
# kill leaves no object (S3 keeps the parts of an unfinished multipart upload until the
# bucket's lifecycle rule for them removes them).


def join(url: str, *names: str) -> str:
    """``url/name/...``: an object's URL under a prefix."""
    return "/".join([url.rstrip("/"), *names])


def upload(local: str | os.PathLike, url: str, chunk: int = 8 * 2**20) -> None:
    """Copy a local file to the object ``url``, in chunks (the object appears whole or not at all)."""
    import pyarrow as pa

    fs, path = _fs(url)
    try:
        with open(local, "rb") as src, fs.open_output_stream(path, metadata={}) as dst:
            while True:
                block = src.read(chunk)
                if not block:
                    break
                dst.write(block)
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be written ({_first_line(err)})") from None


def write_bytes(url: str, data: bytes) -> None:
    """The object ``url`` with ``data`` as its contents (whole or not at all)."""
    import pyarrow as pa

    fs, path = _fs(url)
    try:
        with fs.open_output_stream(path, metadata={}) as f:
            f.write(data)
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be written ({_first_line(err)})") from None


def delete(url: str) -> bool:
    """Remove the object ``url``; whether it was there."""
    import pyarrow as pa

    fs, path = _fs(url)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        return False
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be removed ({_first_line(err)})") from None
    return True


def move(src: str, dst: str) -> None:
    """Rename an object (on S3 and GCS a copy, then the original removed)."""
    import pyarrow as pa

    fs, path = _fs(src)
    try:
        fs.move(path, _fs(dst)[1])
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{src}: can't be renamed ({_first_line(err)})") from None


def listing(url: str) -> list[tuple[str, float]]:
    """``(URL, modification time in seconds since the epoch)`` of each object directly under
    the prefix ``url`` (not recursive), sorted by URL; nothing when there is no such prefix."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, path = _fs(url)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path.rstrip("/"), allow_not_found=True))
    except (pa.ArrowException, OSError) as err:
        raise PafposeError(f"{url}: can't be listed ({_first_line(err)})") from None
    return sorted((_url(url, i.path), i.mtime.timestamp() if i.mtime is not None else 0.0)
                  for i in infos if i.type == pafs.FileType.File)


__all__ = ["OBJECT_SCHEMES", "delete", "is_object_url", "join", "kind", "list_objects", "listing", "local_copy",
           "move", "open_file", "read_bytes", "read_text", "upload", "write_bytes"]
