"""Certified accuracy at radii, envelopes over runs, and the average certified radius.

Definitions (the protocol of [CRK19], followed by [YDH+20]):

- A test point is *certified at radius r* in a norm if the smoothed classifier's prediction is
  correct (``correct == 1``, which implies it did not abstain) and its certified radius in that
  norm is at least r. At r = 0 this is "correct and not abstained". Abstentions
  (``prediction == -1``) are never certified: they count as wrong, in the denominator.
- *Certified accuracy* at r = (points certified at r) / (all points in the file).
- The *envelope* of several runs (for instance one per training sigma) is, at each r, the largest
  certified accuracy among them: the headline curve of both [CRK19] and [YDH+20].
- The *average certified radius* (ACR) = mean over points of radius * correct.

Counts are kept as integers, so accuracies are exact fractions; every float or percentage this
module produces is rounded **down** (a reported certified accuracy may be loose, never too high).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from smoothcert._values import parse_values
from smoothcert.analysis.results import ABSTAIN, CertificationResults
from smoothcert.norms import Norm

__all__ = [
    "AccuracyCurve",
    "certified_counts",
    "certified_accuracy",
    "accuracy_curve",
    "envelope",
    "average_certified_radius",
    "parse_radii",
    "default_radii",
    "floor_percent",
    "floor_decimal",
    "fraction_down",
]


# ---------------------------------------------------------------------------------- measures
def certified_counts(results: CertificationResults, radii: Iterable[float],
                     norm: Norm | str) -> np.ndarray:
    """Number of points certified at each radius in ``radii`` (int64, one per radius)."""
    values = _radius_array(radii)
    ok = results.correct & (results.prediction != ABSTAIN)
    certified = np.sort(results.radii(norm)[ok])
    # number of certified radii >= r, for every r at once
    return (certified.shape[0] - np.searchsorted(certified, values, side="left")).astype(np.int64)


def certified_accuracy(results: CertificationResults, radii: Iterable[float],
                       norm: Norm | str) -> np.ndarray:
    """Certified accuracy at each radius (float64, each value rounded down from the exact
    fraction certified / total)."""
    counts = certified_counts(results, radii, norm)
    return np.array([fraction_down(int(c), len(results)) for c in counts], dtype=np.float64)


def average_certified_radius(results: CertificationResults, norm: Norm | str) -> float:
    """ACR: the mean over all points of radius * correct (abstentions contribute 0)."""
    if len(results) == 0:
        raise ValueError(f"{results.label!r} has no rows; the ACR is undefined")
    ok = results.correct & (results.prediction != ABSTAIN)
    return float(np.sum(np.where(ok, results.radii(norm), 0.0)) / len(results))


@dataclass(frozen=True)
class AccuracyCurve:
    """Certified accuracy of one run (or an envelope) at a list of radii, as exact counts.

    ``certified[i] / total[i]`` is the accuracy at ``radii[i]``; for an envelope, ``source[i]``
    names the run attaining it.
    """

    label: str
    norm: Norm
    radii: np.ndarray
    certified: np.ndarray
    total: np.ndarray
    source: tuple[str, ...] = ()

    def fractions(self) -> list[Fraction]:
        """The exact accuracies."""
        return [Fraction(int(c), int(t)) for c, t in zip(self.certified, self.total, strict=True)]

    @property
    def accuracy(self) -> np.ndarray:
        """The accuracies as float64, each rounded down."""
        return np.array([fraction_down(int(c), int(t))
                         for c, t in zip(self.certified, self.total, strict=True)],
                        dtype=np.float64)


def accuracy_curve(results: CertificationResults, radii: Iterable[float],
                   norm: Norm | str) -> AccuracyCurve:
    """The certified accuracy of ``results`` at ``radii`` in ``norm``."""
    values = _radius_array(radii)
    if len(results) == 0:
        raise ValueError(f"{results.label!r} has no rows; its certified accuracy is undefined")
    counts = certified_counts(results, values, norm)
    return AccuracyCurve(label=results.label, norm=Norm.parse(norm), radii=values,
                         certified=counts, total=np.full(values.shape, len(results), np.int64))


def envelope(curves: Sequence[AccuracyCurve], label: str = "envelope") -> AccuracyCurve:
    """At each radius, the largest certified accuracy among ``curves`` (compared exactly).

    All curves must use the same norm and radii. Ties go to the first curve.
    """
    if not curves:
        raise ValueError("envelope needs at least one curve")
    first = curves[0]
    for curve in curves[1:]:
        if curve.norm is not first.norm:
            raise ValueError(
                f"cannot take the envelope of {first.norm.value} and {curve.norm.value} curves"
            )
        if curve.radii.shape != first.radii.shape or not np.array_equal(curve.radii, first.radii):
            raise ValueError(f"curve {curve.label!r} uses other radii than {first.label!r}")
    certified, total, source = [], [], []
    for i in range(first.radii.shape[0]):
        best = max(range(len(curves)),
                   key=lambda k: (Fraction(int(curves[k].certified[i]), int(curves[k].total[i])),
                                  -k))
        certified.append(int(curves[best].certified[i]))
        total.append(int(curves[best].total[i]))
        source.append(curves[best].label)
    return AccuracyCurve(label=label, norm=first.norm, radii=first.radii.copy(),
                         certified=np.array(certified, dtype=np.int64),
                         total=np.array(total, dtype=np.int64), source=tuple(source))


# ---------------------------------------------------------------------------------- radii
#: radii of the papers' tables: [YDH+20] Table 1 (l1), [CRK19] (l2), multiples of 1/255 (linf)
_DEFAULT_RADII: dict[Norm, tuple[float, ...]] = {
    Norm.L1: tuple(0.5 * k for k in range(9)),
    Norm.L2: tuple(0.25 * k for k in range(5)),
    Norm.LINF: (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255),
}


def default_radii(norm: Norm | str) -> np.ndarray:
    """The radii reported by the papers for ``norm``."""
    return np.array(_DEFAULT_RADII[Norm.parse(norm)], dtype=np.float64)


def parse_radii(text: str) -> np.ndarray:
    """Radii from ``"0,0.25,0.5"`` (a list), ``"0:4:0.5"`` (start:stop:step, stop included) or
    ``"0,0.25,...,1"`` (a progression); values may be fractions such as ``2/255``. The ranges are
    computed in exact decimal arithmetic (``smoothcert._values.parse_values``).
    """
    return _radius_array(parse_values(text, "radii"))


def _radius_array(radii: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(radii), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("radii must be a non-empty list of numbers")
    if np.isnan(values).any() or (values < 0).any():
        raise ValueError(f"radii must be numbers >= 0, got {values.tolist()}")
    return values


# ---------------------------------------------------------------------------------- rounding
def fraction_down(numerator: int, denominator: int) -> float:
    """numerator / denominator as the largest float64 not above the exact fraction."""
    value = numerator / denominator
    if Fraction(value) > Fraction(numerator, denominator):
        value = math.nextafter(value, -math.inf)
    return value


def floor_percent(numerator: int, denominator: int, digits: int = 1) -> str:
    """``100 * numerator / denominator`` with ``digits`` decimals, rounded down exactly."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    scaled = (numerator * 100 * 10**digits) // denominator
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}" if digits else str(whole)


def floor_decimal(value: float, digits: int) -> str:
    """A non-negative float with ``digits`` decimals, rounded down exactly."""
    exact = Fraction(value)
    scaled = math.floor(exact * 10**digits)
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}" if digits else str(whole)
