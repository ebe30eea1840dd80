"""Exp2(k, j): spherically symmetric noise with density proportional to ||x||_2^-j exp(-||x||_2^k).

Certified against l2. The radius is exact (tight) by the level-set method of [YDH+20]
(Neyman-Pearson, ``radii.levelset``), with closed forms where they exist:

- k = 2, j = 0 is the Gaussian N(0, I/2) at scale 1, so R = Phi^-1(p_lower) / sqrt(2)
  (Cohen et al. 2019, Theorem 1; tight, identical to the level set).
- k = 1, j = 0 has the differential-method radius of [YDH+20]
  R_diff = (d - 1) atanh(c), with c = 1 - 2 B^-1_{(d-1)/2,(d-1)/2}(1 - p_lower) the quantile
  of cos(theta) for a uniform direction. It is a valid lower bound, never above the tight level-set
  radius; both are valid certificates, so the larger is returned (in practice the level set,
  rounded down). Keeping the closed form as a floor costs nothing and guards the result by an
  independent formula.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy.special import betaincinv, ndtri

from smoothcert.noises._special import log_gamma_ratio, round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.radii import levelset
from smoothcert.noises.samplers import l2_sphere, standard_gamma
from smoothcert.norms import Norm

__all__ = ["Exp2", "exp1_differential_radius"]

#: relative margin of the k = 1 differential closed form (scipy's betaincinv; agrees with
#: mpmath to 1e-10 relative in the tests, usually far better)
_BETAINCINV_RTOL = 1e-9


def exp1_differential_radius(p_lower: np.ndarray, dim: int) -> np.ndarray:
    """The differential-method l2 radius of Exp2(k=1, j=0) at scale 1, for p_lower in (1/2, 1].

    The gradient of ||x|| is the unit direction u, so Phi(p) is the mean of cos(theta) over its
    upper tail of mass p and R = int_{1-p_lower}^{1/2} dp / Phi(p) = (d - 1) atanh(c) with
    P(cos theta > c) = 1 - p_lower. With cos(theta)^2 ~ Beta(1/2, (d-1)/2),
    c^2 = I^-1_{1/2,(d-1)/2}(2 p_lower - 1), accurate near p_lower = 1/2, and
    1 - c^2 = I^-1_{(d-1)/2,1/2}(2 (1 - p_lower)), accurate near 1 (both arguments are exact in
    float64). atanh(c) = log1p(c) - log(1 - c^2) / 2.
    """
    p = np.asarray(p_lower, dtype=np.float64)
    b = (dim - 1) / 2.0
    c2 = betaincinv(0.5, b, 2.0 * p - 1.0)
    one_minus_c2 = betaincinv(b, 0.5, 2.0 * (1.0 - p))
    near_one = c2 > 0.5
    c2 = np.where(near_one, 1.0 - one_minus_c2, c2)
    # p_lower = 1 gives c = 1 and an infinite radius
    with np.errstate(divide="ignore"):
        log_one_minus_c2 = np.where(near_one, np.log(one_minus_c2), np.log1p(-c2))
    return (dim - 1) * (np.log1p(np.sqrt(c2)) - 0.5 * log_one_minus_c2)


@register_noise("exp2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Exp2(Noise):
    """Density proportional to ||x/scale||_2^-j exp(-||x/scale||_2^k); k > 0, 0 <= j < dim,
    dim >= 2 (the level-set radius needs j <= dim - 1, and is computed without a table for
    j >= dim - 2, where the Fisher information of a shift is infinite).

    Sampling at scale 1: r * g / ||g||_2 with r = Z^(1/k), Z ~ Gamma((d - j) / k), g ~ N(0, I).
    sigma at scale 1: sqrt(Gamma((d + 2 - j) / k) / (d Gamma((d - j) / k))) (``log_gamma_ratio``).
    """

    k: float = 2.0
    j: float = 0.0

    _direct_norms = (Norm.L2,)

    def _validate(self) -> None:
        for name in ("k", "j"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                 np.floating)):
                raise TypeError(f"{name} must be a number, got {value!r}")
        k, j = float(self.k), float(self.j)
        if not (math.isfinite(k) and k > 0):
            raise ValueError(f"k must be a finite number > 0, got {self.k!r}")
        if self.dim < 2:
            raise ValueError(f"exp2 noise needs dim >= 2 (its l2 radius uses the sphere "
                             f"S^(dim-1)), got dim={self.dim}")
        if not (math.isfinite(j) and 0 <= j < self.dim):
            raise ValueError(f"j must satisfy 0 <= j < dim = {self.dim}, got {self.j!r}")
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "j", j)

    def _shape(self) -> float:
        return (self.dim - self.j) / self.k

    def _unit_sigma(self) -> float:
        return math.exp(0.5 * (log_gamma_ratio(self._shape(), 2.0 / self.k) - math.log(self.dim)))

    def _sample_unit(self, batch, *, generator, device, dtype):
        z = standard_gamma(self._shape(), batch, generator=generator, device=device,
                           dtype=torch.float64)
        r = z.pow(1.0 / self.k).to(dtype)
        return l2_sphere(batch, self.dim, generator=generator, device=device,
                         dtype=dtype) * r[:, None]

    def radial_law(self) -> levelset.ExpRadial:
        """The radial law used by the level-set method (scale 1)."""
        return levelset.ExpRadial(self.dim, self.k, self.j)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        if self.j == 0.0 and self.k == 2.0:
            return round_down(ndtri(p_lower) / math.sqrt(2.0))
        tight = levelset.certified_radius(self.radial_law(), p_lower)
        if self.j == 0.0 and self.k == 1.0:
            return np.maximum(tight, round_down(exp1_differential_radius(p_lower, self.dim),
                                                _BETAINCINV_RTOL))
        return tight
