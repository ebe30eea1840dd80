"""Parsing lists of values (noise levels, gaps, radii) written as lists, ranges or progressions."""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["parse_values"]


def _number(part: str, name: str, text: str) -> Fraction:
    try:
        return Fraction(part.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{part.strip()!r} in {name} {text!r} is not a number") from None


def parse_values(text: str, name: str = "values") -> list[float]:
    """Numbers from ``"8,11,14"`` (a list), ``"0:20"`` (start:stop, step 1), ``"0:1:0.1"``
    (start:stop:step) or ``"0,0.1,...,0.9"`` (the first two values set the step); ranges include
    their end. Exact decimal arithmetic, so ``0,0.1,...,0.9`` gives 0.3, not 0.30000000000000004.
    """
    text = text.strip()
    if not text:
        raise ValueError(f"{name} must not be empty; give e.g. '8,11,14', '0:20' or "
                         f"'0,0.1,...,0.9'")
    parts = [p.strip() for p in text.split(",")]
    if "..." in parts:
        if len(parts) != 4 or parts[2] != "...":
            raise ValueError(f"{name} {text!r}: write a progression as 'first,second,...,last'")
        first, second, last = (_number(parts[k], name, text) for k in (0, 1, 3))
        return _progression(first, last, second - first, name, text)
    if ":" in text:
        pieces = text.split(":")
        if len(pieces) not in (2, 3):
            raise ValueError(f"{name} range {text!r} must be start:stop or start:stop:step")
        start, stop = _number(pieces[0], name, text), _number(pieces[1], name, text)
        step = _number(pieces[2], name, text) if len(pieces) == 3 else Fraction(1)
        return _progression(start, stop, step, name, text)
    return [float(_number(p, name, text)) for p in parts if p]


def _progression(start: Fraction, stop: Fraction, step: Fraction, name: str, text: str
                 ) -> list[float]:
    if step <= 0 or stop < start:
        raise ValueError(f"{name} {text!r} needs a step > 0 and last >= first")
    count = math.floor((stop - start) / step) + 1
    return [float(start + k * step) for k in range(count)]
