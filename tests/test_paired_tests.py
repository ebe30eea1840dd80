"""The paired tests of the experiment reports: exact McNemar and Holm's adjustment, against
values computed by hand from their definitions."""

import math
from math import comb

import numpy as np
import pytest

from smoothcert.stats import (
    holm_adjust,
    mcnemar_exact,
    paired_difference_interval,
    paired_difference_interval_counts,
)


def test_mcnemar_counts_and_one_sided_p_value_by_hand():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=bool)
    b = np.array([0, 0, 0, 1, 1, 0, 1, 0], dtype=bool)
    only_a, only_b, p = mcnemar_exact(a, b, alternative="greater")
    assert (only_a, only_b) == (3, 1)
    # P[Bin(4, 1/2) >= 3] = (4 + 1) / 16
    assert p == pytest.approx(5 / 16, rel=1e-12)


def test_mcnemar_two_sided_by_hand_and_no_discordant_pairs():
    a = np.array([1] * 9 + [0] * 1 + [1] * 5, dtype=bool)
    b = np.array([0] * 9 + [1] * 1 + [1] * 5, dtype=bool)
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (9, 1)
    # symmetric binomial: 2 * P[Bin(10, 1/2) >= 9] = 2 * 11 / 1024
    assert p == pytest.approx(2 * (comb(10, 9) + comb(10, 10)) / 1024, rel=1e-12)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        mcnemar_exact(a, a[:-1])


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04, 0.3 -> 4*0.01, 3*0.02, max(prev, 2*0.04), max(prev, 1*0.3)
    assert holm_adjust([0.04, 0.01, 0.3, 0.02]) == pytest.approx([0.08, 0.04, 0.3, 0.06])
    assert holm_adjust([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        holm_adjust([0.1, 1.5])


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval in closed form (independent of scipy's)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_paired_difference_interval_by_hand():
    # 2 x 2 table: both 10, a only 15, b only 5, neither 20 (n = 50)
    a = np.array([1] * 10 + [1] * 15 + [0] * 5 + [0] * 20, dtype=bool)
    b = np.array([1] * 10 + [0] * 15 + [1] * 5 + [0] * 20, dtype=bool)
    z = 1.959963984540054
    (l1, u1), (l2, u2) = _wilson(25, 50, z), _wilson(15, 50, z)
    phi = (10 * 20 - 15 * 5) / math.sqrt(25 * 25 * 15 * 35)
    low = 0.2 - math.sqrt((0.5 - l1) ** 2 - 2 * phi * (0.5 - l1) * (u2 - 0.3) + (u2 - 0.3) ** 2)
    high = 0.2 + math.sqrt((u1 - 0.5) ** 2 - 2 * phi * (u1 - 0.5) * (0.3 - l2) + (0.3 - l2) ** 2)
    diff, lo, hi = paired_difference_interval(a, b)
    assert diff == pytest.approx(0.2, abs=1e-15)
    assert (lo, hi) == pytest.approx((low, high), abs=1e-12)
    assert 0.0 < lo < 0.2 < hi
    # swapping the two arms negates the interval
    d2, lo2, hi2 = paired_difference_interval(b, a)
    assert (d2, lo2, hi2) == pytest.approx((-0.2, -hi, -lo), abs=1e-12)


def test_paired_difference_interval_identical_and_errors():
    a = np.zeros(100, dtype=bool)
    a[:3] = True
    diff, lo, hi = paired_difference_interval(a, a)
    # phi = 1: the half-width is the difference of the Wilson interval's two asymmetric
    # half-widths, (0.0845 - 0.03) - (0.03 - 0.0103) = 0.0348 for 3 of 100
    assert diff == 0.0 and lo == pytest.approx(-0.0348, abs=1e-4) and hi == pytest.approx(-lo)
    with pytest.raises(ValueError, match="same shape"):
        paired_difference_interval(a, a[:-1])
    with pytest.raises(ValueError, match="at least one"):
        paired_difference_interval(a[:0], a[:0])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference_interval(a, a, confidence=1.0)
    with pytest.raises(ValueError, match="only_b must be a count"):
        paired_difference_interval_counts(1, 2, -1, 5)
    # the table form gives what the arrays give
    assert paired_difference_interval_counts(3, 0, 0, 97) == (diff, lo, hi)


def test_paired_difference_interval_coverage_monte_carlo():
    # error rates of two models on 2,000 test images: 3 % and 2 %, mostly on the same images
    # (cells of the 2 x 2 table: both 1.5 %, first only 1.5 %, second only 0.5 %); the 95 %
    # interval must cover the true difference 0.01 in 95 % +- 1.5 points (3 standard errors of
    # 2,000 replicates) of the replicates
    rng = np.random.default_rng(0)
    cells = np.array([0.015, 0.015, 0.005, 0.965])
    n, reps, covered = 2000, 2000, 0
    for _ in range(reps):
        kind = rng.choice(4, size=n, p=cells)
        a, b = (kind == 0) | (kind == 1), (kind == 0) | (kind == 2)
        _, lo, hi = paired_difference_interval(a, b)
        covered += lo <= 0.01 <= hi
    assert 0.935 <= covered / reps <= 0.965
