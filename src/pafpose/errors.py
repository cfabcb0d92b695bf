"""Errors for user mistakes (bad input, unknown names); bugs stay ordinary exceptions."""

from __future__ import annotations


class PafposeError(ValueError):
    """A user-facing error: the message says what was wrong and how to fix it.

    The command line prints it as one line and exits non-zero, without a traceback.
    """
