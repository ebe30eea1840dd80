"""Confidence bounds and the PREDICT test, against their definitions computed independently."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import mpmath
import numpy as np
import pytest
from scipy.stats import binom

from smoothcert.stats import (
    clopper_pearson_interval,
    clopper_pearson_lower,
    lower_confidence_bound,
    top_two_p_value,
)

mpmath.mp.dps = 40


def _upper_tail(k: int, n: int, p) -> mpmath.mpf:
    """P[Binomial(n, p) >= k], summed exactly in mpmath."""
    return mpmath.fsum(mpmath.binomial(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _cp_lower_by_definition(k: int, n: int, alpha: float) -> float:
    """The p at which P[Binomial(n, p) >= k] = alpha (the tail increases with p): bisection in
    mpmath on the binomial sum itself, no beta functions involved."""
    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    for _ in range(120):
        mid = (lo + hi) / 2
        if _upper_tail(k, n, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)


@pytest.mark.parametrize("k,n,alpha", [(1, 1, 0.05), (7, 10, 0.05), (30, 50, 0.001),
                                       (99, 100, 0.001), (3, 200, 0.01), (200, 200, 0.1)])
def test_one_sided_lower_matches_binomial_tail_definition(k, n, alpha):
    expected = _cp_lower_by_definition(k, n, alpha)
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_all_successes_gives_alpha_to_the_one_over_n():
    # spec: n = 100000, n_A = n, alpha = 0.001 -> p_lower = alpha^(1/n) = 0.99993092
    expected = float(mpmath.exp(mpmath.log(mpmath.mpf("0.001")) / 100000))
    got = clopper_pearson_lower(100000, 100000, 0.001)
    assert got == pytest.approx(expected, rel=1e-13)
    assert abs(got - 0.99993092) < 1e-8


def test_zero_successes_gives_zero_and_scalars_give_floats():
    assert clopper_pearson_lower(0, 10, 0.05) == 0.0
    assert isinstance(clopper_pearson_lower(np.int64(4), 10, 0.05), float)


def test_vectorized_equals_elementwise():
    k = np.array([0, 1, 5, 9, 10])
    got = clopper_pearson_lower(k, 10, 0.01)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    want = [clopper_pearson_lower(int(v), 10, 0.01) for v in k]
    np.testing.assert_array_equal(got, want)
    # broadcasting against an array of n as well
    np.testing.assert_array_equal(clopper_pearson_lower(np.array([3, 3]), np.array([5, 8]), 0.1),
                                  [clopper_pearson_lower(3, 5, 0.1), clopper_pearson_lower(3, 8, 0.1)])


def test_exact_coverage_never_exceeds_alpha():
    """P[p_lower(K) > p] for K ~ Binomial(n, p), summed exactly over K with scipy's pmf, is at
    most alpha at every p, and close to alpha somewhere (the bound is not vacuous)."""
    n, alpha = 60, 0.05
    bounds = clopper_pearson_lower(np.arange(n + 1), n, alpha)
    worst = 0.0
    for p in np.linspace(0.01, 0.99, 197):
        failure = binom.pmf(np.arange(n + 1), n, p)[bounds > p].sum()
        assert failure <= alpha + 1e-12, (p, failure)
        worst = max(worst, failure)
    assert worst > 0.6 * alpha


def test_two_sided_is_one_sided_at_half_alpha():
    k, n, alpha = 37, 80, 0.01
    lower, upper = clopper_pearson_interval(k, n, alpha)
    assert lower == pytest.approx(_cp_lower_by_definition(k, n, alpha / 2), rel=1e-10)
    # the upper end solves P[Binomial(n, p) <= k] = alpha / 2, i.e. the lower bound on n - k
    assert upper == pytest.approx(1 - _cp_lower_by_definition(n - k, n, alpha / 2), rel=1e-10)
    assert lower_confidence_bound(k, n, alpha, "two-sided") == lower
    assert lower_confidence_bound(k, n, alpha) == clopper_pearson_lower(k, n, alpha)
    assert lower < clopper_pearson_lower(k, n, alpha)


@pytest.mark.parametrize("n_a,n,error", [
    (5.0, 10, TypeError), (5, 10.0, TypeError), (True, 10, TypeError),
    (np.array([1.0, 2.0]), 10, TypeError), (-1, 10, ValueError), (11, 10, ValueError),
    (0, 0, ValueError), (np.array([3, 12]), 10, ValueError),
])
def test_rejects_non_counts(n_a, n, error):
    with pytest.raises(error):
        clopper_pearson_lower(n_a, n, 0.05)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_rejects_alpha_outside_open_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        clopper_pearson_lower(5, 10, alpha)


def test_unknown_bound_name():
    with pytest.raises(ValueError, match="one-sided"):
        lower_confidence_bound(5, 10, 0.05, "wald")


def _two_sided_half_binomial_p_value(k: int, n: int) -> float:
    """Exact two-sided p-value of Binomial(n, 1/2): outcomes at least as unlikely as k."""
    pmf = [Fraction(comb(n, i), 2**n) for i in range(n + 1)]
    return float(min(Fraction(1), sum(q for q in pmf if q <= pmf[k])))


@pytest.mark.parametrize("top,second", [(60, 40), (50, 50), (1000, 0), (9, 1), (520, 480)])
def test_top_two_p_value_matches_exact_binomial_test(top, second):
    want = _two_sided_half_binomial_p_value(top, top + second)
    assert top_two_p_value(top, second) == pytest.approx(want, rel=1e-9)


def test_top_two_p_value_edge_cases():
    assert top_two_p_value(0, 0) == 1.0
    assert top_two_p_value(50, 50) == 1.0
    with pytest.raises(TypeError):
        top_two_p_value(5.0, 3)
