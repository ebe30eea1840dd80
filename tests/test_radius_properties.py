"""Properties of every registered family's certified radius: non-decreasing in p_lower and never
above an independent reference, on a grid that reaches p - 1/2 = 2^-50 and p = 1.

Families are taken from ``list_noises()`` and treated generically (deterministic smoothing
transformations are skipped: they have no density to shift). The references are the closed
forms of the spec (Section 3.1) evaluated with mpmath at 40 digits, written here from the
formulas, not from the library; a family without one is checked for monotonicity only.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from smoothcert import get_noise, list_noises

P_GRID = np.array(sorted(
    [0.5 + v for v in (2.0 ** -50, 2.0 ** -49, 2.0 ** -45, 2.0 ** -40, 1e-12, 1e-9, 1e-6, 1e-3)]
    + [0.500000000000002, 0.5000000000000021, 0.51, 0.6, 0.75, 0.9, 0.99, 0.999, 0.99993,
       1 - 1e-8, 1 - 1e-10, 1 - 1e-12, 1 - 2.0 ** -50, 1 - 2.0 ** -52, 1 - 2.0 ** -53, 1.0]))


def _half_excess(p):
    return mp.mpf(p) - mp.mpf(1) / 2


def _ref_gaussian(noise, p):
    return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)


def _ref_laplace_l1(noise, p):
    return mp.inf if p == 1 else -mp.log(2 * (1 - mp.mpf(p)))


def _ref_uniform_linf(noise, p):
    return 2 * (1 - (mp.mpf(3) / 2 - mp.mpf(p)) ** (mp.mpf(1) / noise.dim))


def _ref_uniform_ball_upper(noise, p):
    """An upper bound on the exact radius: 2 - 4 x with x the lower end of a bisection bracket
    of B^-1 (I_x is increasing), 120 halvings wide (1e-36)."""
    c = (mp.mpf(noise.dim) + 1) / 2
    target = mp.mpf(3) / 4 - mp.mpf(p) / 2
    lo, hi = mp.mpf(0), mp.mpf(1) / 2
    for _ in range(120):
        mid = (lo + hi) / 2
        if mp.betainc(c, c, 0, mid, regularized=True) < target:
            lo = mid
        else:
            hi = mid
    return 2 - 4 * lo


def _ref_exp_inf_l1(noise, p):
    d, k, j = noise.dim, mp.mpf(noise.k), mp.mpf(noise.j)
    if d == 1 or d - j - 1 <= 0:
        return mp.mpf(0)
    gamma = mp.mpf(d) / (d - 1) * mp.gamma((d - j) / k) / mp.gamma((d - j - 1) / k)
    return 2 * gamma * _half_excess(p)


def _ref_pow_inf_l1(noise, p):
    d, a = noise.dim, mp.mpf(noise.a)
    return 2 * d / (a - d) * _half_excess(p)


def _ref_exp_p_l1(noise, p):
    if noise.p != 2:
        return None
    # G_{1/2}(z) = erf(sqrt(z)), so [G^-1_{1/2}(2p - 1)]^(1/2) = erfinv(2p - 1)
    return mp.erfinv(2 * mp.mpf(p) - 1)


def _ref_pareto_l1(noise, p):
    a = mp.mpf(noise.a)
    x = 2 * mp.mpf(p) - 1
    if x == 1:
        return mp.inf
    b = 1 + 1 / a
    return mp.quad(lambda u: 1 / (1 - u ** b), [0, x / 2, x]) / a


def _reference(name: str, norm: str, noise):
    """The reference radius at scale 1 as a function of p, or None."""
    shape = noise.shape_params
    table = {
        ("gaussian", "l2"): _ref_gaussian,
        ("laplace", "l1"): _ref_laplace_l1,
        ("uniform", "l1"): lambda n, p: 2 * _half_excess(p),
        ("uniform", "linf"): _ref_uniform_linf,
        ("uniform_ball", "l2"): _ref_uniform_ball_upper,
        ("exp_inf", "l1"): _ref_exp_inf_l1,
        ("pow_inf", "l1"): _ref_pow_inf_l1,
        ("exp_p", "l1"): _ref_exp_p_l1,
        ("pareto", "l1"): _ref_pareto_l1,
    }
    if name == "exp2" and shape.get("k") == 2.0 and shape.get("j") == 0.0:
        return lambda n, p: _ref_gaussian(n, p) / mp.sqrt(2)
    if name in ("exp1", "exp_inf") and shape.get("k") == 1.0 and shape.get("j", 0) == 0 and (
            norm == ("l1" if name == "exp1" else "linf")):
        return _ref_laplace_l1
    return table.get((name, norm))


def _families():
    out = []
    for name in list_noises():
        try:
            probe = get_noise(name, dim=3, scale=1.0)
        except (TypeError, ValueError):
            continue
        if getattr(probe, "deterministic", False):
            continue
        out.append(name)
    return out


def _check(name: str, dim: int, shape: dict) -> bool:
    """Checks one noise; False if it is not defined there."""
    try:
        noise = get_noise(name, dim=dim, scale=1.0, **shape)
    except ValueError:
        return False
    for norm in noise.direct_norms:
        r = np.asarray(noise.certified_radius(P_GRID, norm.value))
        assert np.all(r >= 0) and not np.any(np.isnan(r)), (name, norm, r)
        assert np.all(np.diff(r) >= 0), (name, dim, norm.value,
                                         P_GRID[1:][np.diff(r) < 0], r)
        ref = _reference(name, norm.value, noise)
        if ref is None:
            continue
        with mp.workdps(40):
            for p, got in zip(P_GRID, r, strict=True):
                want = ref(noise, float(p))
                if want is None:
                    break
                assert mp.mpf(got) <= want, (name, dim, norm.value, float(p), got, want)
    return True


@pytest.mark.parametrize("name", _families())
@pytest.mark.parametrize("dim", [2])
def test_monotone_and_below_reference(name, dim):
    if not _check(name, dim, {}):
        pytest.skip(f"{name} is not defined at dim={dim}")


SHAPES = {
    "exp2": [{"k": 1.0, "j": 0.0}, {"k": 2.0, "j": 1.0}, {"k": 0.5, "j": 0.0}],
    "exp1": [{"k": 2.0}, {"k": 0.5}],
    "exp_inf": [{"k": 2.0, "j": 0.0}, {"k": 0.5, "j": 1.0}],
    "exp_p": [{"p": 1.0}, {"p": 0.5}, {"p": 3.0}],
    "pareto": [{"a": 2.5}, {"a": 10.0}],
    "pow2": [{"k": 1.0}, {"k": 2.0, "a": 20.0}],
    "pow_inf": [{"a": 30.0}],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", _families())
@pytest.mark.parametrize("dim", [2, 3, 10, 100])
def test_monotone_and_below_reference_broad(name, dim):
    _check(name, dim, {})
    for shape in SHAPES.get(name, []):
        _check(name, dim, shape)
