"""Pareto(a) noise: i.i.d. symmetric Lomax coordinates, density proportional to
prod_i (1 + |x_i|)^-(a+1); certified in l1 (closed form of the differential method)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import special

from smoothcert.noises._special import round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.samplers import random_signs, standard_exponential
from smoothcert.norms import Norm

__all__ = ["Pareto", "pareto_l1_radius"]

_SERIES_TERMS = 60  # terms of the expansion at z = 1, used for 1 - z < 1/2: error < 2^-60
#: relative margin taken off the radius for the evaluation error of hyp2f1 and the series
_RTOL = 1e-12


def pareto_l1_radius(p_lower: np.ndarray, a: float) -> np.ndarray:
    """The l1 radius of Pareto(a) at scale 1 ([YDH+20], differential method, spec Section 3.2).

    With Phi(t) = (a/2) (1 - (1-2t)^(1+1/a)) and x = 2 p_lower - 1, b = 1 + 1/a,

        R = (1/a) int_0^x du / (1 - u^b) = (x/a) 2F1(1, 1/b; 1 + 1/b; x^b).

    scipy's hyp2f1 loses accuracy as z = x^b -> 1 (the function has a logarithmic singularity),
    so for 1 - z < 1/2 the expansion at z = 1 is summed instead (Abramowitz & Stegun 15.3.10,
    with c = a + b): with beta = 1/b and w = 1 - z,

        2F1(1, beta; 1 + beta; z) = beta sum_n (beta)_n / n! [psi(n+1) - psi(beta+n) - ln w] w^n,

    a sum of positive terms. p_lower = 1 gives +inf.
    """
    rho = np.asarray(p_lower, dtype=np.float64)
    b = 1.0 + 1.0 / a
    beta = 1.0 / b
    x = 2.0 * rho - 1.0  # exact
    # w = 1 - x^b from 1 - x = 2 (1 - rho), exact, so w keeps its precision as rho -> 1
    w = -np.expm1(b * np.log1p(-2.0 * (1.0 - rho)))
    out = np.empty(rho.shape, dtype=np.float64)
    near = w < 0.5
    far = ~near
    out[far] = x[far] / a * special.hyp2f1(1.0, beta, 1.0 + beta, 1.0 - w[far])
    if near.any():
        wn = w[near]
        n = np.arange(_SERIES_TERMS, dtype=np.float64)
        coef = np.concatenate(([1.0], np.cumprod((beta + n[:-1]) / (n[:-1] + 1.0))))
        psi = special.digamma(n + 1.0) - special.digamma(beta + n)
        # at w = 0 (p_lower = 1) the n = 0 term is +inf and the others 0 * inf
        with np.errstate(divide="ignore", invalid="ignore"):
            log_w = np.log(wn)
            powers = wn[:, None] ** n[None, :]
            series = beta * ((coef * psi)[None, :] - log_w[:, None] * coef[None, :]) * powers
            total = np.where(wn > 0, series.sum(axis=1), np.inf)
        out[near] = x[near] / a * total
    # hyp2f1 and the series are accurate to ~1e-14 relative (checked against mpmath quadrature)
    return round_down(out, _RTOL)


@register_noise("pareto")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Pareto(Noise):
    """Density proportional to prod_i (1 + |x_i| / scale)^-(a+1), a > 2 (finite variance).

    Each coordinate is (P - 1) * sign with P ~ Pareto(scale 1, shape a), i.e. Lomax(a).
    sigma = scale * ((a-1)(a-2)/2)^(-1/2). l1: ``pareto_l1_radius``; as a -> infinity with sigma
    fixed, the noise and its radius tend to Laplace's.
    """

    a: float = 3.0

    _direct_norms = (Norm.L1,)

    def _validate(self) -> None:
        a = self.a
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)):
            raise ValueError(f"a must be a finite number > 2, got {a!r}")
        if not (math.isfinite(a) and a > 2):
            raise ValueError(f"a must be a finite number > 2 (finite variance), got {a!r}")
        object.__setattr__(self, "a", float(a))

    def _unit_sigma(self) -> float:
        a = self.a
        return 1.0 / math.sqrt(0.5 * (a - 1.0) * (a - 2.0))

    def _sample_unit(self, batch, *, generator, device, dtype):
        # P - 1 = U^(-1/a) - 1 = expm1(E / a) with E = -ln U ~ Exp(1): exact for large a too
        e = standard_exponential((batch, self.dim), generator=generator, device=device,
                                 dtype=dtype)
        signs = random_signs((batch, self.dim), generator=generator, device=device, dtype=dtype)
        return e.div_(self.a).expm1_().mul_(signs)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        return pareto_l1_radius(p_lower, self.a)
