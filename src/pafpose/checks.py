"""Checks on numbers a user gives (options, config files, API arguments).

One place, so that every command and config says the same thing about a bad value: NaN,
infinities and out-of-range numbers are one-line errors, never a traceback deep inside, a
silent NaN result or an allocation that takes the machine down.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from pafpose.errors import PafposeError

# Limits of the Estimator's options, shared by the API, every command and the server: memory
# and time grow with the square of the input size, so these bound what one image can cost.
SCALE_RANGE = (0.25, 2.0)  #: each test-time scale, relative to the network height
MAX_SCALES = 4  #: test-time scales at once
MAX_HEIGHT = 2048  #: network input height at scale 1
MAX_SIDE = 8192  #: longest network input side at scale 1


def _fmt(v: float) -> str:
    """Whole numbers in full (a seed's bound is 4294967295, not 4.29497e+09), others short."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def _describe(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {_fmt(hi)}"
    return "finite"


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                 integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> Any:
    """``value`` if it is a finite number (an int with ``integer``) within the bounds, else a
    :class:`PafposeError` naming ``name``, the rule and the value. Booleans and numeric
    strings are refused: a YAML ``size: "368"`` is a mistake worth saying."""
    ok_type = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    if isinstance(value, (bool, np.bool_)) or not ok_type:
        kind = "a whole number" if integer else "a number"
        raise PafposeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise PafposeError(f"{name} must be a finite number, got {value}")
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if below or above:
        raise PafposeError(f"{name} must be {_describe(lo, hi, lo_open, hi_open)}, got {_fmt(value)}")
    return value


def number(lo: float | None = None, hi: float | None = None, *, integer: bool = False,
           lo_open: bool = False, hi_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses a float (or int) and checks it as :func:`check_number`;
    a bad value is argparse's one-line usage error (exit 2)."""

    def parse(text: str) -> Any:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{'a whole number' if integer else 'a number'} expected, "
                                             f"got {text!r}") from None
        try:
            return check_number("the value", value, lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)
        except PafposeError as err:
            raise argparse.ArgumentTypeError(str(err).replace("the value must be", "must be")) from None

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in its message
    return parse
