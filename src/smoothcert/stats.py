"""Confidence bounds and tests on Monte Carlo class counts (pure functions, no torch).

Certification ([CRK19] CERTIFY, followed by [YDH+20]) needs a lower confidence bound on the
probability p_A that the base classifier returns the selected class under noise, from an integer
count n_A out of n independent noisy samples. Prediction ([CRK19] PREDICT) needs a test that the
top class really is more likely than the runner-up.

Two conventions for the lower bound are in use, and the choice changes the numbers:

- ``"one-sided"`` (this library's default, and [CRK19]'s analysis): the one-sided Clopper-Pearson
  bound at level alpha, ``Beta^-1(alpha; n_A, n - n_A + 1)``. P[p_lower > p_A] <= alpha.
- ``"two-sided"`` (the code of [YDH+20], ``proportion_confint(method="beta")``): the lower end of
  the two-sided Clopper-Pearson interval at level alpha, i.e. the one-sided bound at alpha / 2. It
  is valid too, only more conservative (a smaller p_lower, smaller radii).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import betaincinv
from scipy.stats import binomtest

__all__ = [
    "clopper_pearson_lower",
    "clopper_pearson_interval",
    "lower_confidence_bound",
    "BOUNDS",
    "top_two_p_value",
    "check_alpha",
    "check_sample_count",
    "mcnemar_exact",
    "paired_difference_interval",
    "paired_difference_interval_counts",
    "holm_adjust",
]


#: relative amount by which the Clopper-Pearson bound is taken down (see clopper_pearson_lower)
_CP_RTOL = 1e-12


def _counts(name: str, value: Any) -> np.ndarray:
    """``value`` as an int64 array, refusing anything that is not an integer count."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must be an integer count (int or integer numpy array), got {value!r} "
            f"of type {arr.dtype if isinstance(value, np.ndarray) else type(value).__name__}"
        )
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {arr[arr < 0].ravel()[0]}")
    return arr


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float, refusing anything outside the open interval (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (float, int, np.floating, np.integer)):
        raise TypeError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    return alpha


def check_sample_count(name: str, value: Any) -> int:
    """A number of samples (n0, n, a batch size) as an int, refusing non-integers and values
    below 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _restore(out: np.ndarray, n_a: Any, n: Any) -> Any:
    """A float for scalar inputs, an array otherwise."""
    if np.ndim(n_a) == 0 and np.ndim(n) == 0:
        return float(out)
    return out


def clopper_pearson_lower(n_a: Any, n: Any, alpha: float) -> Any:
    """One-sided Clopper-Pearson lower confidence bound on a binomial proportion.

    For n_A ~ Binomial(n, p): P[clopper_pearson_lower(n_A, n, alpha) > p] <= alpha for every p
    (exact, not asymptotic). The bound is ``Beta^-1(alpha; n_a, n - n_a + 1)``, the p at which
    P[Binomial(n, p) >= n_a] = alpha, and 0 for n_a = 0, taken down by a relative 1e-12 to cover
    the float64 error of the quantile (so the guarantee holds for the number returned). For
    n_a = n it equals alpha^(1/n) (0.99993092 at n = 100000, alpha = 0.001) up to that margin.

    ``n_a`` and ``n`` are integer counts (ints or integer numpy arrays, broadcast together);
    returns a float for scalars and a float64 array otherwise.
    """
    alpha = check_alpha(alpha)
    k = _counts("n_a", n_a)
    total = _counts("n", n)
    k, total = np.broadcast_arrays(k, total)
    if (total < 1).any():
        raise ValueError(f"n must be >= 1, got {total[total < 1].ravel()[0]}")
    if (k > total).any():
        bad = np.argmax((k > total).ravel())
        raise ValueError(
            f"n_a must not exceed n, got n_a={k.ravel()[bad]} > n={total.ravel()[bad]}"
        )
    positive = k > 0
    # betaincinv needs a > 0; n_a = 0 gets the bound 0 below
    out = betaincinv(np.where(positive, k, 1).astype(np.float64),
                     (total - k + 1).astype(np.float64), alpha)
    # betaincinv is within a few ulps of the exact quantile; the relative margin _CP_RTOL keeps
    # the bound below it (exact checks: P[Binomial(n, p_lower) >= n_a] exceeded alpha by up to
    # 2e-12 relative without it, at n_a = n = 100000, where p_lower = alpha^(1/n))
    out = np.where(positive, out * (1.0 - _CP_RTOL), 0.0).astype(np.float64)
    return _restore(out, n_a, n)


def clopper_pearson_interval(n_a: Any, n: Any, alpha: float) -> tuple[Any, Any]:
    """Two-sided Clopper-Pearson interval at level alpha: (lower, upper).

    P[p < lower] <= alpha / 2 and P[p > upper] <= alpha / 2. This is the interval of
    ``statsmodels.stats.proportion.proportion_confint(method="beta")``, which [YDH+20]'s code used
    for certification; its lower end is ``clopper_pearson_lower(n_a, n, alpha / 2)``.
    """
    alpha = check_alpha(alpha)
    lower = clopper_pearson_lower(n_a, n, alpha / 2)
    # upper end by symmetry: 1 - lower bound on the complementary count
    k = _counts("n_a", n_a)
    total = _counts("n", n)
    upper = 1.0 - np.asarray(clopper_pearson_lower(total - k, total, alpha / 2))
    return lower, _restore(np.asarray(upper, dtype=np.float64), n_a, n)


def _two_sided_lower(n_a: Any, n: Any, alpha: float) -> Any:
    return clopper_pearson_interval(n_a, n, alpha)[0]


#: the named conventions for the lower confidence bound used by certification
BOUNDS: dict[str, Callable[[Any, Any, float], Any]] = {
    "one-sided": clopper_pearson_lower,
    "two-sided": _two_sided_lower,
}


def lower_confidence_bound(n_a: Any, n: Any, alpha: float, bound: str = "one-sided") -> Any:
    """The lower confidence bound on p_A under the named convention (see ``BOUNDS``)."""
    try:
        fn = BOUNDS[bound]
    except KeyError:
        raise ValueError(
            f"unknown confidence bound {bound!r}; choose from {', '.join(BOUNDS)}"
        ) from None
    return fn(n_a, n, alpha)


def top_two_p_value(count_top: int, count_second: int) -> float:
    """p-value of the two-sided binomial test of the top two counts ([CRK19] PREDICT).

    Under the null hypothesis that the top two classes are equally likely, count_top is
    Binomial(count_top + count_second, 1/2). PREDICT returns the top class only if this p-value is
    at most alpha; then, with probability at least 1 - alpha, the returned class is g(x). Returns
    1.0 when both counts are 0 (no evidence at all).
    """
    top = _counts("count_top", count_top)
    second = _counts("count_second", count_second)
    if top.ndim or second.ndim:
        raise TypeError("top_two_p_value takes scalar counts")
    total = int(top) + int(second)
    if total == 0:
        return 1.0
    return float(binomtest(int(top), total, 0.5, alternative="two-sided").pvalue)


def mcnemar_exact(a: Any, b: Any, alternative: str = "two-sided") -> tuple[int, int, float]:
    """Exact McNemar test of two paired boolean outcomes over the same items.

    ``a`` and ``b`` are boolean arrays (e.g. "certified at r" or "wrong" per test image under two
    methods). Returns (items true under a only, items true under b only, p-value): the binomial
    test of the a-only count among the discordant pairs at probability 1/2 (``alternative``
    "greater": a is true more often than b; "two-sided" as in ``scipy.stats.binomtest``). With no
    discordant pair the p-value is 1.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need the same shape, got {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    total = only_a + only_b
    p = 1.0 if total == 0 else float(binomtest(only_a, total, 0.5,
                                               alternative=alternative).pvalue)
    return only_a, only_b, p


def paired_difference_interval(a: Any, b: Any,
                               confidence: float = 0.95) -> tuple[float, float, float]:
    """Confidence interval for P(a) - P(b) from paired boolean outcomes (Newcombe's method 10).

    ``a`` and ``b`` are boolean arrays over the same items (e.g. "wrong" per test image under two
    models). Returns (mean(a) - mean(b), lower, upper); see ``paired_difference_interval_counts``,
    which takes the 2 x 2 table instead.
    """
    a, b = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need the same shape, got {a.shape} and {b.shape}")
    return paired_difference_interval_counts(int(np.sum(a & b)), int(np.sum(a & ~b)),
                                             int(np.sum(~a & b)), int(np.sum(~a & ~b)),
                                             confidence)


def paired_difference_interval_counts(both: int, only_a: int, only_b: int, neither: int,
                                      confidence: float = 0.95) -> tuple[float, float, float]:
    """Confidence interval for P(a) - P(b) from the 2 x 2 table of paired outcomes.

    The counts are the items true under both, under a only, under b only, under neither.
    Returns (difference of the two proportions, lower, upper): Newcombe's (1998, Statistics in
    Medicine 17: 2635-2650) method 10, which combines the Wilson intervals of the two marginal
    proportions (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``) with the phi
    coefficient of the table. Approximate, not exact: its coverage is close to ``confidence``
    at the item counts of a test set (checked by simulation in the tests); it complements
    ``mcnemar_exact``, which decides the sign exactly but gives no size. Not adjusted for
    multiple comparisons.
    """
    for name, value in (("both", both), ("only_a", only_a), ("only_b", only_b),
                        ("neither", neither)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a count (an integer >= 0), got {value!r}")
    both, only_a, only_b, neither = int(both), int(only_a), int(only_b), int(neither)
    n = both + only_a + only_b + neither
    if n == 0:
        raise ValueError("paired outcomes need at least one item, got none")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    k1, k2 = both + only_a, both + only_b
    p1, p2 = k1 / n, k2 / n
    ci1 = binomtest(k1, n).proportion_ci(confidence_level=confidence, method="wilson")
    ci2 = binomtest(k2, n).proportion_ci(confidence_level=confidence, method="wilson")
    margins = float(k1) * (n - k1) * float(k2) * (n - k2)
    phi = 0.0 if margins == 0 else \
        (float(both) * neither - float(only_a) * only_b) / np.sqrt(margins)
    d1_low, d1_high = p1 - ci1.low, ci1.high - p1
    d2_low, d2_high = p2 - ci2.low, ci2.high - p2
    diff = p1 - p2
    low = diff - np.sqrt(max(0.0, d1_low**2 - 2 * phi * d1_low * d2_high + d2_high**2))
    high = diff + np.sqrt(max(0.0, d1_high**2 - 2 * phi * d1_high * d2_low + d2_low**2))
    return float(diff), float(max(-1.0, low)), float(min(1.0, high))


def holm_adjust(p_values: Any) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control for several tests).

    The i-th smallest p-value is multiplied by (m - i + 1), capped at 1, and made
    non-decreasing in that order; reject where the adjusted value is <= the level.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p_values!r}")
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (len(p) - rank) * float(p[i])))
        adjusted[i] = running
    return adjusted
