"""ExpP(p) noise: i.i.d. generalized-normal coordinates, density proportional to
exp(-sum_i |x_i|^p); certified in l1."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from smoothcert.noises._shapes import check_exponent, check_log_unit_sigma, working_dtype
from smoothcert.noises._special import gamma_ppf, log_gamma_ratio, round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.radii.differential import Phi, differential_radius
from smoothcert.noises.samplers import random_signs, standard_gamma
from smoothcert.norms import Norm

__all__ = ["ExpP", "exp_p_l1_quantile", "exp_p_phi"]

#: relative margin of the l1 quantile (scipy's gammaincinv, a few 1e-15 relative against
#: mpmath, raised to the power 1/p): taken off so that the radius rounds down
_QUANTILE_RTOL = 1e-12


def exp_p_l1_quantile(p_lower: np.ndarray, p: float) -> np.ndarray:
    """The 1-D quantile F_1^-1(p_lower) = [G_{1/p}^-1(2 p_lower - 1)]^(1/p), G the Gamma CDF.

    For p >= 1 the density is log-concave and a product, so the worst l1 perturbation moves one
    coordinate and the certified l1 radius is this quantile ([YDH+20], spec Section 3.1).
    """
    rho = np.asarray(p_lower, dtype=np.float64)
    a = 1.0 / p
    y = 2.0 * rho - 1.0  # exact; near rho = 1 gamma_ppf inverts the upper tail 1 - y instead
    z = gamma_ppf(a, y)
    # For large p the quantile z ~ (y Gamma(1 + a))^(1/a) underflows near rho = 1/2; there
    # z^a >= y Gamma(1 + a) (since G_a(z) <= z^a / Gamma(1 + a)) is a lower bound, sharp to a
    # relative O(z).
    return round_down(np.where(z < 1e-280, y * special.gamma(1.0 + a), z**a), _QUANTILE_RTOL)


def exp_p_phi(p: float) -> Phi:
    """Phi of the differential method for ExpP(p) against l1 (spec Section 3.2), used for p < 1:

        Phi(t) = (1 - exp(-G_{1/p}^-1(2t))) / (2 Gamma(1 + 1/p)).
    """
    a = 1.0 / p
    const = 0.5 / special.gamma(1.0 + a)

    def phi(t: np.ndarray) -> np.ndarray:
        return -const * np.expm1(-gamma_ppf(a, 2.0 * np.asarray(t)))

    return phi


@register_noise("exp_p")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ExpP(Noise):
    """Density proportional to exp(-sum_i |x_i / scale|^p), p > 0 (p = 1 Laplace, p = 2 Gaussian).

    sigma = scale * sqrt(Gamma(3/p) / Gamma(1/p)).
    l1: for p >= 1, the 1-D quantile (``exp_p_l1_quantile``); for p < 1, the differential method
    of [YDH+20] with ``exp_p_phi``, whose integral converges at p_lower = 1.
    """

    p: float = 2.0

    _direct_norms = (Norm.L1,)

    def _validate(self) -> None:
        object.__setattr__(self, "p", check_exponent("p", self.p))
        self._unit_sigma()

    def _unit_sigma(self) -> float:
        a = 1.0 / self.p
        return check_log_unit_sigma(0.5 * log_gamma_ratio(a, 2.0 * a),
                                    f"exp_p with p={self.p!r}")

    def _sample_unit(self, batch, *, generator, device, dtype):
        work = working_dtype(self._unit_sigma(), dtype)
        g = standard_gamma(1.0 / self.p, (batch, self.dim), generator=generator, device=device,
                           dtype=work)
        signs = random_signs((batch, self.dim), generator=generator, device=device, dtype=work)
        return g.pow_(1.0 / self.p).mul_(signs)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        if self.p >= 1.0:
            return exp_p_l1_quantile(p_lower, self.p)
        key = {"family": self.name, "norm": norm.value, "dim": self.dim, "p": self.p}
        return differential_radius(p_lower, exp_p_phi(self.p), key, converges_at_one=True)

