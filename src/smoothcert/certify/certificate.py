"""Results of PREDICT and CERTIFY, and the one rule that turns a p_lower into a certificate.

Every certification procedure (fixed-n, adaptive, split-sample, deterministic) ends in
``certified_fields``: the selected class is returned only when p_lower > 1/2, and then with the
noise's certified radius R(p_lower) in each norm; otherwise the result is ``ABSTAIN`` with radius
0 (p_lower is reported either way). ``certificates_from_counts`` adds the step before it for the
sampling procedures: the lower confidence bound from the count of the selected class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from smoothcert.noises.base import Noise
from smoothcert.norms import Norm
from smoothcert.stats import lower_confidence_bound

__all__ = ["ABSTAIN", "CERTIFY_MODES", "Prediction", "Certificate", "certified_fields",
           "certificates_from_counts", "check_norms", "check_sampling_arguments"]

#: the prediction returned when the smoothed classifier abstains
ABSTAIN = -1

#: certification modes of a random noise: all n samples ([CRK19]), or as many as the goal needs
#: (``smoothcert.certify.adaptive``)
CERTIFY_MODES = ("fixed", "adaptive")


@dataclass(frozen=True)
class Prediction:
    """Result of PREDICT: ``prediction`` is a class or ``ABSTAIN`` (-1); ``p_value`` is the
    two-sided binomial test of the top two counts; ``samples`` noisy forward passes were used,
    ``counts`` holds them per class."""

    prediction: int
    p_value: float
    samples: int
    counts: np.ndarray

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


@dataclass(frozen=True)
class Certificate:
    """Result of CERTIFY.

    ``prediction`` is the selected class or ``ABSTAIN`` (-1, when p_lower <= 1/2); ``p_lower`` the
    lower confidence bound on P[f(T(x)) = selected class] (reported also when abstaining);
    ``radius`` the certified radius for every requested norm, all from the same p_lower (0.0 when
    abstaining); ``samples`` = n0 + n noisy forward passes; ``counts`` the n estimation counts
    per class.
    """

    prediction: int
    p_lower: float
    radius: dict[Norm, float]
    samples: int
    counts: np.ndarray

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


def check_norms(noise: Noise, norms: Sequence[Norm | str] | Norm | str,
                convert: bool) -> list[Norm]:
    """The distinct norms named by ``norms``; ValueError for a norm ``noise`` does not certify
    directly unless ``convert``."""
    if isinstance(norms, (str, Norm)):
        norms = [norms]
    parsed = list(dict.fromkeys(Norm.parse(v) for v in norms))
    if not parsed:
        raise ValueError("norms must name at least one norm (l1, l2, linf)")
    for norm in parsed:
        if not (convert or noise.certifies(norm)):
            raise ValueError(
                f"{noise.name} noise does not certify {norm.value} directly; it "
                f"certifies {', '.join(v.value for v in noise.direct_norms)}. Pass "
                f"convert=True to use the lp conversion (a valid but loose radius)")
    return parsed


def check_sampling_arguments(noise: Noise, task: str, **values: Any) -> None:
    """The Monte Carlo arguments of ``task`` (n0, n, alpha, a mode other than "fixed", ...):
    a random noise needs every one of them (``None`` is missing), a deterministic smoothing
    takes none of them (it is evaluated exactly). ValueError naming them otherwise."""
    if noise.deterministic:
        given = [name for name, value in values.items() if value is not None]
        if given:
            raise ValueError(f"the {noise.name} smoothing is deterministic: {task} evaluates "
                             f"it exactly, without Monte Carlo sampling, so "
                             f"{', '.join(given)} must not be given (got "
                             f"{', '.join(f'{k}={values[k]!r}' for k in given)})")
        return
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(f"{task} with the random {noise.name} noise needs "
                         f"{', '.join(missing)} (Monte Carlo sample sizes and failure "
                         f"probability); got none for {', '.join(missing)}")


def certified_fields(noise: Noise, top: Any, p_lower: Any, norms: Sequence[Norm], *,
                     convert: bool = False) -> list[dict[str, Any]]:
    """The abstain rule, per input: ``prediction`` (``top[i]`` if ``p_lower[i] > 1/2``, else
    ``ABSTAIN``), ``p_lower`` (float64, reported in both cases) and ``radius`` (per norm, the
    noise's certified radius at p_lower, 0.0 when abstaining), ready for ``Certificate(**f, ...)``.

    Soundness rests on the caller: p_lower must be a valid lower confidence bound on the
    probability of class ``top[i]`` (or, for a deterministic smoothing, that probability itself).
    """
    top = np.atleast_1d(np.asarray(top, dtype=np.int64))
    p = np.atleast_1d(np.asarray(p_lower, dtype=np.float64))
    if top.shape != p.shape or top.ndim != 1:
        raise ValueError(f"top and p_lower must be 1-D and alike, got shapes {top.shape} "
                         f"and {p.shape}")
    radii = {norm: np.asarray(noise.certified_radius(p, norm, convert=convert), dtype=np.float64)
             for norm in norms}
    out = []
    for i in range(len(top)):
        certified = bool(p[i] > 0.5)
        out.append({"prediction": int(top[i]) if certified else ABSTAIN,
                    "p_lower": float(p[i]),
                    "radius": {norm: float(r[i]) if certified else 0.0
                               for norm, r in radii.items()}})
    return out


def certificates_from_counts(noise: Noise, top: Any, counts: np.ndarray, n: int, alpha: float,
                             norms: Sequence[Norm], *, convert: bool = False,
                             bound: str = "one-sided", samples: int) -> list[Certificate]:
    """[CRK19] CERTIFY's last step for each row of ``counts`` (the n estimation counts per class,
    shape (N, classes)) with the class ``top[i]`` selected from independent samples: p_lower =
    the lower confidence bound (``bound``) at level alpha on P[class top[i]], then
    ``certified_fields``. ``samples`` is recorded in every certificate (n0 + n)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.int64))
    top = np.atleast_1d(np.asarray(top, dtype=np.int64))
    n_a = counts[np.arange(len(top)), top]
    p_lower = np.atleast_1d(lower_confidence_bound(n_a, n, alpha, bound))
    fields = certified_fields(noise, top, p_lower, norms, convert=convert)
    return [Certificate(**f, samples=samples, counts=row)
            for f, row in zip(fields, counts, strict=True)]
