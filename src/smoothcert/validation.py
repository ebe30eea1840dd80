"""Argument checks shared by the library and the command line.

Each check returns the value in its canonical type or raises ``ValueError`` (``TypeError`` where
noted by the caller's contract) whose message names the argument, the value given and what would be
valid. Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["check_int", "check_float", "check_choice", "check_probability"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def check_int(name: str, value: Any, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as an int within [minimum, maximum] (either bound optional)."""
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer{_range(minimum, maximum)}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{_range(minimum, maximum)}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, minimum: float | None = None,
                maximum: float | None = None, strict_minimum: bool = False,
                strict_maximum: bool = False) -> float:
    """``value`` as a finite float within the given bounds (``strict_*``: bound excluded)."""
    ok = _is_number(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        if minimum is not None and (v < minimum or (strict_minimum and v == minimum)):
            ok = False
        if maximum is not None and (v > maximum or (strict_maximum and v == maximum)):
            ok = False
    if not ok:
        lo = "" if minimum is None else f"{'>' if strict_minimum else '>='} {minimum:g}"
        hi = "" if maximum is None else f"{'<' if strict_maximum else '<='} {maximum:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, "
                         f"got {value!r}")
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1."""
    return check_float(name, value, minimum=0.0, maximum=1.0, strict_minimum=True,
                       strict_maximum=True)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose from "
                         f"{', '.join(str(c) for c in options)}")
    return value


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
