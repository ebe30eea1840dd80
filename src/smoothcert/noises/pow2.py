"""Pow2(k, a): spherically symmetric power-law noise, density proportional to
(1 + ||x||_2^k)^-a.

Certified against l2 by the level-set method ([YDH+20] Algorithm 1, ``radii.levelset``): the
radius is exact (tight) up to a relative rounding-down of about 1e-10.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from smoothcert.noises._special import log_gamma_ratio
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.radii import levelset
from smoothcert.noises.samplers import beta_prime, l2_sphere
from smoothcert.norms import Norm

__all__ = ["Pow2"]

#: the smallest tail exponent a - d/k of z = r^k ~ BetaPrime(d/k, a - d/k) accepted: below it
#: the level-set solver's residuals stall above its tolerance (a = 2.25 at d = 2, k = 2 did not
#: finish), so such laws are refused rather than certified slowly or not at all
_MIN_TAIL = 2.0


@register_noise("pow2")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Pow2(Noise):
    """Density proportional to (1 + ||x/scale||_2^k)^-a; k > 0, dim >= 2.

    ``a = None`` means a = dim + 10. z = r^k ~ BetaPrime(d/k, a - d/k), so the density is proper
    for a > d/k and has finite variance (sigma is defined) iff a > (d + 2)/k, which is required,
    as is a - d/k >= 2 (the level-set radius of heavier tails is not computed reliably).
    Sampling at scale 1: Z^(1/k) g / ||g||_2 with Z ~ BetaPrime(d/k, a - d/k), g ~ N(0, I).
    sigma at scale 1: exp([lnG((d+2)/k) + lnG(a-(d+2)/k) - lnG(d/k) - lnG(a-d/k) - ln d] / 2),
    evaluated as ratios of gamma functions without cancellation (``log_gamma_ratio``).
    """

    k: float = 2.0
    a: float | None = None

    _direct_norms = (Norm.L2,)

    def _validate(self) -> None:
        for name in ("k", "a"):
            value = getattr(self, name)
            if name == "a" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                 np.floating)):
                raise TypeError(f"{name} must be a number, got {value!r}")
        k = float(self.k)
        if not (math.isfinite(k) and k > 0):
            raise ValueError(f"k must be a finite number > 0, got {self.k!r}")
        if self.dim < 2:
            raise ValueError(f"pow2 noise needs dim >= 2 (its l2 radius uses the sphere "
                             f"S^(dim-1)), got dim={self.dim}")
        # The default is resolved here so that describe() and the cache keys show the value used.
        a = float(self.dim + 10) if self.a is None else float(self.a)
        bound = (self.dim + 2) / k
        if not (math.isfinite(a) and a > bound):
            raise ValueError(
                f"a must be finite and > (dim + 2) / k = {bound:g} for a finite variance, "
                f"got a={self.a!r}")
        tail = self.dim / k + _MIN_TAIL
        if not a >= tail:
            raise ValueError(
                f"a must be >= dim / k + {_MIN_TAIL:g} = {tail:g}: for heavier tails "
                f"(a - dim/k < {_MIN_TAIL:g}) the level-set radius is not computed reliably; "
                f"got a={self.a!r}")
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "a", a)

    def _unit_sigma(self) -> float:
        # E r^2 = E Z^(2/k) = Gamma(d/k + 2/k) Gamma(a - (d+2)/k) / (Gamma(d/k) Gamma(a - d/k))
        d, k, a = self.dim, self.k, self.a
        return math.exp(0.5 * (log_gamma_ratio(d / k, 2.0 / k)
                               - log_gamma_ratio(a - (d + 2) / k, 2.0 / k) - math.log(d)))

    def _sample_unit(self, batch, *, generator, device, dtype):
        z = beta_prime(self.dim / self.k, self.a - self.dim / self.k, batch,
                       generator=generator, device=device, dtype=torch.float64)
        r = z.pow(1.0 / self.k).to(dtype)
        return l2_sphere(batch, self.dim, generator=generator, device=device,
                         dtype=dtype) * r[:, None]

    def radial_law(self) -> levelset.PowRadial:
        """The radial law used by the level-set method (scale 1)."""
        return levelset.PowRadial(self.dim, self.k, self.a)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        return levelset.certified_radius(self.radial_law(), p_lower)
