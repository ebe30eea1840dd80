"""The paired tests of the experiment reports: exact McNemar and Holm's adjustment, against
values computed by hand from their definitions."""

from math import comb

import numpy as np
import pytest

from smoothcert.stats import holm_adjust, mcnemar_exact


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
