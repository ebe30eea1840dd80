"""The differential method of [YDH+20] (Section 3.2 of the spec): R(rho) = int_{1-rho}^{1/2} dt / Phi(t).

For a smoothing density q = exp(-psi) and an adversary ball B, let Phi(t), for t in (0, 1/2], be
the supremum over v in B of the expected value of <v, grad psi(y)>, y ~ q, over an upper tail
of mass t. Along any straight path of the adversary the probability rho of the top class
satisfies d rho / ds >= -Phi(1 - rho), hence the smoothed classifier keeps its prediction within
the radius R(rho) = int_{1-rho}^{1/2} dt / Phi(t) ([YDH+20], Theorem on the differential method).
Phi is positive and non-decreasing on (0, 1/2], and R is increasing in rho.

A family supplies Phi (vectorized over float64 t in (0, 1/2]) and calls ``differential_radius``,
which answers from a cached radius table and, above the table's range, by direct quadrature.
Two independent evaluations of the integral live here:

- ``radius_exact``: all radii of a sorted array of rho at once, used to build the tables. The
  integral is accumulated piece by piece between consecutive points with fixed-order
  Gauss-Legendre rules. Each piece is integrated in a variable in which the integrand is analytic
  near its ends: s = ln t on (0, 1/4], where Phi(t) behaves like t (ln 1/t)^c or t^c, and
  s = ln(1/2 - t) on [1/4, 1/2), where Phi has a weak non-analytic point at t = 1/2. Pieces are
  cut so that no rule spans more than ``_MAX_WIDTH`` in s; the quadrature error is then ~1e-15
  relative, far below the error of Phi itself.
- ``radius_direct``: one ``scipy.integrate.quad`` per value in the same variables, for the rare
  p_lower above the tables' range, up to rho = 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import integrate
from scipy.special import ndtri

from smoothcert.noises.radii.table import P_TABLE_MAX, RadiusTable, build_table, cached_table

__all__ = ["Phi", "Tail", "radius_exact", "radius_direct", "differential_table",
           "differential_radius"]

log = logging.getLogger(__name__)

#: Phi(t) for float64 t in (0, 1/2], vectorized; positive and non-decreasing
Phi = Callable[[np.ndarray], np.ndarray]

_NODES = 10
_MAX_WIDTH = 0.5
# The first piece below t = 1/2 is integrated down to eps = (1/2 - t) * 2^-60; the rest
# (a relative 1e-18 of that piece) is bounded below by eps_min / Phi(1/2), since Phi is
# non-decreasing and maximal at 1/2.
_GRADE = 2.0 ** -60
_QUAD_EPSREL = 1e-11
# quad's results are rounded down by its own error estimate and by this relative amount, which
# covers the error of Phi itself (scipy's incomplete gamma and beta functions, ~1e-10).
_QUAD_MARGIN = 1e-9
_REQUIRED_KEYS = ("family", "norm", "dim")
_U_MAX = float(-ndtri(1.0 - P_TABLE_MAX))
_EXACT_ERROR = 1e-9


def _gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(_NODES)
    return 0.5 * (x + 1.0), 0.5 * w  # on [0, 1]


_GL_X, _GL_W = _gauss_legendre()


def _integrand(s: np.ndarray, upper: np.ndarray, phi: Phi) -> np.ndarray:
    """dt / Phi(t) per unit of s: s = ln t (lower) or s = ln(1/2 - t) (upper); both give e^s."""
    e = np.exp(s)
    t = np.where(upper, 0.5 - e, e)
    value = np.asarray(phi(t), dtype=np.float64)
    if value.shape != t.shape:
        raise ValueError(f"Phi returned shape {value.shape} for input shape {t.shape}")
    if not np.all(value > 0) or not np.all(np.isfinite(value)):
        bad = t[~((value > 0) & np.isfinite(value))].ravel()[0]
        raise FloatingPointError(f"Phi({bad!r}) is not a finite positive number")
    return e / value


def _pieces(t_hi: np.ndarray, t_lo: np.ndarray, phi: Phi) -> np.ndarray:
    """int_{t_lo}^{t_hi} dt / Phi(t) for each pair, 1/4 <= t_lo <= t_hi <= 1/2 or both <= 1/4."""
    upper = t_lo >= 0.25
    with np.errstate(divide="ignore"):
        # exact: Sterbenz's lemma for t in [1/4, 1/2]
        a = np.where(upper, np.log(0.5 - t_hi), np.log(t_lo))
        b = np.where(upper, np.log(0.5 - t_lo), np.log(t_hi))
    extra = np.zeros(t_hi.shape)
    top = upper & (t_hi == 0.5) & (t_lo < 0.5)
    if top.any():
        # the piece ending at t = 1/2: s runs to -inf; cut it, bound the rest from below
        eps_min = (0.5 - t_lo[top]) * _GRADE
        a[top] = np.log(eps_min)
        extra[top] = eps_min / np.asarray(phi(np.full(eps_min.shape, 0.5)), dtype=np.float64)
    width = np.subtract(b, a, out=np.zeros(a.shape), where=b > a)
    count = np.maximum(1, np.ceil(width / _MAX_WIDTH)).astype(np.int64)
    owner = np.repeat(np.arange(t_hi.size), count)
    first = np.cumsum(count) - count
    index = np.arange(owner.size) - first[owner]
    h = width[owner] / count[owner]
    left = a[owner] + index * h
    s = left[:, None] + h[:, None] * _GL_X[None, :]
    f = _integrand(s, np.broadcast_to(upper[owner][:, None], s.shape), phi)
    sub = h * (f @ _GL_W)
    total = np.bincount(owner, weights=sub, minlength=t_hi.size)
    return total + extra


def radius_exact(rho: np.ndarray, phi: Phi) -> np.ndarray:
    """R(rho) at scale 1 for every entry of a sorted float64 array with 1/2 <= rho < 1.

    Accumulates the integral between consecutive points (Gauss-Legendre, see the module
    docstring); the quadrature adds ~1e-15 relative error to that of Phi. This is the ``exact``
    callback of the table builders.
    """
    rho = np.asarray(rho, dtype=np.float64)
    if rho.ndim != 1 or rho.size == 0:
        raise ValueError(f"rho must be a non-empty 1-D array, got shape {rho.shape}")
    if np.any(np.diff(rho) < 0):
        raise ValueError("rho must be sorted in increasing order")
    if not (rho[0] >= 0.5 and rho[-1] < 1.0):
        raise ValueError(f"rho must lie in [1/2, 1), got values from {rho[0]!r} to {rho[-1]!r}")
    t = 1.0 - rho  # exact for rho in [1/2, 1]
    edges = np.concatenate(([0.5], t))
    t_hi, t_lo = edges[:-1], edges[1:]
    # split the piece that straddles t = 1/4 so each piece lies in one variable's domain
    cross = (t_hi > 0.25) & (t_lo < 0.25)
    hi = np.where(cross, 0.25, t_hi)
    value = _pieces(hi, t_lo, phi)
    if cross.any():
        value[cross] += _pieces(t_hi[cross], np.full(int(cross.sum()), 0.25), phi)
    return np.cumsum(value)


def _quad(f: Callable[[float], float], a: float, b: float) -> tuple[float, float]:
    value, err = integrate.quad(f, a, b, epsabs=0.0, epsrel=_QUAD_EPSREL, limit=500)
    if not err <= 1e-8 * abs(value):
        log.warning("differential radius: quad reports error %.3g on %.6g over [%g, %g]",
                    err, value, a, b)
    return value, err


def _phi_at(phi: Phi, t: float) -> float:
    value = float(np.asarray(phi(np.array([t])), dtype=np.float64)[0])
    if not (value > 0 and math.isfinite(value)):
        raise FloatingPointError(f"Phi({t!r}) = {value!r} is not a finite positive number")
    return value


#: ``tail(t) -> a lower bound on int_0^t ds / Phi(s)`` for tiny t (the part of R(1) below the
#: smallest positive float64, where Phi(s) vanishes like s^c with c close to 1)
Tail = Callable[[float], float]


def radius_direct(rho: np.ndarray, phi: Phi, *, converges_at_one: bool = False,
                  tail: Tail | None = None) -> np.ndarray:
    """R(rho) at scale 1 by adaptive quadrature (scipy.integrate.quad), one value at a time.

    Valid for any 1/2 <= rho <= 1. Each value is rounded down by quad's error estimate plus a
    relative 1e-9, so it is a lower bound on R. At rho = 1: infinity unless
    ``converges_at_one`` (Phi(t) vanishes slower than t as t -> 0), in which case the integral
    is taken from the smallest normal float64 t, plus ``tail`` of that t when given (without it,
    a lower bound that can be far too low: for Exp1 with k = 0.5 at d = 784 the part below the
    smallest float is half of R(1)).
    """
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(~((rho >= 0.5) & (rho <= 1.0))):
        bad = rho[~((rho >= 0.5) & (rho <= 1.0))].ravel()[0]
        raise ValueError(f"rho must lie in [1/2, 1], got {bad!r}")

    def lower(s: float) -> float:
        t = math.exp(s)
        return t / _phi_at(phi, t)

    def upper(s: float) -> float:
        e = math.exp(s)
        return e / _phi_at(phi, 0.5 - e)

    cache: dict[str, tuple[float, float]] = {}

    def upper_full() -> tuple[float, float]:
        if "upper" not in cache:
            cache["upper"] = _quad(upper, -np.inf, math.log(0.25))
        return cache["upper"]

    out = np.empty(rho.shape, dtype=np.float64)
    for i, r in np.ndenumerate(rho):
        t = 1.0 - float(r)
        if t == 0.0 and not converges_at_one:
            out[i] = np.inf
            continue
        extra = 0.0
        if t == 0.0 and tail is not None:
            extra = max(0.0, float(tail(float(np.finfo(np.float64).tiny))))
        t = max(t, float(np.finfo(np.float64).tiny))
        if t >= 0.5:
            out[i] = 0.0
            continue
        if t > 0.25:
            value, err = _quad(upper, -np.inf, math.log(0.5 - t))
        else:
            v1, e1 = _quad(lower, math.log(t), math.log(0.25))
            v2, e2 = upper_full()
            value, err = v1 + v2, e1 + e2
        out[i] = max(0.0, (value + extra) * (1.0 - _QUAD_MARGIN) - err)
    return out


def differential_table(phi: Phi, key: Mapping[str, Any]) -> RadiusTable:
    """The cached radius table of ``phi``; ``key`` must name the family, norm, dim and every
    shape parameter the radius depends on."""
    missing = [k for k in _REQUIRED_KEYS if k not in key]
    if missing:
        raise ValueError(f"a differential table key needs {', '.join(missing)}; got {dict(key)}")
    full = {"method": "differential", "grid": "graded-u4-refined", **key}
    # Differential radii are not analytic at rho = 1/2 (Phi(1/2 - e) has an e^(1+c) or e log e
    # term), so the grid starts graded towards u = 0; Phi comes from scipy's incomplete gamma and
    # beta functions, ~1e-10 relative at d = 150528, hence the exact-value margin.
    def verify(p: np.ndarray, r: np.ndarray) -> bool:
        # an honest lookup is the exact integral less a relative margin >= _EXACT_ERROR
        return bool(np.all(r <= radius_exact(p, phi)))

    return cached_table(full, lambda: build_table(lambda rho: radius_exact(rho, phi),
                                                  grading=4.0, exact_error=_EXACT_ERROR),
                        verify=verify)


def differential_radius(p_lower: np.ndarray, phi: Phi, key: Mapping[str, Any], *,
                        converges_at_one: bool = False, tail: Tail | None = None) -> np.ndarray:
    """Certified radius at scale 1 by the differential method, for p_lower in (1/2, 1].

    Values up to the table's last node come from the cached table (rounded down, relative error
    below 1e-8); larger values from ``radius_direct``. See ``radius_direct`` for rho = 1.
    """
    p = np.asarray(p_lower, dtype=np.float64)
    table = differential_table(phi, key)
    out = np.empty(p.shape, dtype=np.float64)
    covered = table.covers(p)
    if covered.any():
        out[covered] = table(p[covered])
    rest = ~covered
    if rest.any():
        values, inverse = np.unique(p[rest], return_inverse=True)
        out[rest] = radius_direct(values, phi, converges_at_one=converges_at_one,
                                  tail=tail)[inverse]
    return out
