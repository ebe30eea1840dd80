"""The uniform families: closed-form radii against high-precision evaluation and Monte Carlo
geometry, spec sanity values, and the sampler's support."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from smoothcert import get_noise

RHOS = [0.5 + 1e-12, 0.5 + 1e-6, 0.5 + 1e-3, 0.6, 0.75, 0.9, 0.999, 0.99993092, 1 - 1e-7, 1.0]
DIMS = [1, 2, 3, 7, 784, 3072, 150528]


# ------------------------------------------------------------------------------- spec values
def test_spec_scale_at_unit_sigma():
    assert get_noise("uniform", dim=3072, sigma=1.0).scale == pytest.approx(1.7320508, abs=1e-7)
    ball = get_noise("uniform_ball", dim=3072, sigma=1.0)
    assert ball.scale == pytest.approx(55.443665, abs=1e-6)
    assert ball.scale == pytest.approx(math.sqrt(3074), rel=1e-15)


def test_spec_uniform_l1_at_unit_sigma():
    noise = get_noise("uniform", dim=3072, sigma=1.0)
    got = noise.certified_radius(np.array([0.6, 0.9, 0.999]), "l1")
    np.testing.assert_allclose(got, [0.34641, 1.38564, 1.72859], atol=6e-6)


def test_spec_l1_slope_at_one_half():
    # dR/drho at rho = 1/2 per unit sigma: 2 sqrt(3)
    noise = get_noise("uniform", dim=10, sigma=1.0)
    h = 1e-6
    assert noise.certified_radius(0.5 + h, "l1") / h == pytest.approx(2 * math.sqrt(3), rel=1e-9)


# ------------------------------------------------------------------------ uniform (cube) l-inf
def _linf_reference(rho: float, d: int) -> mp.mpf:
    with mp.workdps(50):
        return 2 * (1 - (mp.mpf(3) / 2 - mp.mpf(rho)) ** (mp.mpf(1) / d))


@pytest.mark.parametrize("d", DIMS)
def test_uniform_linf_matches_high_precision(d):
    noise = get_noise("uniform", dim=d, scale=1.0)
    got = noise.certified_radius(np.array(RHOS), "linf")
    for rho, value in zip(RHOS, got, strict=True):
        ref = _linf_reference(rho, d)
        assert value <= ref, (rho, d)
        assert abs(value - ref) / ref < 1e-14, (rho, d, value, ref)


@pytest.mark.parametrize("d", DIMS)
def test_uniform_l1_is_exact(d):
    noise = get_noise("uniform", dim=d, scale=1.0)
    got = noise.certified_radius(np.array(RHOS), "l1")
    for rho, value in zip(RHOS, got, strict=True):
        assert value == float(2 * (mp.mpf(rho) - mp.mpf(0.5)))


def test_uniform_at_d1_linf_equals_l1():
    noise = get_noise("uniform", dim=1, scale=1.0)
    p = np.array(RHOS)
    np.testing.assert_allclose(noise.certified_radius(p, "linf"),
                               noise.certified_radius(p, "l1"), rtol=1e-14)


@pytest.mark.parametrize("d", [2, 5])
def test_cube_overlap_by_monte_carlo(d):
    # The theorem behind the l-inf radius: the cube and its shift by r along the diagonal overlap
    # in a fraction (1 - r/2)^d of the mass, so the radius at rho is where that equals 3/2 - rho.
    rho = 0.8
    r = get_noise("uniform", dim=d, scale=1.0).certified_radius(rho, "linf")
    gen = torch.Generator().manual_seed(11)
    n = 200_000
    x = torch.rand((n, d), generator=gen, dtype=torch.float64) * 2 - 1
    inside = ((x - r).abs() <= 1).all(dim=1).double().mean().item()
    # binomial standard error at n = 2e5 is below 1.2e-3; 5 of them
    assert inside == pytest.approx(1.5 - rho, abs=6e-3)


# -------------------------------------------------------------------------- uniform ball l2
def _ball_mass_between(x_low: mp.mpf, d: int) -> mp.mpf:
    """P[x_low <= (1 + X_1)/2 <= 1/2] for X uniform in the unit d-ball: the marginal density of
    (1 + X_1)/2 is the Beta((d+1)/2, (d+1)/2) density; integrated by 40-digit quadrature."""
    a = mp.mpf(d + 1) / 2
    log_norm = 2 * mp.loggamma(a) - mp.loggamma(2 * a)
    half = mp.mpf(1) / 2
    return mp.quad(lambda x: mp.exp((a - 1) * mp.log(x * (1 - x)) - log_norm), [x_low, half])


@pytest.mark.parametrize("d", DIMS)
def test_uniform_ball_l2_matches_overlap_quadrature(d):
    # R solves 2 P[X_1 > R/2] = 3/2 - rho, i.e. P[(1 - R/2)/2 <= (1 + X_1)/2 <= 1/2] = (rho - 1/2)/2.
    noise = get_noise("uniform_ball", dim=d, scale=1.0)
    got = noise.certified_radius(np.array(RHOS), "l2")
    for rho, value in zip(RHOS, got, strict=True):
        with mp.workdps(40):
            mass = _ball_mass_between((1 - mp.mpf(value) / 2) / 2, d)
            target = (mp.mpf(rho) - mp.mpf(0.5)) / 2
        # the mass is increasing in R: a radius that rounds down gives at most the target mass
        assert mass <= target * (1 + mp.mpf(1e-15)), (rho, d)
        assert abs(mass - target) / target < 1e-13, (rho, d, value)


@pytest.mark.parametrize("d", [2, 7, 100])
def test_uniform_ball_l2_matches_spec_form(d):
    # The spec's form 2 - 4 B^-1_{(d+1)/2,(d+1)/2}(3/4 - rho/2), evaluated with mpmath.
    noise = get_noise("uniform_ball", dim=d, scale=1.0)
    for rho in [0.55, 0.75, 0.9, 0.999]:
        with mp.workdps(40):
            a = mp.mpf(d + 1) / 2
            q = mp.mpf(3) / 4 - mp.mpf(rho) / 2
            x = mp.findroot(lambda t, a=a, q=q: mp.betainc(a, a, 0, t, regularized=True) - q,
                            (mp.mpf(0), mp.mpf(0.5)), solver="anderson")
        assert noise.certified_radius(rho, "l2") == pytest.approx(float(2 - 4 * x), rel=1e-13)


def test_uniform_ball_at_d1_is_the_interval():
    noise = get_noise("uniform_ball", dim=1, scale=1.0)
    p = np.array(RHOS)
    np.testing.assert_allclose(noise.certified_radius(p, "l2"), 2 * p - 1, rtol=1e-14)


@pytest.mark.parametrize("d", [2, 3])
def test_ball_overlap_by_monte_carlo(d):
    rho = 0.8
    noise = get_noise("uniform_ball", dim=d, scale=1.0)
    r = noise.certified_radius(rho, "l2")
    gen = torch.Generator().manual_seed(12)
    x = noise.sample(200_000, generator=gen, dtype=torch.float64)
    shift = torch.zeros(d, dtype=torch.float64)
    shift[0] = r
    inside = (torch.linalg.vector_norm(x - shift, dim=1) <= 1).double().mean().item()
    assert inside == pytest.approx(1.5 - rho, abs=6e-3)


# ------------------------------------------------------------------------------- samplers
def test_uniform_sampler_support_and_scale():
    noise = get_noise("uniform", dim=50, scale=2.5)
    x = noise.sample(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.abs().max().item() <= 2.5
    assert x.abs().max().item() > 2.49


def test_uniform_ball_sampler_support_and_scale():
    noise = get_noise("uniform_ball", dim=50, scale=2.5)
    x = noise.sample(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    norms = torch.linalg.vector_norm(x, dim=1)
    assert norms.max().item() <= 2.5 * (1 + 1e-12)
    # P[||x|| < 0.9 scale] = 0.9^50 = 0.5%: the norms concentrate near the boundary
    assert (norms < 0.9 * 2.5).double().mean().item() < 0.02
