"""[CRK19] PREDICT and fixed-n CERTIFY by Monte Carlo sampling of the smoothing noise.

Both take a ``SmoothedClassifier`` (its ``sampler``: the Monte Carlo engine of
``smoothcert.certify.sampling``) and a batch of inputs, each with its own generator; several
inputs share every forward batch when n is small. Selection and estimation draws come one after
the other from an input's generator, so they are independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from smoothcert.certify.certificate import (
    ABSTAIN,
    Certificate,
    Prediction,
    certificates_from_counts,
    check_norms,
)
from smoothcert.certify.sampling import check_generators, check_inputs
from smoothcert.norms import Norm
from smoothcert.stats import (
    check_alpha,
    check_sample_count,
    lower_confidence_bound,
    top_two_p_value,
)

if TYPE_CHECKING:
    from smoothcert.certify.classifier import SmoothedClassifier

__all__ = ["certify_fixed", "predict_fixed"]


def predict_fixed(smoothed: SmoothedClassifier, xs: torch.Tensor, n: int, alpha: float, *,
                  generators: Sequence[torch.Generator | None] | None = None
                  ) -> list[Prediction]:
    """[CRK19] PREDICT for each input of ``xs`` (shape (N, *x.shape)): the top class of n noisy
    samples, unless the two-sided binomial test of the top two counts has p-value > alpha, in
    which case ``ABSTAIN``.

    Guarantee: with probability at least 1 - alpha over the noise, the returned class (if not
    ``ABSTAIN``) equals g(x).
    """
    n = check_sample_count("n", n)
    alpha = check_alpha(alpha)
    sampler = smoothed.sampler
    xs = check_inputs(xs, sampler.noise)
    gens = check_generators(generators, xs.shape[0], xs.device)
    out: list[Prediction] = []
    for group, group_gens in sampler.groups(xs, gens, n):
        with sampler.counting():
            counts = sampler.group_counts(group, n, group_gens)
        for row in counts.cpu().numpy():
            # stable sort, so ties go to the lower class index as with argmax
            order = np.argsort(-row, kind="stable")
            top, second = int(order[0]), int(order[1])
            p_value = top_two_p_value(row[top], row[second])
            out.append(Prediction(prediction=top if p_value <= alpha else ABSTAIN,
                                  p_value=p_value, samples=n, counts=row))
    return out


def certify_fixed(smoothed: SmoothedClassifier, xs: torch.Tensor, n0: int, n: int,
                  alpha: float, norms: Sequence[Norm | str] = ("l2",), *,
                  generators: Sequence[torch.Generator | None] | None = None,
                  convert: bool = False, bound: str = "one-sided") -> list[Certificate]:
    """[CRK19] CERTIFY for each input of ``xs`` (shape (N, *x.shape)): select the top class c_A
    from n0 noisy samples, bound P[f(T(x)) = c_A] from below with n fresh samples at level alpha
    (``bound``: a convention of ``smoothcert.stats.BOUNDS``), and certify the noise's radius in
    each norm; abstain if p_lower <= 1/2 (``certificate.certified_fields``).

    Guarantee ([CRK19] Theorem 1 and Proposition 2, generalized by [YDH+20]): with probability at
    least 1 - alpha over the noise, if the result is not ``ABSTAIN``, then g(x) = c_A and
    g(x + v) = c_A for every ||v||_norm < radius[norm], for all requested norms at once.
    """
    n0 = check_sample_count("n0", n0)
    n = check_sample_count("n", n)
    alpha = check_alpha(alpha)
    sampler = smoothed.sampler
    norm_list = check_norms(sampler.noise, norms, convert)
    # fail on a bad bound name before spending any samples
    lower_confidence_bound(1, 1, alpha, bound)
    xs = check_inputs(xs, sampler.noise)
    gens = check_generators(generators, xs.shape[0], xs.device)
    out: list[Certificate] = []
    for group, group_gens in sampler.groups(xs, gens, n):
        with sampler.counting():
            selection = sampler.group_counts(group, n0, group_gens)
            estimation = sampler.group_counts(group, n, group_gens)
        top = selection.cpu().numpy().argmax(axis=1)
        out.extend(certificates_from_counts(sampler.noise, top, estimation.cpu().numpy(), n,
                                            alpha, norm_list, convert=convert, bound=bound,
                                            samples=n0 + n))
    return out
