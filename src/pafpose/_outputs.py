"""Checking output paths before the work that fills them: a run that can't write its result
should say so at the start, not after an hour of training or evaluation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pafpose.errors import PafposeError


def check_output_dir(path: str | Path, what: str) -> Path:
    """Make folder ``path`` (and its parents) and check that files can be created in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PafposeError(f"{what} {p}: is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pafpose-write-check.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PafposeError(f"{what} {p}: can't write there ({err.strerror or err})") from None
    return p


def check_output_file(path: str | Path, what: str) -> Path:
    """Check that file ``path`` can be written (atomically, beside itself): not a folder, and
    its folder exists or can be made and is writable."""
    p = Path(path)
    if p.is_dir():
        raise PafposeError(f"{what} {p}: is a folder; name a file")
    check_output_dir(p.parent, what + " " + str(p) + ": folder")
    return p
