"""The differential-method machinery: integrators, graded tables, and the exact Laplace l-inf radius.

Expected values come from closed forms of int dt / Phi for simple Phi, from scipy quadrature in
the plain variable t, and from mpmath (30 digits) with Phi computed by enumerating the binomial.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr, ndtri
from scipy.stats import norm

from smoothcert.noises.laplace import laplace_linf_radius
from smoothcert.noises.radii.differential import (
    differential_radius,
    radius_direct,
    radius_exact,
)
from smoothcert.noises.radii.table import P_TABLE_MAX, build_table, clear_memory_cache


def phi_laplace(t):  # Phi(t) = t  =>  R = -ln(2 (1 - rho))
    return np.asarray(t, dtype=np.float64)


def phi_gauss(t):  # normal pdf at the normal quantile  =>  R = Phi_N^-1(rho)
    return norm.pdf(ndtri(np.asarray(t, dtype=np.float64)))


def phi_sqrt(t):  # Phi(t) = sqrt(t)  =>  R = 2 (sqrt(1/2) - sqrt(1 - rho)), R(1) = sqrt(2)
    return np.sqrt(np.asarray(t, dtype=np.float64))


def closed_laplace(rho):
    return -np.log(2.0 * (1.0 - rho))


def closed_sqrt(rho):
    # 2 (sqrt(1/2) - sqrt(1 - rho)) without the cancellation near rho = 1/2
    return 2.0 * (rho - 0.5) / (math.sqrt(0.5) + np.sqrt(1.0 - rho))


RHO = np.array([0.5, 0.5 + 1e-9, 0.5 + 1e-6, 0.51, 0.6, 0.74, 0.75, 0.76, 0.9, 0.99, 0.999,
                0.99993092, 1 - 1e-7, 1 - 1e-8])


@pytest.mark.parametrize("phi, closed", [(phi_laplace, closed_laplace), (phi_gauss, ndtri),
                                         (phi_sqrt, closed_sqrt)])
def test_radius_exact_matches_closed_forms(phi, closed):
    got = radius_exact(RHO, phi)
    want = closed(RHO)
    assert got[0] == 0.0
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12, atol=0)


def test_radius_exact_accepts_any_sorted_array():
    # a single wide piece, repeated values, and no leading 1/2
    rho = np.array([0.5 + 1e-12, 0.7, 0.7, 1 - 1e-12])
    np.testing.assert_allclose(radius_exact(rho, phi_gauss), ndtri(rho), rtol=1e-12)


def test_radius_exact_rejects_bad_input():
    with pytest.raises(ValueError, match="sorted"):
        radius_exact(np.array([0.6, 0.55]), phi_gauss)
    with pytest.raises(ValueError, match=r"\[1/2, 1\)"):
        radius_exact(np.array([0.6, 1.0]), phi_gauss)
    with pytest.raises(FloatingPointError, match="Phi"):
        radius_exact(np.array([0.5, 0.6]), lambda t: t - 0.45)  # Phi <= 0 is not a Phi


@pytest.mark.parametrize("phi, closed", [(phi_laplace, closed_laplace), (phi_gauss, ndtri),
                                         (phi_sqrt, closed_sqrt)])
def test_radius_direct_matches_closed_forms_and_rounds_down(phi, closed):
    rho = np.array([0.5 + 1e-9, 0.6, 0.9, 1 - 1e-9, 1 - 1e-12, 1 - 2.0**-53])
    got = radius_direct(rho, phi)
    want = closed(rho)
    assert np.all(got <= want)
    np.testing.assert_allclose(got, want, rtol=2e-9)


def test_radius_direct_at_one():
    assert radius_direct(np.array([1.0]), phi_laplace)[0] == math.inf
    # sqrt(t) vanishes slower than t: the integral converges, to sqrt(2)
    value = radius_direct(np.array([1.0]), phi_sqrt, converges_at_one=True)[0]
    assert value <= math.sqrt(2) and value == pytest.approx(math.sqrt(2), rel=3e-9)
    assert radius_direct(np.array([0.5]), phi_laplace)[0] == 0.0


def test_exact_agrees_with_scipy_quad_in_t():
    # an integrand with a non-analytic point at t = 1/2 (Pareto's Phi at a = 3), integrated in
    # the plain variable t by scipy.integrate.quad
    a = 3.0

    def phi(t):
        with np.errstate(divide="ignore"):  # t = 1/2 gives log1p(-1) = -inf, Phi = a/2
            return 0.5 * a * -np.expm1((1 + 1 / a) * np.log1p(-2.0 * np.asarray(t)))

    rho = np.array([0.5 + 1e-7, 0.55, 0.8, 0.97, 0.9999])
    got = radius_exact(rho, phi)
    for r, g in zip(rho, got, strict=True):
        want, err = integrate.quad(lambda t: 1.0 / float(phi(t)), 1 - r, 0.5, epsabs=0,
                                   epsrel=1e-13, limit=200)
        assert g == pytest.approx(want, rel=1e-11)


def test_graded_table_is_a_tight_lower_bound():
    table = build_table(lambda rho: radius_exact(rho, phi_gauss), grading=4.0, exact_error=1e-9)
    assert table.margin < 1e-8
    rng = np.random.default_rng(0)
    p = np.concatenate((0.5 + 10 ** rng.uniform(-9, -0.4, 200),
                        1 - 10 ** rng.uniform(-8, -0.4, 200),
                        [0.5 + 1e-9, 1 - 1e-7, P_TABLE_MAX]))
    got = table(p)
    want = ndtri(p)
    assert np.all(got <= want)
    assert np.all(got >= want * (1 - 1e-6))
    assert table.p_max == pytest.approx(P_TABLE_MAX, abs=1e-15)


def test_differential_radius_uses_the_table_then_quadrature():
    clear_memory_cache()
    key = {"family": "test-gauss", "norm": "l2", "dim": 1}
    p = np.array([0.5 + 1e-9, 0.8, 1 - 1e-7, 1 - 1e-9, 1 - 1e-13, 1.0])
    got = differential_radius(p, phi_gauss, key)
    want = ndtri(p)
    assert np.all(got <= want)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[-1] == math.inf
    with pytest.raises(ValueError, match="dim"):
        differential_radius(p, phi_gauss, {"family": "test-gauss", "norm": "l2"})


# ------------------------------------------------------------------------ Laplace l-inf, exact
def brute_laplace_linf(d: int, rho: float) -> mp.mpf:
    """int_{1-rho}^{1/2} dt / Phi(t), Phi(t) = the mean of S = sum_i sign(y_i) over its top t."""
    mp.mp.dps = 30
    support = [(2 * b - d, mp.mpf(math.comb(d, b)) / 2**d) for b in range(d, -1, -1)]

    def phi(t):
        acc, mass = mp.mpf(0), mp.mpf(0)
        for s, pm in support:
            take = min(pm, t - mass)
            if take <= 0:
                break
            acc += take * s
            mass += take
        return acc

    q = 1 - mp.mpf(rho)
    cuts, mass = [], mp.mpf(0)
    for _, pm in support:
        mass += pm
        if q < mass < mp.mpf(1) / 2:
            cuts.append(mass)
    return mp.quad(lambda t: 1 / phi(t), [q, *cuts, mp.mpf(1) / 2])


@pytest.mark.parametrize("d", [2, 3, 5, 12])
def test_laplace_linf_matches_brute_force(d):
    rho = np.array([0.5 + 1e-9, 0.6, 0.9, 0.999, 1 - 1e-7])
    got = laplace_linf_radius(rho, d)
    for r, g in zip(rho, got, strict=True):
        want = float(brute_laplace_linf(d, float(r)))
        assert g <= want
        assert g == pytest.approx(want, rel=1e-10)


def test_laplace_linf_in_one_dimension_is_the_l1_radius():
    rho = np.array([0.5 + 1e-9, 0.6, 0.9, 0.999, 1 - 1e-12])
    np.testing.assert_allclose(laplace_linf_radius(rho, 1), -np.log(2 * (1 - rho)), rtol=1e-10)
    assert laplace_linf_radius(np.array([1.0]), 1)[0] == math.inf


@pytest.mark.parametrize("d", [784, 3072, 150528])
def test_laplace_linf_exceeds_the_clt_shortcut(d):
    # the spec's claim: Phi^-1(rho)/sqrt(d) is slightly below the exact value
    rho = np.concatenate((0.5 + np.logspace(-9, -0.31, 40), 1 - np.logspace(-12, -0.31, 40)))
    exact = laplace_linf_radius(rho, d)
    clt = ndtri(rho) / math.sqrt(d)
    assert np.all(exact >= clt)
    np.testing.assert_allclose(exact, clt, rtol=3e-3)  # and close to it in high dimension
    assert np.all(np.diff(exact[np.argsort(rho)]) >= 0)


def test_laplace_linf_at_imagenet_dimension_is_fast_and_monotone():
    d = 150528
    rho = np.sort(ndtr(np.linspace(1e-6, 8.0, 100_000)))
    values = laplace_linf_radius(rho, d)
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) >= 0)
    assert laplace_linf_radius(np.array([1.0]), d)[0] == math.inf
