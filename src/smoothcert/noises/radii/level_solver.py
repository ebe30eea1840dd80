"""Solving the level-set equations for the radius: rho(e) = p (see ``levelset``).

The radius for a target u = Phi^-1(p) solves G1 = Phi^-1(pbig(tau e, e)) = 0 and
G2 = -Phi^-1(1 - pbig(-tau e, e)) = u for (tau, e) by Newton's method with the exact Jacobian,
vectorized over all targets. In these coordinates the Gaussian case is linear, and nearly so for
any noise in high dimension; the starting guess is interpolated from a coarse path of solutions
on a fixed grid of u (itself started from the small-shift approximation
log q_e/q ~ N(-e^2 I/2, e^2 I), I the Fisher information of a unit shift). Where Newton fails, a
nested safeguarded solve (bracketed Newton/bisection in e around a bracketed median solve in tau)
takes over.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.special import ndtri

from smoothcert.noises.radii.level_probability import pbig_rows
from smoothcert.noises.radii.radial import RadialLaw

__all__ = ["Rho", "rho", "certified_shift", "law_id", "clear_path_cache", "FTOL", "EVAL_ERROR",
           "U_RTOL"]

log = logging.getLogger(__name__)


def _inv_phi_n(g: np.ndarray) -> np.ndarray:
    """1 / phi(g), the derivative of Phi^-1 at Phi(g); inf where it overflows."""
    with np.errstate(over="ignore"):
        return math.sqrt(2.0 * math.pi) * np.exp(0.5 * g * g)


def _safeguarded(fun, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, rtol: float,
                 atol: np.ndarray | float, ftol: np.ndarray | float, iters: int, what: str
                 ) -> np.ndarray:
    """Roots of increasing functions, vectorized over rows: Newton's method kept inside a
    sign-change bracket. A step bisects whenever Newton leaves the bracket, does not at least
    halve its previous step, or the last Newton step did not halve |f|; so either |f| or the
    bracket shrinks geometrically, and an inaccurate derivative cannot fake convergence.

    ``fun(x, rows) -> (f, df/dx)``; f(lo) < 0 < f(hi) with lo, hi finite (lo = hi is a root).
    A row is done when |f| <= ftol or its bracket is below rtol |x| + atol.
    """
    x, lo, hi = x.copy(), lo.copy(), hi.copy()
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), x.shape)
    ftol = np.broadcast_to(np.asarray(ftol, dtype=np.float64), x.shape)
    x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    last = hi - lo
    f_prev = np.full(x.shape, np.inf)
    todo = np.ones(x.shape, dtype=bool)
    for _ in range(iters):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            return x
        xi = x[idx]
        f, fp = fun(xi, idx)
        lo[idx] = np.where(f < 0, xi, lo[idx])
        hi[idx] = np.where(f > 0, xi, hi[idx])
        done = ((np.abs(f) <= ftol[idx]) | (f == 0)
                | (hi[idx] - lo[idx] <= rtol * np.abs(xi) + atol[idx]))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = xi - f / fp
        use = (np.isfinite(newton) & (newton > lo[idx]) & (newton < hi[idx])
               & (np.abs(newton - xi) <= 0.5 * last[idx])
               & (np.abs(f) <= 0.5 * f_prev[idx]))
        xn = np.where(use, newton, 0.5 * (lo[idx] + hi[idx]))
        last[idx] = np.where(use, np.abs(xn - xi), hi[idx] - lo[idx])
        f_prev[idx] = np.where(use, np.abs(f), np.inf)
        x[idx] = np.where(done, xi, xn)
        todo[idx[done]] = False
    bad = np.nonzero(todo)[0][:3]
    raise FloatingPointError(f"level set: {what} did not converge (rows {bad.tolist()})")


def _bracket(fun, x0: np.ndarray, step: np.ndarray, *, floor: float | None, what: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """A sign-change bracket [lo, hi] of an increasing function around x0: steps of doubling
    size away from x0. With ``floor``, f(floor) < 0 is known and never evaluated."""
    f0 = fun(x0, np.arange(x0.size))[0]
    lo = np.where(f0 <= 0, x0, np.nan)
    hi = np.where(f0 >= 0, x0, np.nan)
    up = f0 < 0
    if floor is not None:
        lo = np.where(f0 > 0, floor, lo)
    step = step.copy()
    pending = np.isnan(lo) | np.isnan(hi)
    for _ in range(200):
        idx = np.nonzero(pending)[0]
        if idx.size == 0:
            return lo, hi
        cand = np.where(up[idx], x0[idx] + step[idx], x0[idx] - step[idx])
        f = fun(cand, idx)[0]
        lo[idx] = np.where(f < 0, cand, lo[idx])
        hi[idx] = np.where(f > 0, cand, hi[idx])
        hit = np.where(f == 0, True, np.isfinite(lo[idx]) & np.isfinite(hi[idx]))
        lo[idx] = np.where(f == 0, cand, lo[idx])
        hi[idx] = np.where(f == 0, cand, hi[idx])
        step[idx] *= 2.0
        pending[idx[hit]] = False
    raise FloatingPointError(f"level set: no bracket found for {what}")


def _median_tau(law: RadialLaw, e: np.ndarray, tau0: np.ndarray, target: float = 0.0
                ) -> np.ndarray:
    """tau with Phi^-1(pbig(tau e, e)) = target (target 0: tau e is the median of the
    log-likelihood ratio)."""

    def fun(tau, rows):
        res = pbig_rows(law, tau * e[rows], e[rows])
        g = ndtri(res.value)
        # where pbig is exactly 0 or 1 the slope is 0 * inf: not finite, so the step bisects
        with np.errstate(invalid="ignore"):
            return g - target, res.d_t * e[rows] * _inv_phi_n(g)

    spread = law.shift_spread()
    lo, hi = _bracket(fun, tau0, 0.25 * (np.abs(tau0) + spread * np.minimum(e, 1.0)),
                      floor=None, what="the median threshold")
    return _safeguarded(fun, tau0, lo, hi, rtol=1e-13, atol=1e-300, ftol=2e-15, iters=200,
                        what="the median threshold")


@dataclass(frozen=True)
class Rho:
    """rho(e), the smallest p_lower certifying l2 radius e; 1 - rho(e) computed directly (no
    cancellation near rho = 1); and the median threshold t with pbig(t, e) = 1/2."""

    value: np.ndarray
    complement: np.ndarray
    threshold: np.ndarray


def rho(law: RadialLaw, e: Any) -> Rho:
    """rho(e) at scale 1 for shifts e > 0 (any shape)."""
    e = np.asarray(e, dtype=np.float64)
    shape = e.shape
    e = e.ravel().copy()
    if not np.all(e > 0) or not np.all(np.isfinite(e)):
        raise ValueError("rho needs finite shifts e > 0")
    tau = _median_tau(law, e, -0.5 * e * law.shift_spread() ** 2)
    res = pbig_rows(law, -tau * e, e)
    return Rho(value=res.value.reshape(shape), complement=res.complement.reshape(shape),
               threshold=(tau * e).reshape(shape))


def _residual(law: RadialLaw, tau: np.ndarray, e: np.ndarray, u: np.ndarray, v: float = 0.0):
    """Residuals G1 - v = Phi^-1(pbig(tau e, e)) - v, G2 - u = -Phi^-1(1 - pbig(-tau e, e)) - u
    and their Jacobian in (tau, e)."""
    both = pbig_rows(law, np.concatenate([tau * e, -tau * e]), np.concatenate([e, e]))
    m = tau.size
    p1, c2 = both.value[:m], both.complement[m:]
    pt1, pe1 = both.d_t[:m], both.d_e[:m]
    pt2, pe2 = both.d_t[m:], both.d_e[m:]
    g1 = ndtri(p1)
    q2 = ndtri(c2)
    j1 = _inv_phi_n(g1)
    j2 = _inv_phi_n(q2)
    with np.errstate(invalid="ignore", over="ignore"):
        a11 = j1 * pt1 * e
        a12 = j1 * (pt1 * tau + pe1)
        a21 = -j2 * pt2 * e
        a22 = j2 * (pe2 - pt2 * tau)
    return g1 - v, -q2 - u, a11, a12, a21, a22


#: residual (in units of Phi^-1, times max(1, u)) at which a solve stops
FTOL = 1e-14
#: bound on the evaluation error of G1 and G2 (same units): pbig is accurate to about 1e-15
#: absolute and 1 - pbig to about 1e-13 relative
EVAL_ERROR = 1e-14
#: relative margin taken off u, for the error of 1 - pbig far in the tail
U_RTOL = 1e-12
#: multiples of FTOL and EVAL_ERROR tried in turn, for laws whose residuals have a higher noise
#: floor (heavy tails); the margins grow with them
_LEVELS = (1.0, 30.0, 1000.0)


def _tolerance(u: np.ndarray, level: float = 1.0) -> np.ndarray:
    """The residual accepted in G1 and G2 - u at target u."""
    return FTOL * level * np.maximum(1.0, u)


def _newton(law: RadialLaw, u: np.ndarray, tau: np.ndarray, e: np.ndarray, *, v: float = 0.0,
            level: float = 1.0, iters: int = 12, with_failed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint Newton for (tau, e) with G1 = v, G2 = u from good guesses; returns
    (tau, e, converged).

    A row converges when both residuals, evaluated at the point returned, are within
    ``_tolerance``; rows whose step is not finite, leaves e > 0 or fails to converge are
    reported, not forced (``with_failed``: also which rows failed, as opposed to not reaching
    the tolerance in ``iters`` steps).
    """
    tau, e = tau.copy(), e.copy()
    todo = np.ones(u.shape, dtype=bool)
    failed = np.zeros(u.shape, dtype=bool)
    for _ in range(iters):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            break
        ta, ea, ua = tau[idx], e[idx], u[idx]
        f1, f2, a11, a12, a21, a22 = _residual(law, ta, ea, ua, v)
        tol = _tolerance(ua, level)
        done = (np.abs(f1) <= tol) & (np.abs(f2) <= tol)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            det = a11 * a22 - a12 * a21
            st = (a22 * f1 - a12 * f2) / det
            se = (a11 * f2 - a21 * f1) / det
        ok = done | (np.isfinite(st) & np.isfinite(se) & (np.abs(se) < 0.5 * ea))
        step = ok & ~done
        tau[idx] = np.where(step, ta - st, ta)
        e[idx] = np.where(step, ea - se, ea)
        failed[idx[~ok]] = True
        todo[idx[done | ~ok]] = False
    if with_failed:
        return tau, e, ~(todo | failed), failed
    return tau, e, ~(todo | failed)


def _nested(law: RadialLaw, u: np.ndarray, tau0: np.ndarray, e0: np.ndarray, v: float = 0.0,
            level: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(tau, e) with G1 = v, G2 = u by nested safeguarded solves: rho(e) = p in e, with the
    threshold solved inside. Slower than ``_newton`` but needs no good guess."""
    tau_at = tau0.copy()

    def fun(ev, rows):
        tau = _median_tau(law, ev, tau_at[rows], v)
        tau_at[rows] = tau
        f1, f2, a11, a12, a21, a22 = _residual(law, tau, ev, u[rows], v)
        # along the curve G1 = v: d tau / d e = -a12 / a11
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            slope = a22 - a21 * a12 / a11
        return f2, slope

    lo, hi = _bracket(fun, e0, 0.5 * e0, floor=0.0, what="the radius")
    e = _safeguarded(fun, e0, lo, hi, rtol=1e-13, atol=1e-300,
                     ftol=0.5 * _tolerance(u, level), iters=300, what="the radius")
    # the threshold at the final e
    return _median_tau(law, e, tau_at, v), e


# --------------------------------------------------------------------------- the solution path
#: the u of the coarse solution path: up to the tables' top, then beyond it (up to the largest
#: u of a float64 p < 1, 8.3); each part is solved once, on first use, and never changes
_PATH_PARTS = (np.concatenate([[1 / 64, 1 / 32], np.linspace(1 / 16, 1.0, 16)]),
               1.0 + np.arange(1, 9) / 16.0 * 1.0)
#: coarse solution paths by law (see ``_path``); filled on first use
_PATHS: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}


def clear_path_cache() -> None:
    """Forget the cached solution paths."""
    _PATHS.clear()


def law_id(law: RadialLaw) -> str:
    """A text identifying ``law`` (its family and shape parameters)."""
    return repr(sorted(law.key().items()))


def _path_part(law: RadialLaw, grid: np.ndarray, before: tuple[np.ndarray, ...] | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tau0, e0 = law.small_shift_guess(grid)
    tau, e, ok = _newton(law, grid, tau0, e0)
    # Where that fails (e.g. an infinite Fisher information), continue along the path from the
    # solved point below, with the nested solver as the last resort.
    for i in np.nonzero(~ok)[0]:
        prev = (grid[i - 1], tau[i - 1], e[i - 1]) if i > 0 else (
            None if before is None else (before[0][-1], before[1][-1], before[2][-1]))
        if prev is not None:
            g, t, ev = prev
            tau0[i], e0[i] = t * grid[i] / g, ev * grid[i] / g
            t1, e1, ok1 = _newton(law, grid[i:i + 1], tau0[i:i + 1], e0[i:i + 1])
            if ok1[0]:
                tau[i], e[i] = t1[0], e1[0]
                continue
        t1, e1 = _nested(law, grid[i:i + 1], tau0[i:i + 1], e0[i:i + 1])
        tau[i], e[i] = t1[0], e1[0]
    return grid, tau, e


def _path(law: RadialLaw, top: float, u_table: float
          ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The solution (tau, e) on the fixed coarse grids of u (``_PATH_PARTS`` times the tables'
    top ``u_table``) that reach ``top``: the starting guesses of the Newton solves. Cached by
    law (a few seconds to compute, a few kilobytes to keep). Each part is computed the same way
    whatever was asked before, so the guesses, hence the radii, do not depend on history."""
    parts = _PATHS.setdefault(law_id(law), [])
    while len(parts) < len(_PATH_PARTS) and (not parts or parts[-1][0][-1] < top):
        before = parts[-1] if parts else None
        parts.append(_path_part(law, u_table * _PATH_PARTS[len(parts)], before))
    return parts


def _guesses(law: RadialLaw, u: np.ndarray, u_table: float) -> tuple[np.ndarray, np.ndarray]:
    """Starting (tau, e) at targets u, interpolated along the solution path: each u from the
    first part of the path reaching it (with the parts below it), so that extending the path
    for a larger u later never changes the guess."""
    parts = _path(law, float(np.max(u)), u_table)
    tau0 = np.empty(u.shape)
    e0 = np.empty(u.shape)
    lower = np.zeros(u.shape, dtype=bool)
    for n in range(len(parts)):
        grid = np.concatenate([p[0] for p in parts[:n + 1]])
        sel = ~lower & ((u <= grid[-1]) | (n == len(parts) - 1))
        if sel.any():
            taus = np.concatenate([p[1] for p in parts[:n + 1]])
            es = np.concatenate([p[2] for p in parts[:n + 1]])
            tau_u = PchipInterpolator(grid, taus / grid, extrapolate=True)
            e_u = PchipInterpolator(grid, es / grid, extrapolate=True)
            tau0[sel], e0[sel] = tau_u(u[sel]) * u[sel], e_u(u[sel]) * u[sel]
        lower |= sel
    return tau0, e0


def certified_shift(law: RadialLaw, u: np.ndarray, u_table: float) -> np.ndarray:
    """For each u >= 0, a shift e certified at p = Phi(u) by the Neyman-Pearson lemma (0 where
    the margins exceed u).

    Solves G1 = -m, G2 = u - m max(1, u) - U_RTOL u with m = (FTOL + EVAL_ERROR) * level and
    checks the residuals at the (tau, e) returned against FTOL * level * max(1, u): then the true
    G1 < 0 (the threshold is below the median) and the true G2 <= u. ``level`` runs through
    ``_LEVELS`` for rows whose residuals do not reach the tolerance; FloatingPointError if none
    does. ``u_table`` (the tables' largest u) scales the fixed grid of the solution path.
    """
    out = np.zeros(u.shape)
    todo = u > 0
    if not todo.any():
        return out
    tau_g = np.zeros(u.shape)
    e_g = np.ones(u.shape)
    tau_g[todo], e_g[todo] = _guesses(law, u[todo], u_table)
    worst = (0.0, 0.0)
    for level in _LEVELS:
        m = (FTOL + EVAL_ERROR) * level
        target = u - m * np.maximum(1.0, u) - U_RTOL * u
        todo &= target > 0
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            break
        tg = target[idx]
        tau, e, ok, failed = _newton(law, tg, tau_g[idx], e_g[idx], v=-m, level=level,
                                     with_failed=True)
        last = level == _LEVELS[-1]
        # rows stuck above the tolerance try the next level from where they are
        stuck = ~ok & ~failed & np.isfinite(e) & (e > 0)
        if not last:
            tau_g[idx[stuck]], e_g[idx[stuck]] = tau[stuck], e[stuck]
        bad = failed | (stuck & last)
        if bad.any():
            log.debug("level set: %d of %d radii need the nested solver", int(np.sum(bad)),
                      ok.size)
            try:
                tau[bad], e[bad] = _nested(law, tg[bad], tau_g[idx][bad], e_g[idx][bad], -m,
                                           level)
            except FloatingPointError:
                e[bad] = np.nan
            good = np.isfinite(e[bad]) & (e[bad] > 0)
            f1, f2 = np.full(int(bad.sum()), np.inf), np.full(int(bad.sum()), np.inf)
            if good.any():
                f1[good], f2[good] = _residual(law, tau[bad][good], e[bad][good], tg[bad][good],
                                               -m)[:2]
            tol = _tolerance(tg[bad], level)
            ok[bad] = (np.abs(f1) <= tol) & (np.abs(f2) <= tol)
            worst = (float(np.max(np.abs(f1))), float(np.max(np.abs(f2))))
        out[idx[ok]] = e[ok]
        todo[idx[ok]] = False
    if todo.any():
        raise FloatingPointError(
            f"level set: the radius for {law.key()} did not converge to the residual "
            f"{FTOL * _LEVELS[-1]:g} (largest residuals {worst[0]:.3g}, {worst[1]:.3g})")
    return out
