"""The 1-D interval toy model: class 1 on a finite union of intervals of the real line.

Smoothing is exact in closed form, (1_[a,b] * p_sigma)(x) = Phi((b - x)/sigma) - Phi((a - x)/sigma),
so the classifiers of [PS23] (phi(h * p_alpha), Smooth_beta of it, and the risk) can be computed
without a grid: each stage is again a union of intervals, whose end points are the roots of
p(x) = 1/2, found by a scan of p followed by Brent's method.

The superlevel set {p >= 1/2} lies inside the convex hull of the class-1 set (outside the hull
the whole set sits in a half-line not containing x, which has probability < 1/2). The scan uses
a step of min(sigma, shortest interval) / ``SCAN_POINTS_PER_SCALE``; a component of {p >= 1/2}
narrower than that step (a near-tangency of p to 1/2) can be missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

__all__ = ["Intervals", "interval_probability", "smooth_intervals", "interval_classifier",
           "interval_risk", "SCAN_POINTS_PER_SCALE"]

SCAN_POINTS_PER_SCALE = 64


@dataclass(frozen=True)
class Intervals:
    """A finite union of closed intervals, stored sorted and merged as an (k, 2) float64 array."""

    bounds: np.ndarray

    @classmethod
    def of(cls, pairs: Iterable[tuple[float, float]]) -> Intervals:
        """Sort and merge ``pairs`` (a, b) with a <= b; empty intervals are dropped."""
        rows = sorted((float(a), float(b)) for a, b in pairs)
        merged: list[list[float]] = []
        for a, b in rows:
            if not (math.isfinite(a) and math.isfinite(b)) or b < a:
                raise ValueError(f"interval ({a}, {b}) must have finite ends with a <= b")
            if b == a:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return cls(np.asarray(merged, dtype=np.float64).reshape(-1, 2))

    @property
    def length(self) -> float:
        return float(np.sum(self.bounds[:, 1] - self.bounds[:, 0]))

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        inside = np.zeros(x.shape, dtype=bool)
        for a, b in self.bounds:
            inside |= (x >= a) & (x <= b)
        return inside

    def __len__(self) -> int:
        return int(self.bounds.shape[0])


def interval_probability(intervals: Intervals, sigma: float, x: np.ndarray) -> np.ndarray:
    """(1_I * p_sigma)(x) = P[x + delta in I], delta ~ N(0, sigma^2), exactly (float64)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma < 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if sigma == 0:
        return intervals.contains(x).astype(np.float64)
    total = np.zeros(x.shape, dtype=np.float64)
    for a, b in intervals.bounds:
        total += ndtr((b - x) / sigma) - ndtr((a - x) / sigma)
    return total


def smooth_intervals(intervals: Intervals, sigma: float) -> Intervals:
    """{x : (1_I * p_sigma)(x) >= 1/2}: phi(h * p_sigma), equal to Smooth_sigma(h)."""
    if sigma == 0 or len(intervals) == 0:
        return intervals
    lo, hi = float(intervals.bounds[0, 0]), float(intervals.bounds[-1, 1])
    shortest = float(np.min(intervals.bounds[:, 1] - intervals.bounds[:, 0]))
    step = min(sigma, shortest) / SCAN_POINTS_PER_SCALE
    grid = np.linspace(lo, hi, max(3, int(math.ceil((hi - lo) / step)) + 1))

    def excess(x: float) -> float:
        return float(interval_probability(intervals, sigma, np.array(x))) - 0.5

    above = interval_probability(intervals, sigma, grid) >= 0.5
    pieces: list[tuple[float, float]] = []
    start = None
    for k in range(grid.size):
        if above[k] and start is None:
            start = lo if k == 0 else brentq(excess, grid[k - 1], grid[k], xtol=1e-13)
        elif not above[k] and start is not None:
            pieces.append((start, brentq(excess, grid[k - 1], grid[k], xtol=1e-13)))
            start = None
    if start is not None:
        pieces.append((start, hi))
    return Intervals.of(pieces)


def interval_classifier(intervals: Intervals, alpha: float, beta: float) -> Intervals:
    """F_{alpha,beta} = Smooth_beta(phi(h * p_alpha)) for h = 1_I."""
    return smooth_intervals(smooth_intervals(intervals, alpha), beta)


def interval_risk(intervals: Intervals, alpha: float, beta: float,
                  window: tuple[float, float]) -> float:
    """Delta_{alpha,beta} under the uniform marginal on ``window``: the length of the symmetric
    difference of 1_I and F_{alpha,beta} inside the window, divided by the window's length."""
    a, b = float(window[0]), float(window[1])
    if not b > a:
        raise ValueError(f"window must be (low, high) with high > low, got {window!r}")
    learned = interval_classifier(intervals, alpha, beta)
    cuts = np.unique(np.concatenate([[a, b], intervals.bounds.ravel(), learned.bounds.ravel()]))
    cuts = cuts[(cuts >= a) & (cuts <= b)]
    mids = 0.5 * (cuts[:-1] + cuts[1:])
    differs = intervals.contains(mids) != learned.contains(mids)
    return float(np.sum(np.diff(cuts)[differs]) / (b - a))
