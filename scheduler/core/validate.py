"""Number validation for parameters: the one validator family of the project.

``check_number`` and ``check_integer`` accept a value only if it is a real
number (``bool`` is not, strings are not) within the given bounds, and
otherwise raise :class:`~scheduler.core.errors.SpecError` naming the field and
what is accepted, e.g. ``w: got -1, expected a number >= 0``.  Strategy
classes, the core's own configuration and the shells' file readers use them,
so every bad number is reported the same way::

    class Mine(Strategy):
        def __init__(self, d: int = 2, w: float = 1.0):
            self.d = check_integer("d", d, low=1)
            self.w = check_number("w", w, low=0.0)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import SpecError


def _accepted(kind: str, low: float, high: float, low_open: bool, high_open: bool, suffix: str) -> str:
    has_low, has_high = low != -math.inf, high != math.inf
    if has_low and has_high:
        rng = ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
        text = f"{kind} in {rng}"
    elif has_low:
        text = f"{kind} {'>' if low_open else '>='} {low:g}"
    elif has_high:
        text = f"{kind} {'<' if high_open else '<='} {high:g}"
    else:
        text = f"a finite {kind.removeprefix('a ').removeprefix('an ')}"
    return f"{text} {suffix}" if suffix else text


def _in_range(x: float, low: float, high: float, low_open: bool, high_open: bool) -> bool:
    return (x > low if low_open else x >= low) and (x < high if high_open else x <= high)


def check_number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    suffix: str = "",
) -> float:
    """``value`` as a float if it is a finite real number within ``[low, high]``
    (``low_open``/``high_open`` exclude the bound); otherwise a :class:`SpecError`
    naming ``name`` and the accepted range (``suffix`` is appended to it, e.g.
    ``"for lognormal"``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        try:
            x = float(value)
        except OverflowError:  # an integer too large for a float
            ok = False
        else:
            ok = math.isfinite(x) and _in_range(x, low, high, low_open, high_open)
    if not ok:
        raise SpecError(name, value, _accepted("a number", low, high, low_open, high_open, suffix))
    return x


def check_integer(
    name: str, value: Any, *, low: float = -math.inf, high: float = math.inf, suffix: str = ""
) -> int:
    """``value`` as an int if it is an integer (``3`` or ``3.0``, not ``True``)
    within ``[low, high]``; otherwise a :class:`SpecError` naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        try:
            ok = float(value).is_integer() and _in_range(int(value), low, high, False, False)
        except (OverflowError, ValueError):  # too large for a float, or nan/inf
            ok = False
    if not ok:
        raise SpecError(name, value, _accepted("an integer", low, high, False, False, suffix))
    return int(value)
