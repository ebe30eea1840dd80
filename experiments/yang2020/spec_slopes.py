"""Slopes dR/drho at rho = 1/2 from the closed forms of the spec, evaluated without the library.

Every value is the derivative at rho = 1/2 of a radius formula of SPEC.md (section 3.1 closed
forms, section 3.2 differential method: dR/drho = 1/Phi(1/2)), or, for the spherical families
the spec only treats with the level-set method (pow2, exp2 with k != 1, 2 or j > 0), the first
order of the Neyman-Pearson radius for a density exp(-g(||x||_2)):

    dR/drho at 1/2 = 2 / (E[g'(r)] * E|cos theta|),   E|cos theta| = Gamma(d/2) /
    (sqrt(pi) Gamma((d+1)/2)),

which is 1/Phi(1/2) of the differential method with Phi(1/2) = E[<e_1, grad psi>^+]. It gives
sqrt(2 pi) for the Gaussian, as it must. Values are per unit sigma (sigma = 1), i.e. the unit
slope times lambda = 1/s_1, with s_1 from the spec's table of section 2.

Only numpy/scipy/math are used, so the values are an independent check of the library's radii.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.special import betaln, gammaln

__all__ = ["spec_slope", "unit_sigma", "SOURCES"]

SOURCES = {
    "s6": "SPEC §6 value",
    "s31": "SPEC §3.1 closed form",
    "s32": "SPEC §3.2 differential method",
    "sph": "first-order spherical formula (derived here)",
    "split": "SPLITTING.md (uniform noise's certificate)",
}


def _lg(x: float) -> float:
    return float(gammaln(x))


def unit_sigma(family: str, d: int, **shape: float) -> float:
    """s_1 = sigma at lambda = 1 (SPEC section 2)."""
    k = float(shape.get("k", 1.0))
    j = float(shape.get("j", 0.0))
    a = shape.get("a")
    if family == "gaussian":
        return 1.0
    if family == "laplace":
        return math.sqrt(2.0)
    if family in ("uniform", "ssn"):  # ssn: sigma = lambda / sqrt 3 (SPLITTING.md)
        return 1.0 / math.sqrt(3.0)
    if family == "uniform_ball":
        return (d + 2.0) ** -0.5
    if family == "pareto":
        a = float(a if a is not None else 3.0)
        return (0.5 * (a - 1.0) * (a - 2.0)) ** -0.5
    if family == "exp_inf":
        return math.sqrt((1 + (d - 1) / 3) / d * math.exp(_lg((d + 2 - j) / k) - _lg((d - j) / k)))
    if family == "pow_inf":
        a = float(a if a is not None else d + 10)
        return math.sqrt((1 + (d - 1) / 3) * (d + 1) / ((a - d - 1) * (a - d - 2)))
    if family == "exp1":
        return math.sqrt(2.0 / (d * (d + 1.0)) * math.exp(_lg((d + 2) / k) - _lg(d / k)))
    if family == "exp2":
        k = float(shape.get("k", 2.0))
        return math.sqrt(math.exp(_lg((d + 2 - j) / k) - _lg((d - j) / k)) / d)
    if family == "pow2":
        k = float(shape.get("k", 2.0))
        a = float(a if a is not None else d + 10)
        return math.exp(0.5 * (_lg((d + 2) / k) + _lg(a - (d + 2) / k) - _lg(d / k)
                               - _lg(a - d / k) - math.log(d)))
    if family == "exp_p":
        p = float(shape.get("p", 2.0))
        return math.sqrt(math.exp(_lg(3 / p) - _lg(1 / p)))
    raise KeyError(family)


def _abs_cos(d: int) -> float:
    """E|cos theta| for a uniform direction on the sphere S^{d-1}."""
    return math.exp(_lg(d / 2) - _lg((d + 1) / 2)) / math.sqrt(math.pi)


def _laplace_linf_phi_half(d: int) -> float:
    """Phi(1/2) = E[S^+], S = sum of d random signs, by summing the binomial pmf directly."""
    b = np.arange(d + 1)
    s = 2 * b - d
    pmf = stats.binom.pmf(b, d, 0.5)
    return float(np.sum(np.where(s > 0, s * pmf, 0.0)))


def spec_slope(family: str, norm: str, d: int, **shape: float) -> tuple[float, str] | None:
    """(dR/drho at rho = 1/2 at sigma = 1, source key) or None where no formula is available.

    ``norm`` is a direct norm of the family, or "l1" for the Gaussian (the spec's §6 value, by
    the conversion ||v||_2 <= ||v||_1, which leaves the radius unchanged).
    """
    lam = 1.0 / unit_sigma(family, d, **shape)
    k = float(shape.get("k", 1.0))
    j = float(shape.get("j", 0.0))
    a = shape.get("a")
    unit: float
    src: str
    if family == "gaussian" and norm in ("l2", "l1"):
        unit, src = math.sqrt(2 * math.pi), ("s6" if norm == "l1" else "s31")
    elif family == "laplace" and norm == "l1":
        unit, src = 2.0, "s6"
    elif family == "laplace" and norm == "linf":
        unit, src = 1.0 / _laplace_linf_phi_half(d), "s32"
    elif family == "uniform" and norm == "l1":
        unit, src = 2.0, "s6"
    elif family == "ssn" and norm == "l1":  # R = 2 lambda (rho - 1/2), as uniform noise
        unit, src = 2.0, "split"
    elif family == "uniform" and norm == "linf":
        unit, src = 2.0 / d, "s31"
    elif family == "uniform_ball" and norm == "l2":
        h = (d + 1) / 2  # R = 2 - 4 B^{-1}_{h,h}(3/4 - rho/2): slope 2 / beta_pdf_{h,h}(1/2)
        log_pdf = (2 * h - 2) * math.log(0.5) - float(betaln(h, h))
        unit, src = 2.0 * math.exp(-log_pdf), "s31"
    elif family == "exp_inf" and norm == "l1":
        gamma = d / (d - 1) * math.exp(_lg((d - j) / k) - _lg((d - j - 1) / k))
        unit, src = 2.0 * gamma, "s31"
    elif family == "exp_inf" and norm == "linf" and k == 1.0 and j == 0.0:
        unit, src = 2.0, "s31"
    elif family == "pow_inf":
        a = float(a if a is not None else d + 10)
        if norm == "l1":
            unit, src = 2.0 * d / (a - d), "s31"
        else:  # Phi(1/2) = ((a-d)/2) * cdf(quantile(1)) = (a-d)/2
            unit, src = 2.0 / (a - d), "s32"
    elif family == "exp1" and norm == "l1":  # Psi(1/2) = 1 for every k > 0
        unit, src = 2.0 / k * math.exp(_lg(d / k) - _lg((d + k - 1) / k)), "s32"
    elif family == "exp_p" and norm == "l1":
        p = float(shape.get("p", 2.0))
        unit, src = 2.0 * math.exp(_lg(1 + 1 / p)), ("s31" if p >= 1 else "s32")
    elif family == "pareto" and norm == "l1":
        a = float(a if a is not None else 3.0)
        unit, src = 2.0 / a, "s32"
    elif family == "exp2" and norm == "l2":
        k = float(shape.get("k", 2.0))
        if k == 1.0 and j == 0.0:  # R = (d-1) atanh(1 - 2 B^{-1}_{b,b}(1 - rho))
            b = (d - 1) / 2
            log_pdf = (2 * b - 2) * math.log(0.5) - float(betaln(b, b))
            unit, src = 2.0 * (d - 1) * math.exp(-log_pdf), "s31"
        else:  # g(r) = r^k + j ln r, z = r^k ~ Gamma((d-j)/k)
            al = (d - j) / k
            e_g = (k * math.exp(_lg(al + (k - 1) / k) - _lg(al))
                   + j * math.exp(_lg(al - 1 / k) - _lg(al)))
            unit, src = 2.0 / (e_g * _abs_cos(d)), "sph"
    elif family == "pow2" and norm == "l2":
        k = float(shape.get("k", 2.0))
        a = float(a if a is not None else d + 10)
        # g(r) = a ln(1 + r^k), g' = a k r^(k-1)/(1 + r^k), z = r^k ~ BetaPrime(d/k, a - d/k):
        # E[z^s / (1+z)] = B(al + s, be + 1 - s) / B(al, be) with s = (k-1)/k
        al, be, s = d / k, a - d / k, (k - 1) / k
        e_g = a * k * math.exp(float(betaln(al + s, be + 1 - s) - betaln(al, be)))
        unit, src = 2.0 / (e_g * _abs_cos(d)), "sph"
    else:
        return None
    return unit * lam, src
