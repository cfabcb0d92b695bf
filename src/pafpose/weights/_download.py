"""Finding weight files: local path -> cache -> mirror folders -> download (verified, atomic)."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from pafpose.errors import PafposeError
from pafpose.io import atomic_output
from pafpose.weights._zoo import PartNetCfg, PretrainedCfg, WeightFile

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$PAFPOSE_HOME`` or ``~/.cache/pafpose``."""
    return Path(os.environ.get("PAFPOSE_HOME") or Path.home() / ".cache" / "pafpose")


def mirror_dirs() -> list[Path]:
    """Folders in ``$PAFPOSE_WEIGHTS_PATH`` (os.pathsep-separated), searched recursively."""
    raw = os.environ.get("PAFPOSE_WEIGHTS_PATH", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def sha256sum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _matches(path: Path, wf: WeightFile) -> bool:
    if wf.folder is not None and path.parent.name != wf.folder:
        return False
    if wf.size is not None and path.stat().st_size != wf.size:
        return False
    return wf.sha256 is None or sha256sum(path) == wf.sha256


def _find_in_mirrors(wf: WeightFile) -> Path | None:
    for root in mirror_dirs():
        for cand in sorted(root.rglob(wf.name)) if root.is_dir() else []:
            if cand.is_file() and _matches(cand, wf):
                return cand
    return None


def download(url: str, dest: Path, sha256: str | None = None, size: int | None = None) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; verify; rename into place.

    The data goes to a temporary file in ``dest``'s folder and is renamed only after the
    size and hash check, so an interrupted or corrupt download never leaves a file that
    looks complete. Only https, and only with a known sha256 and size.
    """
    from tqdm import tqdm

    if not url.startswith(("https://", "file://")):  # file://: a local copy, no network
        raise PafposeError(f"{url}: refusing a download that is not https")
    if sha256 is None or size is None:
        raise PafposeError(f"{url}: refusing a download without a known sha256 and size to check it")

    def fetch(tmp: str) -> None:  # into the temporary file; renamed into place only once checked
        h = hashlib.sha256()
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or size
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        got = Path(tmp).stat().st_size
        if got != size:
            raise PafposeError(f"download of {url} has {got} bytes, expected {size}")
        if h.hexdigest() != sha256:
            raise PafposeError(f"download of {url} has sha256 {h.hexdigest()}, expected {sha256}")

    return atomic_output(dest, fetch)


def resolve_file(cfg: PretrainedCfg | PartNetCfg, wf: WeightFile) -> Path:
    """Where file ``wf`` of ``cfg`` is, fetching it if needed.

    Order: the cache (``$PAFPOSE_HOME/<model>/<file>``), then mirror folders in
    ``$PAFPOSE_WEIGHTS_PATH``, then the official URLs (not with ``PAFPOSE_OFFLINE=1``; only
    files with a known sha256 and size, over https: :meth:`WeightFile.refusal`).
    """
    cached = cache_dir() / cfg.name / wf.name
    if cached.is_file():
        if _matches(cached, WeightFile(wf.name, wf.urls, wf.sha256, wf.size)):
            return cached
        log.warning("cached %s fails its size/sha256 check; fetching it again", cached)
    found = _find_in_mirrors(wf)
    if found is not None:
        return found
    offline = os.environ.get("PAFPOSE_OFFLINE", "") not in ("", "0")
    where = f"put {wf.name} in {cached.parent} or in a folder listed in PAFPOSE_WEIGHTS_PATH"
    refusal = wf.refusal()
    if refusal:
        hand = f"download {wf.urls[0]} yourself and " if wf.urls else ""
        raise PafposeError(f"{cfg.name}: pafpose does not download {wf.name} ({refusal}); {hand}{where}")
    if offline:
        raise PafposeError(f"{cfg.name}: {wf.name} is not cached and PAFPOSE_OFFLINE is set; "
                           f"download {wf.urls[0]} and {where}")
    errors = []
    for url in wf.urls:
        try:
            return download(url, cached, wf.sha256, wf.size)
        except (urllib.error.URLError, OSError, PafposeError) as err:
            errors.append(f"{url}: {err}")
    raise PafposeError(f"{cfg.name}: could not download {wf.name} ({'; '.join(errors)}); {where}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def seal(path: Path) -> None:
    """Record ``path``'s sha256 beside it, so that a later run can tell a cached artefact
    of pafpose's own (converted weights, an exported network) from a damaged one."""
    from pafpose.io import write_bytes_atomic

    try:
        write_bytes_atomic(sha256sum(path).encode(), _sidecar(path))
    except OSError as err:  # a read-only cache only costs start-up time
        log.warning("could not record the checksum of %s (%s)", path, err)


def intact(path: Path) -> bool:
    """Whether ``path`` is still what :func:`seal` recorded (False without a record)."""
    try:
        return _sidecar(path).read_text().strip() == sha256sum(path)
    except (OSError, UnicodeDecodeError):
        return False


def discard(path: Path, why: str) -> None:
    """Delete a damaged cached artefact of pafpose's own (never a user's file) with a
    one-line notice; the caller rebuilds it."""
    log.warning("pafpose: %s: %s; rebuilding it", path, why)
    for p in (path, _sidecar(path)):
        try:
            p.unlink(missing_ok=True)
        except OSError as err:
            log.warning("could not delete %s (%s)", p, err)
