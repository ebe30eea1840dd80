"""Certified radii are sound: never larger than the distance to a decision boundary that the
smoothed classifier actually crosses.

The half-space classifier f(x) = 1{x_1 <= b} smoothed at x = 0 has p_A = F(b), the marginal CDF
of delta_1. Shifting x by t e_1 gives F(b - t), which falls to 1/2 at t = b (every family here is
symmetric), so no certificate may exceed b in any lp norm (e_1 has unit lp norm for all p). For
Gaussian/l2, Laplace/l1 and Uniform/l1 the half-space is the worst case and the radius is exactly
b; the same holds for the 1-D quantile certificates (ExpP, p >= 1, l1), for Exp1(k=1) (which is
Laplace) and Exp2(k=2, j=0) (a Gaussian).

The marginal CDF F is computed here, independently of the library, from the sampling column of
the spec: closed forms where they exist, otherwise a 1-D integral over the radial law in quantile
space (scipy.integrate.quad, error estimate below 1e-9); a Monte Carlo test checks these
formulas against the samplers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from scipy.special import ndtr

from smoothcert import get_noise, list_noises
from smoothcert.norms import Norm

# b in units of sigma
OFFSETS = [0.05, 0.4, 1.0, 1.5]


def _quad(fn: Callable[[float], float], lo: float, hi: float) -> float:
    if hi <= lo:
        return 0.0
    value, err = integrate.quad(fn, lo, hi, epsabs=1e-11, epsrel=1e-9, limit=200)
    assert err < 1e-9, f"quadrature error estimate {err:.1e}"
    return value


def _a(q: dict, d: int) -> float:
    return float(d + 10 if q["a"] is None else q["a"])


def _radial(name: str, q: dict, d: int):
    """The law of the radius r (in the sampling norm) at scale 1, as (cdf, sf, ppf, isf), from
    the spec's sampling column: r = Z^(1/k) with Z ~ Gamma or BetaPrime. Plain scipy.special
    functions keep the quadratures fast; each tail is computed directly."""
    if name in ("exp2", "exp_inf", "exp1"):
        shape = (d - q["j"]) / q["k"] if name != "exp1" else d / q["k"]
        k = q["k"]
        return (lambda r: special.gammainc(shape, r ** k),
                lambda r: special.gammaincc(shape, r ** k),
                lambda t: special.gammaincinv(shape, t) ** (1.0 / k),
                lambda t: special.gammainccinv(shape, t) ** (1.0 / k))
    if name == "pow2":
        alpha, beta, k = d / q["k"], _a(q, d) - d / q["k"], q["k"]
    elif name == "pow_inf":
        alpha, beta, k = d, _a(q, d) - d, 1.0
    else:
        raise KeyError(name)

    # Z ~ BetaPrime(alpha, beta) exactly when Z / (1 + Z) ~ Beta(alpha, beta), and then
    # 1 / (1 + Z) ~ Beta(beta, alpha)
    def ppf(t):
        x = special.betaincinv(alpha, beta, t)
        return (x / (1.0 - x)) ** (1.0 / k)

    def isf(t):
        return (1.0 / special.betaincinv(beta, alpha, t) - 1.0) ** (1.0 / k)

    return (lambda r: special.betainc(alpha, beta, r ** k / (1.0 + r ** k)),
            lambda r: special.betainc(beta, alpha, 1.0 / (1.0 + r ** k)),
            ppf, isf)


def _upper_mean(fn: Callable[[float], float], b: float, law) -> float:
    """E[fn(r); r > b] for 0 <= fn <= 1: the integral of fn over the quantiles of r above b.

    The lower half of the quantiles is integrated in v = ln u of the lower-tail probability u
    (r grows like a power of u there); the upper half in s = -ln t of the upper-tail probability
    t, in which the integrand decays exponentially also for heavy tails (the part beyond
    t = 2^-1 e^-40 is below 3e-18 and left out).
    """
    cdf, sf, ppf, isf = law
    total = 0.0
    if cdf(b) < 0.5:
        # below u = 1e-300 (where cdf(b) may underflow) lies a mass under 1e-300
        start = math.log(max(float(cdf(b)), 1e-300))
        total += _quad(lambda v: fn(ppf(math.exp(v))) * math.exp(v), start, -math.log(2.0))
    s_start = max(math.log(2.0), -math.log(float(sf(b))))
    return total + _quad(lambda s: fn(isf(math.exp(-s))) * math.exp(-s), s_start, s_start + 40)


def _spherical_cdf(name: str, q: dict, d: int, b: float) -> float:
    # delta_1 = r u_1 with (1 + u_1)/2 ~ Beta((d-1)/2, (d-1)/2) independent of r
    law = _radial(name, q, d)
    m = (d - 1) / 2
    return float(law[0](b)) + _upper_mean(lambda r: special.betainc(m, m, (1 + b / r) / 2),
                                          b, law)


def _cube_surface_cdf(name: str, q: dict, d: int, b: float) -> float:
    # delta_1 = r u_1: u_1 = +-1 with probability 1/d, else Unif[-1, 1]
    law = _radial(name, q, d)
    below = float(law[0](b))
    mean_min = below + _upper_mean(lambda r: b / r, b, law)  # E[min(1, b / r)]
    return 0.5 + below / (2 * d) + (d - 1) / (2 * d) * mean_min


def _l1_sphere_cdf(name: str, q: dict, d: int, b: float) -> float:
    # delta_1 = s r D with D ~ Beta(1, d - 1) (quantile 1 - (1 - t)^(1/(d-1))), s a random sign
    cdf = _radial(name, q, d)[0]
    if d == 1:
        return 0.5 + 0.5 * float(cdf(b))
    return 0.5 + 0.5 * _quad(lambda t: cdf(b / -math.expm1(math.log1p(-t) / (d - 1))), 0.0, 1.0)


#: P[delta_1 <= b] at scale 1 for b >= 0: (family, dim, shape params, b) -> probability
MARGINAL: dict[str, Callable[[dict, int, float], float]] = {
    "gaussian": lambda q, d, b: float(ndtr(b)),
    "laplace": lambda q, d, b: 1 - 0.5 * math.exp(-b),
    "uniform": lambda q, d, b: min(1.0, (1 + b) / 2),
    "uniform_ball": lambda q, d, b: float(stats.beta((d + 1) / 2, (d + 1) / 2).cdf(
        (1 + min(b, 1.0)) / 2)),
    "exp_p": lambda q, d, b: float(stats.gennorm(q["p"]).cdf(b)),
    "pareto": lambda q, d, b: 0.5 + 0.5 * float(stats.lomax(q["a"]).cdf(b)),
    "exp2": lambda q, d, b: _spherical_cdf("exp2", q, d, b),
    "pow2": lambda q, d, b: _spherical_cdf("pow2", q, d, b),
    "exp_inf": lambda q, d, b: _cube_surface_cdf("exp_inf", q, d, b),
    "pow_inf": lambda q, d, b: _cube_surface_cdf("pow_inf", q, d, b),
    "exp1": lambda q, d, b: _l1_sphere_cdf("exp1", q, d, b),
}

# (family, shape overrides) combinations to test; families not registered are skipped
CASES = [
    ("gaussian", {}), ("laplace", {}), ("uniform", {}), ("uniform_ball", {}),
    ("exp_p", {}), ("exp_p", {"p": 1.0}), ("exp_p", {"p": 0.5}), ("exp_p", {"p": 4.0}),
    ("pareto", {}), ("pareto", {"a": 6.0}),
    ("exp2", {}), ("exp2", {"k": 1.0}), ("exp2", {"k": 2.0, "j": 2}),
    ("pow2", {}), ("pow2", {"k": 1.0}),
    ("exp_inf", {}), ("exp_inf", {"k": 2.0}), ("exp_inf", {"k": 1.0, "j": 2}),
    ("pow_inf", {}),
    ("exp1", {}), ("exp1", {"k": 2.0}), ("exp1", {"k": 0.5}),
]


def _tight(name: str, q: dict, norm: Norm) -> float | None:
    """Relative tolerance where the certificate is exact for the half-space, else None."""
    if (name, norm) in (("gaussian", Norm.L2), ("laplace", Norm.L1), ("uniform", Norm.L1)):
        return 1e-9
    # closed forms or tables (tables promise 1e-6 relative, rounding down)
    if name == "exp_p" and norm is Norm.L1 and q["p"] >= 1:
        return 2e-6
    if name == "exp1" and norm is Norm.L1 and q["k"] == 1:
        return 2e-6
    if name == "exp2" and norm is Norm.L2 and q["k"] == 2 and q["j"] == 0:
        return 2e-6
    return None


def _case_id(case) -> str:
    return case[0] + "".join(f"-{k}{v}" for k, v in case[1].items())


def _make(name: str, shape: dict, dim: int):
    if name not in list_noises():
        pytest.skip(f"noise family {name!r} is not registered")
    return get_noise(name, dim=dim, sigma=1.0, **shape)


# Every case in d = 3; the default shapes also in d = 784 (other shapes there would only add
# table builds). The dimensions are those of the contract suite, whose tables are reused.
HALF_SPACE = [(case, 3) for case in CASES] + [(case, 784) for case in CASES if not case[1]]


@pytest.mark.parametrize("case,dim", HALF_SPACE,
                         ids=[f"{_case_id(c)}-{d}" for c, d in HALF_SPACE])
def test_half_space_bounds_every_norm(case, dim):
    name, shape = case
    noise = _make(name, shape, dim)
    q = noise.shape_params
    for offset in OFFSETS:
        b = offset * noise.sigma
        p_a = MARGINAL[name](q, dim, b / noise.scale)
        assert 0.5 < p_a <= 1.0
        for norm in Norm:
            radius = noise.certified_radius(p_a, norm, convert=True)
            # p_a carries a quadrature error below 1e-9: allow 1e-7 relative
            assert radius <= b * (1 + 1e-7), (name, q, norm.value, b, p_a, radius)
            rel = _tight(name, q, norm) if p_a < 1.0 else None
            if rel is not None:
                assert radius >= b * (1 - rel), (name, q, norm.value, b, p_a, radius)


@pytest.mark.parametrize("b", [0.05, 0.3, 1.0])
def test_exact_half_space_radii(b):
    # The three closed forms of the spec give exactly the distance to the boundary.
    for name, norm in (("gaussian", "l2"), ("laplace", "l1"), ("uniform", "l1")):
        if name not in list_noises():
            continue
        noise = get_noise(name, dim=10, sigma=0.8)
        p_a = MARGINAL[name]({}, 10, b / noise.scale)
        assert abs(noise.certified_radius(p_a, norm) - b) <= 1e-9, name


@pytest.mark.parametrize("dim", [3, 7])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_marginal_cdf_matches_the_sampler(case, dim):
    # Checks the formulas above (and the samplers) against each other: |P_hat - F(b)| is below
    # 5 binomial standard errors at n = 100,000 for each b.
    name, shape = case
    noise = _make(name, shape, dim)
    q = noise.shape_params
    n = 100_000
    gen = torch.Generator().manual_seed(21)
    first = noise.sample(n, generator=gen, dtype=torch.float64)[:, 0].numpy() / noise.scale
    for offset in OFFSETS:
        b = offset * noise.sigma / noise.scale
        p = MARGINAL[name](q, dim, b)
        se = math.sqrt(max(p * (1 - p), 1e-6) / n)
        assert abs((first <= b).mean() - p) <= 5 * se + 1e-12, (name, q, dim, b)


# ----------------------------------------------------------- Monte Carlo, end to end, low d
def _worst_shift(w: np.ndarray, radius: float, norm: Norm) -> np.ndarray:
    """The v with ||v||_norm <= radius that maximizes <w, v> (moves furthest toward the boundary
    <w, x> = b): the dual-norm maximizer."""
    if norm is Norm.L2:
        return radius * w / np.linalg.norm(w)
    if norm is Norm.LINF:
        return radius * np.sign(w)
    v = np.zeros_like(w)
    i = int(np.argmax(np.abs(w)))
    v[i] = radius * np.sign(w[i])
    return v


def _clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    return 0.0 if k == 0 else float(stats.beta.ppf(alpha, k, n - k + 1))


@pytest.mark.parametrize("dim", [3, pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", [n for n in list_noises()
                                  if get_noise(n, dim=3, sigma=1.0).additive])
def test_monte_carlo_soundness(name, dim):
    """The smoothed half-space classifier g keeps its label at points inside the certificate.

    At x = 0, p_lower is the one-sided Clopper-Pearson bound (alpha = 1e-3) from n = 50,000 draws;
    for each direct norm and each boundary normal w (an axis, the diagonal, a fixed generic
    direction), x is moved by 0.999 R toward the boundary in the worst direction for that norm,
    and the top-class probability at the new point, estimated from n fresh draws, must stay at or
    above 1/2 up to 5 standard errors (0.011).
    """
    noise = get_noise(name, dim=dim, sigma=1.0)
    gen = torch.Generator().manual_seed(dim)
    n = 50_000
    normals = [np.eye(dim)[0], np.ones(dim) / math.sqrt(dim),
               np.array([0.8, -0.5, 0.33][:dim])]
    for w in normals:
        w = w / np.linalg.norm(w)
        b = 0.7 * noise.sigma
        delta = noise.sample(n, generator=gen, dtype=torch.float64).numpy()
        n_a = int((delta @ w <= b).sum())
        p_lower = _clopper_pearson_lower(n_a, n, 1e-3)
        fresh = noise.sample(n, generator=gen, dtype=torch.float64).numpy()
        for norm in noise.direct_norms:
            radius = noise.certified_radius(p_lower, norm)
            v = _worst_shift(w, 0.999 * radius, norm)
            p_hat = float(((v + fresh) @ w <= b).mean())
            assert p_hat >= 0.5 - 5 * math.sqrt(0.25 / n), (name, norm.value, w, radius)
