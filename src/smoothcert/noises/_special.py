"""Special-function helpers shared by the noise families: gamma ratios and gamma quantiles that
stay accurate in high dimension and in both tails."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = ["log_gamma_ratio", "gamma_ppf", "gamma_isf", "round_down", "floor_to_grid", "ULPS_4"]

#: four units in the last place, relative: covers a closed form evaluated to a couple of ulps
#: plus the half-ulp rounding of the multiplication by the scale that follows
ULPS_4 = 4.0 * float(np.finfo(np.float64).eps)


def round_down(values: np.ndarray, rtol: float = ULPS_4) -> np.ndarray:
    """``values`` times 1 - rtol: a radius whose float64 evaluation is not provably below the
    truth is taken down by more than its evaluation error (``rtol`` is that error's bound, with
    room to spare, e.g. measured against mpmath)."""
    return np.asarray(values, dtype=np.float64) * (1.0 - rtol)


def floor_to_grid(x: np.ndarray, bits: int, step_min: float = 0.0) -> np.ndarray:
    """x >= 0 rounded down to a multiple of max(2^(exponent(x) - bits), step_min): a
    non-decreasing map with x - 2^-bits relative (or step_min) < result <= x. Applied to the
    argument of a function evaluated with ulp-level noise, it makes the result non-decreasing:
    consecutive grid points are far further apart than the noise."""
    x = np.asarray(x, dtype=np.float64)
    _, exponent = np.frexp(x)
    step = np.maximum(np.ldexp(1.0, exponent - bits), step_min)
    return np.floor(x / step) * step


def log_gamma_ratio(x: float, h: float) -> float:
    """ln(Gamma(x + h) / Gamma(x)) for x > 0 and x + h > 0.

    scipy's ``poch`` is accurate to a few ulp even where Gamma(x) overflows (x = 150528 / k);
    where the ratio itself leaves the float64 range, the difference of ``gammaln`` is used.
    """
    if not (x > 0 and x + h > 0):
        raise ValueError(f"log_gamma_ratio needs x > 0 and x + h > 0, got x={x!r}, h={h!r}")
    ratio = float(special.poch(x, h))
    if math.isfinite(ratio) and ratio > 1e-300:
        return math.log(ratio)
    return float(special.gammaln(x + h) - special.gammaln(x))


def _split(y: np.ndarray, small: Callable[[np.ndarray], np.ndarray],
           large: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    out = np.empty(y.shape, dtype=np.float64)
    low = y <= 0.5
    out[low] = small(y[low])
    # 1 - y is exact for y in [1/2, 1] (Sterbenz), so the other tail keeps its precision
    out[~low] = large(1.0 - y[~low])
    return out


def gamma_ppf(a: float, y: np.ndarray) -> np.ndarray:
    """The quantile z with P(Z <= z) = y, Z ~ Gamma(a), accurate in both tails."""
    return _split(y, lambda v: special.gammaincinv(a, v), lambda v: special.gammainccinv(a, v))


def gamma_isf(a: float, y: np.ndarray) -> np.ndarray:
    """The quantile z with P(Z > z) = y, Z ~ Gamma(a), accurate in both tails."""
    return _split(y, lambda v: special.gammainccinv(a, v), lambda v: special.gammaincinv(a, v))
