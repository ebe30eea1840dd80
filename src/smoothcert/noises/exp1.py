"""Exp1(k) noise: density proportional to exp(-||x||_1^k), certified in l1 by the differential
method. Also home of the Phi that Exp1 / l1 shares with ExpInf / l-inf."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import integrate, special

from smoothcert.noises._shapes import (
    check_exponent,
    check_log_unit_sigma,
    radial_gamma,
    working_dtype,
)
from smoothcert.noises._special import gamma_isf, gamma_ppf, log_gamma_ratio
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.laplace import laplace_l1_radius
from smoothcert.noises.radii.differential import Phi, Tail, differential_radius
from smoothcert.noises.samplers import l1_sphere
from smoothcert.norms import Norm

__all__ = ["Exp1", "exp_norm_phi", "exp_norm_tail"]


def exp_norm_phi(dim: int, k: float) -> Phi:
    """Phi of the differential method for q ~ exp(-||x||^k) against the dual norm's ball.

    Shared by Exp1(k) / l1 and ExpInf(k, j=0) / l-inf (spec Section 3.2): with Z = ||x||^k ~
    Gamma(d/k), G_a the Gamma(a) CDF and Q_a = 1 - G_a,

        Phi(t) = (k/2) Gamma((d+k-1)/k) / Gamma(d/k) * Psi(t),
        Psi(t) = Q_{(d+k-1)/k}(Q_{d/k}^-1(2t))   for k >= 1 (the set of large ||x||),
        Psi(t) = G_{(d+k-1)/k}(G_{d/k}^-1(2t))   for k < 1  (the set of small ||x||).

    Both tails of the quantiles are computed directly, so Phi keeps its relative accuracy for
    t -> 0 and t -> 1/2.
    """
    a = dim / k
    b = (dim + k - 1.0) / k
    const = 0.5 * k * math.exp(log_gamma_ratio(a, (k - 1.0) / k))
    if k >= 1:
        def phi(t: np.ndarray) -> np.ndarray:
            return const * special.gammaincc(b, gamma_isf(a, 2.0 * np.asarray(t)))
    else:
        def phi(t: np.ndarray) -> np.ndarray:
            return const * special.gammainc(b, gamma_ppf(a, 2.0 * np.asarray(t)))
    return phi


def exp_norm_tail(dim: int, k: float) -> Tail | None:
    """For k < 1, t -> int_0^t ds / Phi(s) with ``exp_norm_phi``'s Phi (None for k >= 1, where
    R(1) is infinite): the part of R(1) below the smallest float64.

    With z = G_a^-1(2s) (a = d/k, b = (d+k-1)/k, C the constant of Phi) the integral is
    int_0^{z_t} g_a(z) dz / (2 C G_b(z)), and G_b(z) = z^b e^-z M(z) / Gamma(b+1) with
    M = 1F1(1; b+1; z), so in s = log z the integrand is
    exp((a - b) s + ln Gamma(b+1) - ln Gamma(a) - ln 2C - ln M(e^s)): no underflow, decaying
    like exp(s (1-k)/k) as s -> -inf. Integrated by quad, rounded down by its error estimate.
    """
    if k >= 1:
        return None
    a = dim / k
    b = (dim + k - 1.0) / k
    const = 0.5 * k * math.exp(log_gamma_ratio(a, (k - 1.0) / k))
    shift = float(special.gammaln(b + 1.0) - special.gammaln(a)) - math.log(2.0 * const)

    def tail(t: float) -> float:
        z_t = float(gamma_ppf(a, np.array([2.0 * t]))[0])
        if not z_t > 0:
            return 0.0

        def integrand(s: float) -> float:
            z = math.exp(s)
            return math.exp((a - b) * s + shift - math.log(special.hyp1f1(1.0, b + 1.0, z)))

        value, err = integrate.quad(integrand, -np.inf, math.log(z_t), epsabs=0.0,
                                    epsrel=1e-11, limit=200)
        return max(0.0, value * (1.0 - 1e-9) - err)

    return tail


@register_noise("exp1")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Exp1(Noise):
    """Density proportional to exp(-(||x||_1 / scale)^k), k > 0 (k = 1 is Laplace).

    sigma = scale * sqrt(2 / (d (d+1)) * Gamma((d+2)/k) / Gamma(d/k)). l1 radius by the
    differential method of [YDH+20] with ``exp_norm_phi``; at k = 1, Phi(t) = t and the radius is
    the Laplace closed form -ln(2 (1 - p_lower)).
    """

    k: float = 1.0

    _direct_norms = (Norm.L1,)

    def _validate(self) -> None:
        object.__setattr__(self, "k", check_exponent("k", self.k))
        self._unit_sigma()

    def _unit_sigma(self) -> float:
        d, k = self.dim, self.k
        log_var = math.log(2.0 / (d * (d + 1.0))) + log_gamma_ratio(d / k, 2.0 / k)
        return check_log_unit_sigma(0.5 * log_var, f"exp1 with k={k!r}, dim={d}")

    def _sample_unit(self, batch, *, generator, device, dtype):
        work = working_dtype(self._unit_sigma(), dtype)
        r = radial_gamma(self.dim / self.k, self.k, batch, generator=generator, device=device)
        u = l1_sphere(batch, self.dim, generator=generator, device=device, dtype=work)
        return u * r.to(work)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        if self.k == 1.0:
            return laplace_l1_radius(p_lower)
        key = {"family": self.name, "norm": norm.value, "dim": self.dim, "k": self.k}
        return differential_radius(p_lower, exp_norm_phi(self.dim, self.k), key,
                                   converges_at_one=self.k < 1,
                                   tail=exp_norm_tail(self.dim, self.k))
