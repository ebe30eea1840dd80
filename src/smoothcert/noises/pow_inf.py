"""PowInf(a) noise: density proportional to (1 + ||x||_inf)^-a, a heavy-tailed distribution with
cube-shaped level sets; certified in l1 (closed form) and l-inf (differential method)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy import special

from smoothcert.noises._special import round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.radii.differential import Phi, differential_radius
from smoothcert.noises.samplers import beta_prime, cube_surface
from smoothcert.norms import Norm

__all__ = ["PowInf", "pow_inf_phi"]


def pow_inf_phi(dim: int, a: float) -> Phi:
    """Phi of the differential method for PowInf(a) against l-inf (spec Section 3.2):

        Phi(t) = ((a-d)/2) * BP_{d, a+1-d}.cdf(BP_{d, a-d}^-1(2t)),   BP = BetaPrime.

    With r ~ BetaPrime(d, a-d), W = r/(1+r) ~ Beta(d, a-d) and V = 1 - W ~ Beta(a-d, d), so
    BP_{d,b}.cdf(x) = I_w(d, b) = Ibar_v(b, d) (I, Ibar the regularized lower and upper
    incomplete beta functions) at w = x/(1+x), v = 1/(1+x). Whichever of w and v is below 1/2 is
    the one computed, so the quantile keeps its relative precision for small r (t -> 0 in low
    dimension) and for large r.
    """
    const = 0.5 * (a - dim)

    def phi(t: np.ndarray) -> np.ndarray:
        y = 2.0 * np.asarray(t, dtype=np.float64)
        out = np.empty(y.shape)
        v = special.betainccinv(a - dim, dim, y)  # P(V > v) = P(r < x) = y
        small_v = v <= 0.5
        out[small_v] = special.betaincc(a + 1.0 - dim, dim, v[small_v])
        y_w = y[~small_v]
        w = special.betaincinv(dim, a - dim, y_w)  # P(W < w) = y
        out[~small_v] = special.betainc(dim, a + 1.0 - dim, w)
        return const * out

    return phi


@register_noise("pow_inf")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PowInf(Noise):
    """Density proportional to (1 + ||x / scale||_inf)^-a with a > d + 2 (finite variance);
    ``a=None`` means a = d + 10.

    sigma = scale * sqrt((1 + (d-1)/3) (d+1) / ((a-d-1) (a-d-2))).

    l1 ([YDH+20], differential method with the constant bound Phi <= E|d psi / d x_1| / 2):
    R = scale * 2d / (a-d) * (p_lower - 1/2).
    l-inf ([YDH+20], differential method with ``pow_inf_phi``). In d = 1 the norms coincide and
    both use the l-inf radius, which is never smaller.
    """

    a: float | None = None

    _direct_norms = (Norm.L1, Norm.LINF)

    def _validate(self) -> None:
        a = self.a
        if a is None:
            a = self.dim + 10.0
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)):
            raise ValueError(f"a must be a number > dim + 2 = {self.dim + 2}, got {a!r}")
        if not (math.isfinite(a) and a > self.dim + 2):
            raise ValueError(
                f"a must be > dim + 2 = {self.dim + 2} (finite variance), got {a!r}")
        object.__setattr__(self, "a", float(a))

    def _unit_sigma(self) -> float:
        d, a = self.dim, self.a
        return math.sqrt((1.0 + (d - 1) / 3.0) * (d + 1.0) / ((a - d - 1.0) * (a - d - 2.0)))

    def _sample_unit(self, batch, *, generator, device, dtype):
        r = beta_prime(float(self.dim), self.a - self.dim, (batch, 1), generator=generator,
                       device=device, dtype=torch.float64)
        u = cube_surface(batch, self.dim, generator=generator, device=device, dtype=dtype)
        return u * r.to(dtype)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        d, a = self.dim, self.a
        if norm is Norm.L1 and d > 1:
            return round_down(2.0 * d / (a - d) * (p_lower - 0.5))
        # in d = 1 the two norms coincide and the differential radius is the larger
        key = {"family": self.name, "norm": Norm.LINF.value, "dim": d, "a": a}
        return differential_radius(p_lower, pow_inf_phi(d, a), key)
