"""Laplace noise: i.i.d. Laplace coordinates, certified in l1 (closed form) and l-inf (exact)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.stats import binom

from smoothcert.noises._special import round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.samplers import standard_laplace
from smoothcert.norms import Norm

__all__ = ["Laplace", "laplace_l1_radius", "laplace_linf_radius"]

# The l-inf sum below is exact up to float64 rounding of ~1e-13 relative; round down well past it.
_LINF_MARGIN = 1e-11


def laplace_l1_radius(p_lower: np.ndarray) -> np.ndarray:
    """-ln(2 (1 - p_lower)) at scale 1: the differential method with Phi(t) = t ([YDH+20])."""
    p = np.asarray(p_lower, dtype=np.float64)
    with np.errstate(divide="ignore"):
        # 2p - 1 is exact; log1p keeps full precision near p = 1/2 (within an ulp; four ulps
        # down); p = 1 gives +inf
        return round_down(-np.log1p(-(2.0 * p - 1.0)))


def laplace_linf_radius(p_lower: np.ndarray, dim: int) -> np.ndarray:
    """The exact differential-method l-inf radius of Laplace noise at scale 1.

    For psi(y) = ||y||_1 and an l-inf adversary, <v, grad psi(y)> is maximized by v = (1,...,1),
    giving S = sum_i sign(y_i) = 2B - d with B ~ Binomial(d, 1/2) ([YDH+20], spec Section 3.2).
    Phi(t) is the mean of S over its upper tail of mass t: with T_b = P(B > b) and
    c_b = 2b - d, for t in [T_b, T_{b-1}],

        Phi(t) = c_b (t - T_b) + E[S; B > b],   E[S; B > b] = (d/2) P(Binomial(d-1, 1/2) = b),

    (the identity d P(Bin(d-1) >= b) - d P(Bin(d) > b) = (d/2) P(Bin(d-1) = b) avoids the
    cancellation of the two-term form). Phi is linear on each piece, so int dt / Phi is a sum of
    logarithms, evaluated here over the pieces that the values of p_lower reach. The result is
    rounded down by a relative 1e-11. p_lower = 1 gives +inf.
    """
    p = np.asarray(p_lower, dtype=np.float64)
    q = 1.0 - p  # exact for p in [1/2, 1]
    out = np.full(p.shape, np.inf)
    finite = q > 0
    if not finite.any():
        return out
    q = q[finite]
    b_lo = (dim + 1) // 2  # smallest b with c_b >= 0
    b_hi = int(min(dim, max(b_lo, binom.isf(float(q.min()), dim, 0.5))))
    while b_hi < dim and binom.sf(b_hi, dim, 0.5) > q.min():
        b_hi += 1
    b = np.arange(b_lo, b_hi + 1)
    tail = binom.sf(b, dim, 0.5)                       # T_b
    mass = binom.pmf(b, dim, 0.5)                      # T_{b-1} - T_b
    mean = 0.5 * dim * binom.pmf(b, dim - 1, 0.5)      # E[S; B > b] = Phi(T_b)
    slope = (2 * b - dim).astype(np.float64)
    if dim % 2 == 0:
        mass[0] *= 0.5  # the piece with c = 0 runs from T_{d/2} to 1/2 only
    # the integral over each whole piece, from T_b up to T_b + mass
    whole = _piece(slope, mass, mean)
    before = np.concatenate(([0.0], np.cumsum(whole[:-1])))
    # the piece holding q: the first b with T_b <= q (tail decreases with b)
    k = np.searchsorted(-tail, -q, side="left")
    inside = q - tail[k]
    # in the piece that ends at t = 1/2, 1/2 - q is exact: near p_lower = 1/2 the radius is
    # ~ (p_lower - 1/2) / Phi, and the rounding of T_b would dominate it
    rest = np.where(k == 0, 0.5 - q, np.maximum(mass[k] - inside, 0.0))
    value = before[k] + _piece(slope[k], rest, slope[k] * inside + mean[k])
    out[finite] = value * (1.0 - _LINF_MARGIN)
    return out


def _piece(c: np.ndarray, length: np.ndarray, start: np.ndarray) -> np.ndarray:
    """int_0^length dx / (start + c x): ln(1 + c length / start) / c, or length / start at c = 0."""
    c = np.asarray(c, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = length / start
        safe_c = np.where(c > 0, c, 1.0)
        value = np.where(c > 0, np.log1p(c * ratio) / safe_c, ratio)
    return np.where(length > 0, value, 0.0)


@register_noise("laplace")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Laplace(Noise):
    """Density proportional to exp(-||x||_1 / scale); sigma = sqrt(2) * scale.

    l1 ([YDH+20], differential method with Phi(t) = t): R = scale * -ln(2 (1 - p_lower)).
    l-inf ([YDH+20], differential method, computed exactly; see ``laplace_linf_radius``). The
    central-limit shortcut scale * Phi^-1(p_lower) / sqrt(d) is an approximation, not used.
    """

    _direct_norms = (Norm.L1, Norm.LINF)

    def _unit_sigma(self) -> float:
        return math.sqrt(2.0)

    def _sample_unit(self, batch, *, generator, device, dtype):
        return standard_laplace((batch, self.dim), generator=generator, device=device,
                                dtype=dtype)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        if norm is Norm.L1:
            return laplace_l1_radius(p_lower)
        return laplace_linf_radius(p_lower, self.dim)
