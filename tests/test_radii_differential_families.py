"""Laplace, ExpInf, PowInf, Exp1, ExpP and Pareto: unit sigma, radii, tables and samplers.

Independent references: the spec's closed forms and sanity values; mpmath (30 digits) quadrature of
int dt / Phi with the spec's Phi, written in a substituted variable (the gamma or beta-prime
quantile) so that no inverse function is needed; identities between families; Monte Carlo with a
fixed seed and a tolerance of five standard errors.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy.special import ndtri

from smoothcert.noises import get_noise
from smoothcert.noises.exp1 import exp_norm_phi
from smoothcert.noises.laplace import laplace_l1_radius
from smoothcert.noises.radii.differential import (
    differential_radius,
    radius_direct,
    radius_exact,
)
from smoothcert.noises.radii.table import P_TABLE_MAX

mp.mp.dps = 30


def mp_root(f, lo, hi, iterations=120):
    """The root of a monotone f in [lo, hi], by bisection (it never leaves the bracket)."""
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    below = f(lo) < 0
    assert (f(hi) < 0) != below, "the bracket does not enclose a root"
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if (f(mid) < 0) == below:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def gamma_bracket(a):
    return 0, a + 60 * mp.sqrt(a) + 200


def unit_radius(name, dim, rho, norm, **shape):
    """The radius at scale 1."""
    return get_noise(name, dim=dim, scale=1.0, **shape).certified_radius(np.asarray(rho), norm)


# ------------------------------------------------------------------------------ unit sigma (s_1)
def s1_reference(name, d, **shape):
    """The spec's s_1 table, in mpmath."""
    d = mp.mpf(d)
    G = mp.gamma
    if name == "laplace":
        return mp.sqrt(2)
    if name == "exp_inf":
        k, j = mp.mpf(shape.get("k", 1)), mp.mpf(shape.get("j", 0))
        return mp.sqrt((1 + (d - 1) / 3) / d * G((d + 2 - j) / k) / G((d - j) / k))
    if name == "pow_inf":
        a = mp.mpf(shape.get("a", d + 10))
        return mp.sqrt((1 + (d - 1) / 3) * (d + 1) / ((a - d - 1) * (a - d - 2)))
    if name == "exp1":
        k = mp.mpf(shape.get("k", 1))
        return mp.sqrt(2 / (d * (d + 1)) * G((d + 2) / k) / G(d / k))
    if name == "exp_p":
        p = mp.mpf(shape.get("p", 2))
        return mp.sqrt(G(3 / p) / G(1 / p))
    if name == "pareto":
        a = mp.mpf(shape.get("a", 3))
        return 1 / mp.sqrt((a - 1) * (a - 2) / 2)
    raise KeyError(name)


S1_CASES = [("laplace", {}), ("exp_inf", {}), ("exp_inf", {"k": 2.0, "j": 5}),
            ("exp_inf", {"k": 0.5}), ("pow_inf", {}), ("pow_inf", {"a_offset": 3.5}),
            ("exp1", {}), ("exp1", {"k": 2.0}), ("exp1", {"k": 0.3}), ("exp_p", {"p": 0.5}),
            ("exp_p", {"p": 1.0}), ("exp_p", {}), ("exp_p", {"p": 7.0}), ("pareto", {}),
            ("pareto", {"a": 2.5})]


@pytest.mark.parametrize("d", [1, 6, 3072, 150528])
@pytest.mark.parametrize("name, shape", S1_CASES)
def test_unit_sigma_matches_the_spec(name, shape, d):
    shape = dict(shape)
    if "a_offset" in shape:
        shape["a"] = d + shape.pop("a_offset")
    if shape.get("j", 0) >= d:
        pytest.skip("j must be < d")
    noise = get_noise(name, dim=d, sigma=1.0, **shape)
    assert noise.unit_sigma == pytest.approx(float(s1_reference(name, d, **shape)), rel=1e-12)


def test_spec_sanity_scales_at_sigma_one():
    assert get_noise("laplace", dim=3072, sigma=1.0).scale == pytest.approx(0.70710678, abs=1e-8)
    assert get_noise("exp_p", dim=3072, sigma=1.0, p=1.0).scale == pytest.approx(0.70710678,
                                                                                 abs=1e-8)


# ------------------------------------------------------------------- spec values and identities
RHO = np.array([0.5 + 1e-9, 0.6, 0.75, 0.9, 0.999, 0.99993092, 1 - 1e-7])


def test_laplace_l1_spec_values():
    noise = get_noise("laplace", dim=3072, sigma=1.0)
    got = noise.certified_radius(np.array([0.6, 0.9, 0.999]), "l1")
    np.testing.assert_allclose(got, [0.157786, 1.13804, 4.39439], atol=6e-6)
    assert noise.certified_radius(0.5, "l1") == 0.0
    assert noise.certified_radius(1.0, "l1") == math.inf


def test_laplace_l1_near_one_half_keeps_precision():
    rho = 0.5 + np.array([1e-15, 1e-12, 1e-9])
    # -ln(1 - x) = x + x^2/2 + ...  with x = 2 rho - 1 (exact)
    x = 2 * rho - 1
    np.testing.assert_allclose(laplace_l1_radius(rho), x + x**2 / 2, rtol=1e-14)


@pytest.mark.parametrize("sigma", [0.25, 1.0])
def test_exp_p_one_and_exp1_one_are_laplace(sigma):
    laplace = get_noise("laplace", dim=784, sigma=sigma).certified_radius(RHO, "l1")
    for name, shape in [("exp_p", {"p": 1.0}), ("exp1", {"k": 1.0})]:
        got = get_noise(name, dim=784, sigma=sigma, **shape).certified_radius(RHO, "l1")
        np.testing.assert_allclose(got, laplace, rtol=2e-12)  # the quantile form is taken down by 1e-12


@pytest.mark.parametrize("sigma", [0.25, 1.0])
def test_exp_p_two_is_the_sigma_matched_gaussian(sigma):
    # exp(-x^2) per coordinate is N(0, 1/2); at equal sigma its l1 radius (a one-coordinate
    # shift) is the Gaussian's sigma * Phi^-1(rho)
    got = get_noise("exp_p", dim=3072, sigma=sigma, p=2.0).certified_radius(RHO, "l1")
    np.testing.assert_allclose(got, sigma * ndtri(RHO), rtol=2e-12)  # taken down by 1e-12


def test_exp_norm_phi_at_k_one_gives_laplace_through_the_table():
    # Phi(t) = t at k = 1: the generic differential path (table + quadrature) must give the
    # Laplace radius, from below
    rho = np.concatenate((RHO, [1 - 1e-9, 1 - 1e-12]))
    key = {"family": "exp1-check", "norm": "l1", "dim": 50, "k": 1.0}
    got = differential_radius(rho, exp_norm_phi(50, 1.0), key)
    want = -np.log(2 * (1 - rho))
    assert np.all(got <= want) and np.all(got >= want * (1 - 1e-6))


def test_exp_inf_k_one_linf_is_closed_form_and_k_near_one_is_close():
    rho = RHO
    np.testing.assert_allclose(unit_radius("exp_inf", 3072, rho, "linf", k=1.0),
                               -np.log(2 * (1 - rho)), rtol=1e-13)
    near = unit_radius("exp_inf", 3072, rho, "linf", k=1.0 + 1e-7)
    np.testing.assert_allclose(near, -np.log(2 * (1 - rho)), rtol=1e-5)


def test_pareto_tends_to_laplace():
    laplace = get_noise("laplace", dim=10, sigma=1.0).certified_radius(RHO, "l1")
    got = get_noise("pareto", dim=10, sigma=1.0, a=1e7).certified_radius(RHO, "l1")
    np.testing.assert_allclose(got, laplace, rtol=1e-6)
    coarse = get_noise("pareto", dim=10, sigma=1.0, a=1e3).certified_radius(RHO, "l1")
    assert np.max(np.abs(coarse / laplace - 1)) > 1e-4  # the limit is approached, not reached


@pytest.mark.parametrize("k", [2.0, 0.5])
def test_exp_inf_in_one_dimension_is_exp_p(k):
    # in d = 1, exp(-|x|^k) is ExpP(k): the differential radius of either family must agree
    rho = np.array([0.5 + 1e-9, 0.6, 0.9, 0.999, 1 - 1e-7])
    a = unit_radius("exp_inf", 1, rho, "linf", k=k)
    b = unit_radius("exp_p", 1, rho, "l1", p=k)
    np.testing.assert_allclose(a, b, rtol=2e-8)
    np.testing.assert_allclose(unit_radius("exp_inf", 1, rho, "l1", k=k), a, rtol=0)


# ---------------------------------------------------------------- radii against mpmath quadrature
def mp_exp_norm_radius(d, k, rho):
    """Exp1(k)/l1 = ExpInf(k, 0)/l-inf: int dt / Phi in the variable z = ||x||^k ~ Gamma(d/k)."""
    a, b, k = mp.mpf(d) / k, (mp.mpf(d) + k - 1) / k, mp.mpf(k)
    const = k / 2 * mp.gamma(b) / mp.gamma(a)
    q2 = 2 * (1 - mp.mpf(rho))

    def density(z):
        return z ** (a - 1) * mp.exp(-z) / mp.gamma(a)

    if k >= 1:  # t = Q_a(z)/2, Phi = const Q_b(z); t: 1-rho -> 1/2 is z: z_rho -> 0
        z_rho = mp_root(lambda z: mp.gammainc(a, z, mp.inf, regularized=True) - q2,
                        *gamma_bracket(a))
        return mp.quad(lambda z: density(z) / 2 / (const * mp.gammainc(b, z, mp.inf,
                                                                         regularized=True)),
                       [0, min(a, z_rho), z_rho])
    # k < 1: t = G_a(z)/2, Phi = const G_b(z); z: z_rho -> infinity
    z_rho = mp_root(lambda z: mp.gammainc(a, 0, z, regularized=True) - q2, *gamma_bracket(a))
    return mp.quad(lambda z: density(z) / 2 / (const * mp.gammainc(b, 0, z, regularized=True)),
                   [z_rho, max(a, z_rho) + 1, mp.inf])


MP_RHO = [0.5 + 1e-6, 0.7, 0.99, 1 - 1e-7]


@pytest.mark.parametrize("d, k", [(3, 2.0), (3, 0.5), pytest.param(40, 3.0, marks=pytest.mark.slow),
                                  pytest.param(40, 0.7, marks=pytest.mark.slow)])
def test_exp1_and_exp_inf_linf_against_mpmath(d, k):
    exp1 = unit_radius("exp1", d, MP_RHO, "l1", k=k)
    exp_inf = unit_radius("exp_inf", d, MP_RHO, "linf", k=k)
    for r, x, y in zip(MP_RHO, exp1, exp_inf, strict=True):
        want = float(mp_exp_norm_radius(d, k, r))
        assert x <= want and x == pytest.approx(want, rel=1e-7)
        assert y <= want and y == pytest.approx(want, rel=1e-7)


def mp_pow_inf_radius(d, a, rho):
    """PowInf(a)/l-inf in the variable x = BP^-1_{d,a-d}(2t): t = F(x)/2, Phi = (a-d)/2 F'(x)."""
    d, a = mp.mpf(d), mp.mpf(a)

    def cdf(alpha, beta, x):
        return mp.betainc(alpha, beta, 0, x / (1 + x), regularized=True)

    def pdf(x):
        return x ** (d - 1) * (1 + x) ** (-a) / mp.beta(d, a - d)

    q2 = 2 * (1 - mp.mpf(rho))
    x_rho = mp_root(lambda x: cdf(d, a - d, x) - q2, 0, 1e12)
    return mp.quad(lambda x: pdf(x) / ((a - d) * cdf(d, a + 1 - d, x)),
                   [x_rho, x_rho + 1, mp.inf])


@pytest.mark.parametrize("d, a", [(3, 8.0), pytest.param(20, 25.5, marks=pytest.mark.slow)])
def test_pow_inf_linf_against_mpmath(d, a):
    got = unit_radius("pow_inf", d, MP_RHO, "linf", a=a)
    for r, g in zip(MP_RHO, got, strict=True):
        want = float(mp_pow_inf_radius(d, a, r))
        assert g <= want and g == pytest.approx(want, rel=1e-7)


def mp_l1_gamma(f, d):
    """gamma = 1 / int |d q / d x_1| for q = C f(||x||_inf) (cube level sets), in mpmath:
    (d-1)/d * int f r^(d-2) dr / int f r^(d-1) dr, by parts over the faces normal to e_1."""
    num = mp.quad(lambda r: f(r) * r ** (d - 2), [0, 1, mp.inf])
    den = mp.quad(lambda r: f(r) * r ** (d - 1), [0, 1, mp.inf])
    return 1 / ((d - 1) * num / (d * den))


@pytest.mark.parametrize("d, k, j", [(5, 2.0, 0), (5, 2.0, 1.5), (30, 0.7, 0), (30, 1.0, 10)])
def test_exp_inf_l1_closed_form_against_mpmath(d, k, j):
    gamma = mp_l1_gamma(lambda r: r ** (-j) * mp.exp(-r**k), d)
    rho = np.array([0.5 + 1e-9, 0.6, 0.99, 1.0])
    got = unit_radius("exp_inf", d, rho, "l1", k=k, j=j)
    np.testing.assert_allclose(got, 2 * float(gamma) * (rho - 0.5), rtol=2e-11)  # taken down by 1e-11


def test_exp_inf_l1_is_zero_when_the_gradient_is_not_integrable():
    assert np.all(unit_radius("exp_inf", 5, [0.6, 0.99], "l1", k=2.0, j=4) == 0)


@pytest.mark.parametrize("d, a", [(5, 9.0), (30, 32.5)])
def test_pow_inf_l1_closed_form_against_mpmath(d, a):
    gamma = mp_l1_gamma(lambda r: (1 + r) ** (-a), d)
    rho = np.array([0.5 + 1e-9, 0.6, 0.99, 1.0])
    got = unit_radius("pow_inf", d, rho, "l1", a=a)
    np.testing.assert_allclose(got, 2 * float(gamma) * (rho - 0.5), rtol=2e-11)  # taken down by 1e-11


@pytest.mark.parametrize("p", [1.5, 3.0, 10.0])
def test_exp_p_quantile_against_mpmath_density(p):
    # the radius R is the 1-D quantile: int_0^R exp(-x^p) dx / (2 Gamma(1 + 1/p)) = rho - 1/2
    rho = [0.5 + 1e-9, 0.6, 0.9, 0.999, 1 - 1e-7, 1 - 1e-12]
    got = unit_radius("exp_p", 4, rho, "l1", p=p)
    norm = 2 * mp.gamma(1 + 1 / mp.mpf(p))
    for r, g in zip(rho, got, strict=True):
        mass = mp.quad(lambda x: mp.exp(-x**p), [0, g]) / norm
        assert float(mass) == pytest.approx(r - 0.5, rel=1e-11)


@pytest.mark.parametrize("p", [0.5, pytest.param(0.8, marks=pytest.mark.slow)])
def test_exp_p_below_one_against_mpmath(p):
    # t = G_{1/p}(g)/2, Phi = (1 - e^-g) / (2 Gamma(1 + 1/p)); g: g_rho -> infinity
    a = 1 / mp.mpf(p)
    rho = [0.5 + 1e-6, 0.7, 0.99, 1 - 1e-7]
    got = unit_radius("exp_p", 7, rho, "l1", p=p)
    for r, v in zip(rho, got, strict=True):
        q2 = 2 * (1 - mp.mpf(r))
        g_rho = mp_root(lambda g, q2=q2: mp.gammainc(a, 0, g, regularized=True) - q2,
                        *gamma_bracket(a))
        want = mp.quad(lambda g: g ** (a - 1) * mp.exp(-g) / mp.gamma(a) * mp.gamma(1 + a)
                       / (1 - mp.exp(-g)), [g_rho, g_rho + 1, mp.inf])
        assert v <= want and v == pytest.approx(float(want), rel=1e-7)
    # the integral converges at rho = 1
    at_one = unit_radius("exp_p", 7, [1.0], "l1", p=p)[0]
    assert math.isfinite(at_one) and at_one >= got[-1]


@pytest.mark.parametrize("a", [2.5, 3.0, 40.0])
def test_pareto_closed_form_against_mpmath(a):
    rho = [0.5 + 1e-9, 0.6, 0.75, 0.76, 0.9, 0.999, 1 - 1e-7, 1 - 1e-12, 1 - 2.0**-53]
    got = unit_radius("pareto", 3, rho, "l1", a=a)
    A = mp.mpf(a)
    for r, g in zip(rho, got, strict=True):
        q = 1 - mp.mpf(r)
        # Phi(t) = (a/2)(1 - (1-2t)^(1+1/a)); in s = 1/2 - t to resolve the end point
        want = mp.quad(lambda s: 1 / (A / 2 * (1 - (2 * s) ** (1 + 1 / A))), [0, (0.5 - q) / 2,
                                                                               0.5 - q])
        assert g == pytest.approx(float(want), rel=2e-12)  # taken down by 1e-12
    assert unit_radius("pareto", 3, [1.0], "l1", a=a)[0] == math.inf


@pytest.mark.parametrize("d, k", [(3072, 2.0), (150528, 0.5)])
def test_exp_norm_phi_against_mpmath(d, k):
    # the gamma quantile is solved in mpmath by Newton's method from scipy's value and checked by
    # its residual; Phi then follows from mpmath's incomplete gamma function
    from scipy.special import gammaincinv

    a, b = mp.mpf(d) / k, (mp.mpf(d) + k - 1) / k
    const = mp.mpf(k) / 2 * mp.exp(mp.loggamma(b) - mp.loggamma(a))
    phi = exp_norm_phi(d, k)
    for t in [1e-12, 1e-8, 1e-3, 0.3, 0.5 - 1e-6]:
        y = 1 - 2 * mp.mpf(t) if k >= 1 else 2 * mp.mpf(t)  # P(Z <= z) = y

        def lower(z, y=y):
            return mp.gammainc(a, 0, z, regularized=True) - y

        z = mp.findroot(lower, mp.mpf(gammaincinv(float(a), float(y))))
        assert abs(lower(z)) < mp.mpf(10) ** -25 * y
        if k >= 1:
            want = const * mp.gammainc(b, z, mp.inf, regularized=True)
        else:
            want = const * mp.gammainc(b, 0, z, regularized=True)
        assert float(phi(np.array([t]))[0]) == pytest.approx(float(want), rel=1e-9)


def test_phi_keeps_relative_accuracy_in_both_tails_in_low_dimension():
    # Choose the quantile x, compute t and Phi(t) forward in mpmath (no inverse function), and
    # compare with the library's Phi at t, for t from ~1e-16 to ~1/2.
    from smoothcert.noises.exp_p import exp_p_phi
    from smoothcert.noises.pow_inf import pow_inf_phi

    def check(phi, forward, points):
        for x in points:
            t, want = forward(mp.mpf(x))
            if not 1e-17 < t < 0.5:
                continue
            assert float(phi(np.array([float(t)]))[0]) == pytest.approx(float(want), rel=1e-9)

    for d, a in [(1, 11.0), (3, 5.5)]:
        def forward(x, d=d, a=a):  # r = x: t = P(r < x)/2, Phi = ((a-d)/2) BP_{d,a+1-d}(x)
            w = x / (1 + x)
            return (mp.betainc(d, a - d, 0, w, regularized=True) / 2,
                    (a - d) / 2 * mp.betainc(d, a + 1 - d, 0, w, regularized=True))
        check(pow_inf_phi(d, a), forward, [mp.mpf(10) ** e for e in np.linspace(-16, 3, 40)])

    for k in [0.5, 3.0]:  # d = 1: Z = |x|^k ~ Gamma(1/k), b = 1
        a = 1 / mp.mpf(k)
        const = mp.mpf(k) / 2 / mp.gamma(a)

        def forward(z, k=k, a=a, const=const):
            if k >= 1:  # t = Q_a(z)/2, Phi = const Q_1(z)
                return mp.gammainc(a, z, mp.inf, regularized=True) / 2, const * mp.exp(-z)
            return mp.gammainc(a, 0, z, regularized=True) / 2, const * -mp.expm1(-z)
        check(exp_norm_phi(1, k), forward, [mp.mpf(10) ** e for e in np.linspace(-12, 2, 40)])

    p = 0.4
    a = 1 / mp.mpf(p)

    def forward_p(g):  # t = G_a(g)/2, Phi = (1 - e^-g) / (2 Gamma(1 + a))
        return mp.gammainc(a, 0, g, regularized=True) / 2, -mp.expm1(-g) / (2 * mp.gamma(1 + a))
    check(exp_p_phi(p), forward_p, [mp.mpf(10) ** e for e in np.linspace(-5, 2, 30)])


def test_pow_inf_in_one_dimension_near_one():
    rho = np.array([0.9, 1 - 1e-9, 1 - 1e-12, 1 - 2.0**-53])
    got = unit_radius("pow_inf", 1, rho, "linf")
    assert np.all(np.isfinite(got)) and np.all(np.diff(got) > 0)
    # at d = 1, l1 and l-inf coincide
    np.testing.assert_array_equal(unit_radius("pow_inf", 1, rho, "l1"), got)


# -------------------------------------------------------------------- tables against quadrature
TABLE_CASES = [("exp_inf", "linf", {"k": 2.0}), ("exp_inf", "linf", {"k": 0.5}),
               ("pow_inf", "linf", {}), ("exp1", "l1", {"k": 2.0}), ("exp1", "l1", {"k": 0.4}),
               ("exp_p", "l1", {"p": 0.5})]


def phi_of(noise):
    from smoothcert.noises.exp_p import exp_p_phi
    from smoothcert.noises.pow_inf import pow_inf_phi

    if noise.name in ("exp1", "exp_inf"):
        return exp_norm_phi(noise.dim, noise.k)
    if noise.name == "pow_inf":
        return pow_inf_phi(noise.dim, noise.a)
    return exp_p_phi(noise.p)


@pytest.mark.parametrize("name, norm, shape", TABLE_CASES)
def test_tables_are_tight_lower_bounds(name, norm, shape):
    d = 3072
    noise = get_noise(name, dim=d, scale=1.0, **shape)
    rng = np.random.default_rng(7)
    rho = np.sort(np.concatenate((0.5 + 10 ** rng.uniform(-9, -0.35, 25),
                                  1 - 10 ** rng.uniform(-8, -0.35, 25),
                                  [0.5 + 1e-9, 1 - 1e-7, P_TABLE_MAX])))
    got = noise.certified_radius(rho, norm)
    phi = phi_of(noise)
    exact = radius_exact(rho, phi)  # Gauss-Legendre, not rounded
    quad = radius_direct(rho, phi)  # scipy quad, rounded down by ~1e-9
    np.testing.assert_allclose(quad, exact, rtol=1e-8)
    assert np.all(got <= exact)
    assert np.all(got >= quad * (1 - 1e-6))


@pytest.mark.parametrize("name, norm, shape", TABLE_CASES)
def test_radii_above_the_table_and_at_one(name, norm, shape):
    noise = get_noise(name, dim=3072, scale=1.0, **shape)
    rho = np.array([P_TABLE_MAX, 1 - 1e-9, 1 - 1e-12, 1 - 2.0**-53, 1.0])
    got = noise.certified_radius(rho, norm)
    assert np.all(np.diff(got) >= -1e-8 * got[:-1])
    converges = (shape.get("k", 1) < 1) or name == "exp_p"
    assert math.isfinite(got[-1]) == converges
    assert np.all(np.isfinite(got[:-1]))


@pytest.mark.parametrize("name, shape", [("laplace", {}), ("exp_inf", {"k": 2.0}),
                                         ("exp_inf", {"k": 1.0, "j": 3}), ("pow_inf", {}),
                                         ("exp1", {"k": 2.0}), ("exp_p", {"p": 0.5}),
                                         ("exp_p", {}), ("pareto", {})])
def test_imagenet_dimension(name, shape):
    noise = get_noise(name, dim=150528, sigma=0.5, **shape)
    rho = np.array([0.5, 0.5 + 1e-9, 0.6, 0.9, 0.999, 0.99993092, 1 - 1e-7, 1 - 1e-10])
    for norm in noise.direct_norms:
        got = noise.certified_radius(rho, norm)
        assert got[0] == 0 and np.all(got[1:] > 0) and np.all(np.isfinite(got))
        assert np.all(np.diff(got) >= 0)


# ------------------------------------------------------------------------- parameters and norms
@pytest.mark.parametrize("name, shape, match", [
    ("exp_inf", {"k": 0.0}, "k must be"), ("exp_inf", {"k": -1.0}, "k must be"),
    ("exp_inf", {"k": math.inf}, "k must be"), ("exp_inf", {"j": -1}, "j must lie"),
    ("exp_inf", {"j": 10}, r"j must lie in \[0, dim=10\)"), ("exp_inf", {"j": "0"}, "j must"),
    ("pow_inf", {"a": 12.0}, r"a must be > dim \+ 2 = 12"), ("pow_inf", {"a": 5.0}, "got 5.0"),
    ("exp1", {"k": 0}, "k must be"), ("exp1", {"k": True}, "k must be"),
    ("exp_p", {"p": 0.0}, "p must be"), ("exp_p", {"p": -2.0}, "p must be"),
    ("pareto", {"a": 2.0}, "a must be a finite number > 2"), ("pareto", {"a": 1.0}, "got 1.0"),
    ("exp1", {"k": 1e-3}, "overflows"),
])
def test_invalid_shapes_are_rejected(name, shape, match):
    with pytest.raises(ValueError, match=match):
        get_noise(name, dim=10, sigma=1.0, **shape)


def test_defaults_and_direct_norms():
    assert get_noise("pow_inf", dim=50, sigma=1.0).a == 60.0
    assert get_noise("pow_inf", dim=50, scale=2.0).a == 60.0
    for name in ["laplace", "exp_inf", "pow_inf", "exp1", "exp_p", "pareto"]:
        get_noise(name, dim=3, sigma=1.0)
    assert {n.value for n in get_noise("exp_inf", dim=5, sigma=1.0).direct_norms} == {"l1",
                                                                                       "linf"}
    only_l1 = get_noise("exp_inf", dim=5, sigma=1.0, j=2)
    assert [n.value for n in only_l1.direct_norms] == ["l1"]
    with pytest.raises(ValueError, match="does not certify linf"):
        only_l1.certified_radius(0.9, "linf")


# -------------------------------------------------------------------------------------- samplers
SAMPLER_CASES = [("laplace", {}), ("exp_inf", {}), ("exp_inf", {"k": 0.5, "j": 20}),
                 ("exp_inf", {"k": 3.0}), ("pow_inf", {}), ("exp1", {"k": 2.0}),
                 ("exp1", {"k": 0.1}), ("exp_p", {"p": 0.5}), ("exp_p", {"p": 4.0}),
                 ("pareto", {"a": 8.0})]


@pytest.mark.parametrize("name, shape", SAMPLER_CASES)
def test_sampler_second_moment_is_sigma_squared(name, shape):
    d, n, sigma = 64, 6000, 0.7
    noise = get_noise(name, dim=d, sigma=sigma, **shape)
    x = noise.sample(n, generator=torch.Generator().manual_seed(123)).double()
    assert x.dtype == torch.float64 and x.shape == (n, d) and torch.isfinite(x).all()
    per_draw = (x**2).mean(dim=1)  # ||delta||^2 / d, one value per draw
    mean = per_draw.mean().item()
    stderr = per_draw.std().item() / math.sqrt(n)
    assert abs(mean - sigma**2) <= 5 * stderr, (mean, sigma**2, stderr)


@pytest.mark.parametrize("name, shape", SAMPLER_CASES)
def test_sampler_is_reproducible(name, shape):
    noise = get_noise(name, dim=32, sigma=1.0, **shape)
    a = noise.sample(5, generator=torch.Generator().manual_seed(9))
    b = noise.sample(5, generator=torch.Generator().manual_seed(9))
    c = noise.sample(5, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    y = noise.sample_like(torch.zeros(3, 2, 4, 4, dtype=torch.float64),
                          generator=torch.Generator().manual_seed(9))
    assert y.shape == (3, 2, 4, 4) and y.dtype == torch.float64


def test_cube_shaped_samples_have_their_norm_on_one_face():
    # ExpInf and PowInf draws are r * u with u on the cube surface: ||x||_inf = r, attained
    x = get_noise("exp_inf", dim=32, scale=1.0, k=2.0).sample(
        2000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = x.abs().amax(dim=1)
    # r^k ~ Gamma(d/k): mean d/k = 16
    assert (r**2).mean().item() == pytest.approx(16.0, rel=0.03)
