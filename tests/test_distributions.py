"""The samplers draw from the distributions of the spec (SPEC.md section 2).

Kolmogorov-Smirnov tests (scipy.stats.kstest) against laws written here independently of the
library, each from the density in the spec's table: the radial law of ||delta|| in the norm of the
spec's sampling column, per-coordinate laws for the product families, and the direction samplers.
Every test uses a fixed seed and rejects at a KS p-value below 1e-3; a correct sampler passes
with probability 0.999 for a random seed, and deterministically for the fixed one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from smoothcert import get_noise, list_noises
from smoothcert.noises import samplers

P_MIN = 1e-3
DTYPES = [torch.float32, torch.float64]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _require(name: str) -> None:
    if name not in list_noises():
        pytest.skip(f"noise family {name!r} is not registered")


def _a(q: dict, d: int) -> float:
    # pow_inf and pow2 take a=None to mean d + 10
    return float(d + 10 if q["a"] is None else q["a"])


def _pvalue(sample: np.ndarray, dist) -> float:
    return float(stats.kstest(sample, dist.cdf).pvalue)


# ---------------------------------------------------------------------------- radial laws
# Each case: family, shape overrides, the norm N of the sampling column, the power m, and the law
# of (||delta||_N / scale)^m at scale 1 as a function of (d, shape parameters). The power turns
# the radial laws of the spec into standard ones: for density f(||x||) the radius has density
# proportional to r^(d-1-j) f(r) (the sphere of each norm scales as r^(d-1)).
RADIAL = [
    ("gaussian", {}, 2, lambda q: 2, lambda d, q: stats.chi2(df=d)),
    ("uniform_ball", {}, 2, lambda q: 1, lambda d, q: stats.beta(d, 1)),
    ("uniform", {}, math.inf, lambda q: 1, lambda d, q: stats.beta(d, 1)),
    ("laplace", {}, 1, lambda q: 1, lambda d, q: stats.gamma(d)),
    ("exp2", {}, 2, lambda q: q["k"], lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("exp2", {"k": 1.0}, 2, lambda q: q["k"], lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("exp2", {"k": 2.0, "j": 3}, 2, lambda q: q["k"],
     lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("exp2", {"k": 0.5}, 2, lambda q: q["k"], lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("pow2", {}, 2, lambda q: q["k"],
     lambda d, q: stats.betaprime(d / q["k"], _a(q, d) - d / q["k"])),
    ("pow2", {"k": 1.0}, 2, lambda q: q["k"],
     lambda d, q: stats.betaprime(d / q["k"], _a(q, d) - d / q["k"])),
    ("exp_inf", {}, math.inf, lambda q: q["k"],
     lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("exp_inf", {"k": 2.0, "j": 1}, math.inf, lambda q: q["k"],
     lambda d, q: stats.gamma((d - q["j"]) / q["k"])),
    ("pow_inf", {}, math.inf, lambda q: 1, lambda d, q: stats.betaprime(d, _a(q, d) - d)),
    ("exp1", {}, 1, lambda q: q["k"], lambda d, q: stats.gamma(d / q["k"])),
    ("exp1", {"k": 0.5}, 1, lambda q: q["k"], lambda d, q: stats.gamma(d / q["k"])),
    ("exp1", {"k": 3.0}, 1, lambda q: q["k"], lambda d, q: stats.gamma(d / q["k"])),
]


def _case_id(case) -> str:
    name, shape = case[0], case[1]
    return name + "".join(f"-{k}{v}" for k, v in shape.items())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("dim", [7, 784])
@pytest.mark.parametrize("case", RADIAL, ids=[_case_id(c) for c in RADIAL])
def test_radial_law(case, dim, dtype):
    name, shape, order, power, law = case
    _require(name)
    noise = get_noise(name, dim=dim, scale=1.7, **shape)
    q = noise.shape_params
    n = 4000 if dim == 7 else 1500
    delta = noise.sample(n, generator=_gen(dim), dtype=dtype).double()
    radius = torch.linalg.vector_norm(delta, ord=order, dim=1).numpy() / noise.scale
    p = _pvalue(radius ** power(q), law(dim, q))
    assert p > P_MIN, f"{name} {shape} d={dim}: KS p-value {p:.2e}"


# ----------------------------------------------------------------- per-coordinate laws
# (family, shape overrides, law of delta_i / scale at scale 1)
COORDINATE = [
    ("gaussian", {}, lambda q: stats.norm()),
    ("uniform", {}, lambda q: stats.uniform(-1, 2)),
    ("laplace", {}, lambda q: stats.laplace()),
    ("exp_p", {}, lambda q: stats.gennorm(q["p"])),
    ("exp_p", {"p": 0.5}, lambda q: stats.gennorm(q["p"])),
    ("exp_p", {"p": 1.0}, lambda q: stats.gennorm(q["p"])),
    ("exp_p", {"p": 4.0}, lambda q: stats.gennorm(q["p"])),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", COORDINATE, ids=[_case_id(c) for c in COORDINATE])
def test_coordinate_law(case, dtype):
    name, shape, law = case
    _require(name)
    noise = get_noise(name, dim=16, scale=0.8, **shape)
    delta = noise.sample(1000, generator=_gen(3), dtype=dtype).double().numpy() / noise.scale
    p = _pvalue(delta.ravel(), law(noise.shape_params))
    assert p > P_MIN, f"{name} {shape}: KS p-value {p:.2e}"
    # coordinates are independent: the correlation of two coordinates is within 5 standard
    # errors (1/sqrt(n)) of 0
    assert abs(np.corrcoef(delta[:, 0], delta[:, 1])[0, 1]) < 5 / math.sqrt(1000)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("a", [None, 2.5, 5.0])
def test_pareto_coordinates_are_lomax_with_random_sign(a, dtype):
    _require("pareto")
    shape = {} if a is None else {"a": a}
    noise = get_noise("pareto", dim=16, scale=0.8, **shape)
    delta = noise.sample(1000, generator=_gen(4), dtype=dtype).double().numpy().ravel()
    delta /= noise.scale
    p = _pvalue(np.abs(delta), stats.lomax(noise.shape_params["a"]))
    assert p > P_MIN, f"pareto a={a}: KS p-value {p:.2e} for |delta_i|"
    positive = int((delta > 0).sum())
    assert stats.binomtest(positive, delta.size).pvalue > P_MIN


# -------------------------------------------------------------------------- directions
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("dim", [1, 2, 10, 300])
def test_cube_surface(dim, dtype):
    n = 4000
    u = samplers.cube_surface(n, dim, generator=_gen(5), dtype=dtype).double()
    assert torch.all(u.abs().amax(dim=1) == 1.0)
    sq = (u ** 2).sum(dim=1).numpy()
    expected = 1 + (dim - 1) / 3
    assert abs(sq.mean() - expected) <= 5 * sq.std(ddof=1) / math.sqrt(n) + 1e-12
    if dim > 1:
        # the face is uniform over the 2*dim faces; the other coordinates are Unif[-1, 1]
        on_face = u.abs() == 1.0
        face = on_face.double().argmax(dim=1).numpy()
        counts = np.bincount(face, minlength=dim)
        assert stats.chisquare(counts).pvalue > P_MIN
        signs = u[torch.arange(n), torch.from_numpy(face)].numpy()
        assert stats.binomtest(int((signs > 0).sum()), n).pvalue > P_MIN
        free = u[~on_face].numpy()
        assert _pvalue(free, stats.uniform(-1, 2)) > P_MIN


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("dim", [1, 2, 10, 300])
def test_l1_sphere(dim, dtype):
    n = 4000
    u = samplers.l1_sphere(n, dim, generator=_gen(6), dtype=dtype).double()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(u.abs().sum(dim=1).numpy(), 1.0, atol=tol)
    sq = (u ** 2).sum(dim=1).numpy()
    expected = 2 / (dim + 1)
    assert abs(sq.mean() - expected) <= 5 * sq.std(ddof=1) / math.sqrt(n) + tol
    if dim > 1:
        # the Dirichlet(1, ..., 1) marginal: |u_1| ~ Beta(1, d - 1)
        assert _pvalue(u[:, 0].abs().numpy(), stats.beta(1, dim - 1)) > P_MIN
        assert stats.binomtest(int((u[:, 0] > 0).sum()), n).pvalue > P_MIN


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("dim", [2, 3, 10, 300])
def test_l2_sphere(dim, dtype):
    n = 4000
    u = samplers.l2_sphere(n, dim, generator=_gen(7), dtype=dtype).double()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(torch.linalg.vector_norm(u, dim=1).numpy(), 1.0, atol=tol)
    # a uniform point on the sphere: (1 + u_1) / 2 ~ Beta((d-1)/2, (d-1)/2)
    b = (dim - 1) / 2
    assert _pvalue((1 + u[:, 0].numpy()) / 2, stats.beta(b, b)) > P_MIN


# ------------------------------------------------------------------------ gamma sampler
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [0.05, 0.3, 0.5, 1.0, 2.5, 49.0, 51.0, 1536.0])
def test_standard_gamma(shape, dtype):
    x = samplers.standard_gamma(shape, 20000, generator=_gen(8), dtype=dtype)
    assert x.dtype == dtype and x.shape == (20000,)
    if dtype == torch.float32 and shape < 0.3:
        # in float32, Gamma(0.05) falls below the smallest subnormal with probability ~0.5%
        assert bool(torch.all(x >= 0))
    else:
        assert bool(torch.all(x > 0))
    p = _pvalue(x.double().numpy(), stats.gamma(shape))
    assert p > P_MIN, f"Gamma({shape}) KS p-value {p:.2e}"


def test_standard_gamma_reproducible_and_rejects_bad_shape():
    a = samplers.standard_gamma(0.7, 100, generator=_gen(9))
    b = samplers.standard_gamma(0.7, 100, generator=_gen(9))
    assert torch.equal(a, b)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="gamma shape"):
            samplers.standard_gamma(bad, 10)


@pytest.mark.parametrize("a,b", [(3.0, 12.0), (784.0, 10.0), (0.5, 4.0)])
def test_beta_prime(a, b):
    x = samplers.beta_prime(a, b, 20000, generator=_gen(10), dtype=torch.float64)
    p = _pvalue(x.numpy(), stats.betaprime(a, b))
    assert p > P_MIN, f"BetaPrime({a}, {b}) KS p-value {p:.2e}"


@pytest.mark.parametrize("size", [(100, 50), 7, (3, 0), (2, 3, 63)])
def test_random_signs(size):
    s = samplers.random_signs(size, generator=_gen(11), dtype=torch.float64)
    shape = (size,) if isinstance(size, int) else size
    assert s.shape == shape and s.dtype == torch.float64
    assert torch.all(s.abs() == 1)
    assert torch.equal(s, samplers.random_signs(size, generator=_gen(11), dtype=torch.float64))
    if s.numel() > 1000:
        assert stats.binomtest(int((s > 0).sum()), s.numel()).pvalue > P_MIN
        # neighbouring signs are independent (the bits come from shared words)
        flat = s.ravel().numpy()
        assert stats.binomtest(int((flat[1:] == flat[:-1]).sum()), flat.size - 1).pvalue > P_MIN


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_standard_exponential(dtype):
    x = samplers.standard_exponential((200, 100), generator=_gen(12), dtype=dtype)
    assert x.dtype == dtype and x.shape == (200, 100) and bool(torch.all(x >= 0))
    assert _pvalue(x.double().numpy().ravel(), stats.expon()) > P_MIN


def test_standard_exponential_tail_is_exponential():
    # Above 10 ln 2 the float32 draws come from float64 (memorylessness): the excess over
    # 10 ln 2 is again Exp(1), resolved far beyond the float32 uniform's 16.6.
    x = samplers.standard_exponential(1 << 22, generator=_gen(13)).double().numpy()
    start = 10 * math.log(2)
    excess = x[x >= start] - start
    assert stats.binomtest(excess.size, x.size, 2.0 ** -10).pvalue > P_MIN
    assert _pvalue(excess, stats.expon()) > P_MIN


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_standard_laplace(dtype):
    x = samplers.standard_laplace((200, 100), generator=_gen(14), dtype=dtype).double().numpy()
    assert _pvalue(x.ravel(), stats.laplace()) > P_MIN
    # the sign and the magnitude are independent: |x| has the same law on both sides
    flat = x.ravel()
    assert stats.ks_2samp(np.abs(flat[flat > 0]), np.abs(flat[flat < 0])).pvalue > P_MIN
