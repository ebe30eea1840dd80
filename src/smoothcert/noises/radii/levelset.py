"""The level-set (Neyman-Pearson) method: l2 radii of spherically symmetric noise, rounded down.

Algorithm 1 of Yang et al. (2020) [YDH+20], "Randomized Smoothing of All Shapes and Sizes" (ICML).
The work is split in three modules: ``radial`` (the radial laws), ``level_probability`` (the
probability pbig below, a 1-D quadrature) and ``level_solver`` (the root-finding); this module
turns their result into certified radii and tables.

Setting. At scale 1 the noise q has density proportional to exp(-phi(||x||_2)) on R^d, d >= 2,
with phi strictly increasing (a ``RadialLaw``). q_e is q shifted by e > 0 along a unit vector, and
pbig(t, e) = P_{x ~ q}[log q_e(x) / q(x) < t].

Guarantee (Neyman-Pearson lemma). For a threshold t let A = {log q_e/q < -t}. The reflection
x -> e - x maps q to q_e and log q_e/q to its negative, so q_e(A) = 1 - pbig(t, e), and
q(A) = pbig(-t, e). Among all sets of q-mass >= q(A), A has the least q_e-mass. Hence if
pbig(t, e) < 1/2 and P[f(x + delta) = c_A] >= p_lower >= pbig(-t, e), the smoothed classifier
still returns c_A at x + v for ||v|| = e. With t the median (pbig(t, e) = 1/2) this gives
rho(e) = pbig(-t, e) and the tight radius R(p) solving rho(R) = p; a t just below the median
gives a slightly smaller, still valid radius. Assumption: rho is increasing in e (checked for
every family and dimension tested: the radii computed here increase with p).

Rounding down. In u = Phi^-1(p) coordinates the solver (``level_solver.solve``) finds (tau, e)
with G1 = Phi^-1(pbig(tau e, e)) = v and G2 = -Phi^-1(1 - pbig(-tau e, e)) = u', and verifies the
residuals at the point it returns (at most FTOL max(1, u) = 1e-14 max(1, u)). pbig is accurate to
about 1e-15 absolute and 1 - pbig to about 1e-13 relative, so G1 and G2 carry errors below
_EVAL_ERROR = 1e-14 (absolute, times max(1, u)). The solve therefore targets

    v = -(FTOL + _EVAL_ERROR),      u' = u_q - (FTOL + _EVAL_ERROR) max(1, u_q) - _U_RTOL u_q,

so that the true G1 < 0 and the true G2 <= u: the threshold tau e is below the median and the
shift e is certified at p (by the lemma above), at every p, including p - 1/2 down to the smallest
float64 steps. Here u_q is u rounded down to a fixed grid (relative step 2^-36, absolute step at
least 2^-43; u_q = 0 below 2^-43, i.e. p - 1/2 < 4.5e-14, where the radius is 0): the solver's
result wanders by ~1e-14 in u from point to point, far less than the grid's step, so the radius
is non-decreasing in p. The starting guesses come from a solution path on a fixed grid, so the
result does not depend on earlier calls. Finally e is multiplied by 1 - RADIUS_RTOL = 1 - 1e-10.
Radii agree with the Gaussian closed form (Exp2 with k = 2, j = 0) to 5e-13 relative for d = 2
to 3072 and 1e-11 at d = 150528, for u >= 0.005, before these margins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import ndtri

from smoothcert.noises._special import floor_to_grid
from smoothcert.noises.radii.level_probability import (
    LevelSetProbability,
    pbig,
    sphere_outside_probability,
)
from smoothcert.noises.radii.level_solver import (
    Rho,
    certified_shift,
    clear_path_cache,
    law_id,
    rho,
)
from smoothcert.noises.radii.radial import ExpRadial, PowRadial, RadialLaw
from smoothcert.noises.radii.table import P_TABLE_MAX, RadiusTable, build_table, cached_table

__all__ = [
    "RadialLaw",
    "ExpRadial",
    "PowRadial",
    "LevelSetProbability",
    "Rho",
    "sphere_outside_probability",
    "pbig",
    "rho",
    "radius",
    "radius_table",
    "certified_radius",
    "clear_path_cache",
    "RADIUS_RTOL",
]

log = logging.getLogger(__name__)

#: relative amount by which radii are rounded down at the end
RADIUS_RTOL = 1e-10
#: u is rounded down to multiples of max(2^(exponent(u) - _U_BITS), _U_STEP_MIN)
_U_BITS = 36
_U_STEP_MIN = 2.0 ** -43
#: revision of the numerical method, part of every table's cache key
_REVISION = 2
#: the largest u = Phi^-1(p) of a table
_TABLE_U_MAX = float(-ndtri(1.0 - P_TABLE_MAX))
#: laws whose radius could not be tabulated to the table's accuracy (computed directly)
_UNTABULATED: set[str] = set()


def _quantize(u: np.ndarray) -> np.ndarray:
    """u rounded down to the fixed grid of the module docstring (monotone, u_q <= u)."""
    return floor_to_grid(u, _U_BITS, _U_STEP_MIN)


def radius(law: RadialLaw, p: Any) -> np.ndarray:
    """A lower bound on the level-set radius at scale 1: a shift certified at p by the
    Neyman-Pearson lemma, within about 1e-10 relative (plus ~3e-14 in u = Phi^-1(p)) of the
    exact radius; non-decreasing in p, independent of earlier calls. 0 for p - 1/2 < 4.5e-14
    (and p <= 1/2), inf for p = 1."""
    p = np.asarray(p, dtype=np.float64)
    shape = p.shape
    p = p.ravel()
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p must lie in [0, 1]")
    out = np.zeros(p.shape)
    out[p == 1.0] = np.inf
    sel = (p > 0.5) & (p < 1.0)
    if sel.any():
        u = _quantize(-ndtri(1.0 - p[sel]))
        e = certified_shift(law, u, _TABLE_U_MAX) * (1.0 - RADIUS_RTOL)
        out[sel] = e
    return out.reshape(shape)


def _table_key(law: RadialLaw) -> Mapping[str, Any]:
    return {**law.key(), "norm": "l2", "method": "levelset", "revision": _REVISION}


def _verify(law: RadialLaw):
    """The check of a loaded table: the radius it gives at p must be certified at p, i.e.
    rho(radius) <= p (compared in u = Phi^-1(p); rho's error there, ~1e-14, is far below the
    margins an honest table keeps)."""

    def check(p: np.ndarray, r: np.ndarray) -> bool:
        pos = r > 0
        if not pos.any():
            return True
        back = -ndtri(rho(law, r[pos]).complement)
        return bool(np.all(back <= -ndtri(1.0 - p[pos])))

    return check


def radius_table(law: RadialLaw, *, rebuild: bool = False) -> RadiusTable:
    """The rounded-down radius table of ``law`` (cached in memory and on disk)."""
    return cached_table(_table_key(law), lambda: build_table(lambda p: radius(law, p)),
                        rebuild=rebuild, verify=_verify(law))


def certified_radius(law: RadialLaw, p_lower: Any) -> np.ndarray:
    """Certified l2 radius at scale 1 for p_lower in (1/2, 1], rounded down, non-decreasing.

    Uses the table up to its last node (about ``P_TABLE_MAX``) and ``radius`` beyond. A radius
    that is not smooth enough at p = 1/2 to be tabulated (the Fisher information of the shift is
    infinite, e.g. Exp2 with j >= d - 2: rho(e) - 1/2 is not O(e)) is always computed directly.
    """
    p = np.asarray(p_lower, dtype=np.float64)
    shape = p.shape
    p = p.ravel()
    out = np.zeros(p.shape)
    covered = np.zeros(p.shape, dtype=bool)
    if law.tabulable() and law_id(law) not in _UNTABULATED:
        try:
            table = radius_table(law)
        except FloatingPointError as exc:
            log.warning("no radius table for %s (%s); radii are computed directly",
                        law.key(), exc)
            _UNTABULATED.add(law_id(law))
        else:
            covered = table.covers(p)
            if covered.any():
                out[covered] = table(p[covered])
    beyond = (p > 0.5) & ~covered
    if beyond.any():
        out[beyond] = radius(law, p[beyond])
    return out.reshape(shape)

