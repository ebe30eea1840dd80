"""ExpInf(k, j) noise: density proportional to ||x||_inf^-j exp(-||x||_inf^k), with cube-shaped
level sets; certified in l1 (closed form) and, for j = 0, in l-inf (differential method)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from smoothcert.noises._shapes import (
    check_exponent,
    check_log_unit_sigma,
    radial_gamma,
    working_dtype,
)
from smoothcert.noises._special import log_gamma_ratio, round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.exp1 import exp_norm_phi, exp_norm_tail
from smoothcert.noises.laplace import laplace_l1_radius
from smoothcert.noises.radii.differential import differential_radius
from smoothcert.noises.samplers import cube_surface
from smoothcert.norms import Norm

__all__ = ["ExpInf"]

#: relative error bound of the l1 constant gamma (a ratio of gamma functions via scipy's poch):
#: up to 8e-13 measured against mpmath (d = 2 to 150528, k = 0.5 to 3), so the radius is taken
#: down by 1e-11
_GAMMA_RTOL = 1e-11


@register_noise("exp_inf")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ExpInf(Noise):
    """Density proportional to ||x/scale||_inf^-j exp(-||x/scale||_inf^k), k > 0, 0 <= j < d.

    sigma = scale * sqrt((1 + (d-1)/3) / d * Gamma((d+2-j)/k) / Gamma((d-j)/k)).

    l1 ([YDH+20], differential method with the constant bound Phi <= E|d psi / d x_1| / 2):
    R = scale * 2 gamma (p_lower - 1/2), gamma = d/(d-1) Gamma((d-j)/k) / Gamma((d-j-1)/k),
    for d > 1. For j >= d - 1 the density's gradient is not integrable and the bound is 0. In
    d = 1, l1 and l-inf coincide: the l-inf radius is used for j = 0, and the bound is 0 for
    j > 0.

    l-inf, only for j = 0 ([YDH+20], differential method, spec Section 3.2): Phi is that of
    Exp1(k) / l1 (``exp_norm_phi``); for k = 1, R = scale * -ln(2 (1 - p_lower)).
    """

    k: float = 1.0
    j: float = 0

    def _validate(self) -> None:
        object.__setattr__(self, "k", check_exponent("k", self.k))
        j = self.j
        if isinstance(j, bool) or not isinstance(j, (int, float, np.integer, np.floating)):
            raise ValueError(f"j must be a number in [0, dim={self.dim}), got {j!r}")
        if not (math.isfinite(j) and 0 <= j < self.dim):
            raise ValueError(f"j must lie in [0, dim={self.dim}), got {j!r}")
        self._unit_sigma()

    @property
    def _direct_norms(self) -> tuple[Norm, ...]:  # type: ignore[override]
        # the l-inf differential bound needs the density to be smooth at the origin (j = 0)
        return (Norm.L1, Norm.LINF) if self.j == 0 else (Norm.L1,)

    def _unit_sigma(self) -> float:
        d, k, j = self.dim, self.k, self.j
        log_var = (math.log((1.0 + (d - 1) / 3.0) / d)
                   + log_gamma_ratio((d - j) / k, 2.0 / k))
        return check_log_unit_sigma(0.5 * log_var, f"exp_inf with k={k!r}, j={j!r}, dim={d}")

    def _sample_unit(self, batch, *, generator, device, dtype):
        work = working_dtype(self._unit_sigma(), dtype)
        r = radial_gamma((self.dim - self.j) / self.k, self.k, batch, generator=generator,
                         device=device)
        u = cube_surface(batch, self.dim, generator=generator, device=device, dtype=work)
        return u * r.to(work)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        if norm is Norm.LINF or (self.dim == 1 and self.j == 0):
            return self._linf_radius(p_lower)
        gamma = self._l1_gamma()
        return round_down(2.0 * gamma * (p_lower - 0.5), _GAMMA_RTOL)

    def _l1_gamma(self) -> float:
        d, k, j = self.dim, self.k, self.j
        if d == 1 or (d - j - 1) <= 0:
            return 0.0
        return d / (d - 1.0) * math.exp(log_gamma_ratio((d - j - 1) / k, 1.0 / k))

    def _linf_radius(self, p_lower: np.ndarray) -> np.ndarray:
        if self.k == 1.0:
            return laplace_l1_radius(p_lower)
        key = {"family": self.name, "norm": Norm.LINF.value, "dim": self.dim, "k": self.k,
               "j": self.j}
        return differential_radius(p_lower, exp_norm_phi(self.dim, self.k), key,
                                   converges_at_one=self.k < 1,
                                   tail=exp_norm_tail(self.dim, self.k))
