"""Adaptive certification: [CRK19] CERTIFY with far fewer samples where fewer suffice.

Fixed-n CERTIFY spends n (100,000) samples on every input, although an input whose base classifier
is right under almost all noise reaches a requested radius after a few hundred, and an input near
p_A = 1/2 is hopeless long before n. Here the estimation samples are drawn in **fixed,
pre-declared stages** n_1 < n_2 < ... < n_K = n (geometric, ``stage_plan``), one i.i.d. stream,
only the additional samples being drawn at each stage, and the procedure stops as soon as a goal
is decided:

- ``radii``: for each requested (norm, r), either the current bound certifies r, or r is out of
  reach even with all n samples (futility, below);
- ``tolerance``: the radius that n samples could at best give exceeds the current certified
  radius by at most the tolerance (absolute, in the radius's units, or relative to that best
  radius, e.g. ``"1%"``).

**Guarantee** (the same as fixed-n CERTIFY): with probability at least 1 - alpha over the noise,
if the result is not ``ABSTAIN`` then g(x) = c_A and g(x + v) = c_A for every ||v||_norm <
radius[norm], for every norm, noise family, goal and futility level.

**Proof.** The top class c_A is chosen from n0 selection samples that are independent of the
estimation stream; condition on it, and let p_A = P[f(x + delta) = c_A]. Couple the procedure
with the full stream of n estimation samples, of which it looks at a prefix. Because the stage
sizes n_k are fixed in advance (not chosen from the data), the count N_k of c_A among the first
n_k samples is Binomial(n_k, p_A) for each k, so the one-sided Clopper-Pearson bound LB_k =
Beta^-1(alpha_k; N_k, n_k - N_k + 1) satisfies P[LB_k > p_A] <= alpha_k. The procedure stops at a
data-dependent stage tau and returns p_lower = max_{j <= tau} LB_j. If p_lower <= p_A, the
certificate is right: p_lower > 1/2 then gives g(x) = c_A, and the noise's radius function is a
valid radius for any lower bound on p_A ([CRK19] Theorem 1, [YDH+20]). Hence

    P[wrong certificate] <= P[max_{j <= tau} LB_j > p_A] <= P[U_k {LB_k > p_A}]
                         <= sum_k alpha_k <= alpha,

by the union bound, whatever the stopping rule tau. The plan's levels satisfy sum_k alpha_k <=
alpha exactly (checked in rational arithmetic). Futility, the goals and their parameters only
choose tau, so they affect the number of samples and the radii, never the guarantee.

**Futility** (efficiency only). At stage k < K, the upper Clopper-Pearson bound UB_k at level
beta_k bounds how large p_A can plausibly be; if p_A = UB_k, the last stage would typically see
ceil(UB_k * n) successes and return p_best = Beta^-1(alpha_K; that count, ...). A radius whose
p*(r) exceeds p_best is given up. Claim: if the last stage certifies r at the typical count of the
true p_A (Beta^-1(alpha_K; ceil(p_A n), ...) >= p*(r)), r is given up with probability at most
sum_k beta_k. Indeed, giving up at stage k needs p_best < p*(r), hence ceil(UB_k n) < ceil(p_A n)
(the bound increases with the count), hence UB_k < p_A, which has probability at most beta_k.
The default ``futility`` = 0.005 therefore costs such inputs at most half a point of certified
accuracy against running every input to n.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch

from smoothcert.certify.adaptive_rule import (
    CERTIFIED,
    FUTILE,
    UNCERTIFIED,
    AdaptiveRule,
    StageOutcome,
    StagePlan,
    Tolerance,
    parse_tolerance,
    required_p_lower,
    stage_plan,
)
from smoothcert.certify.certificate import Certificate, certified_fields, check_norms
from smoothcert.certify.sampling import check_generators, check_inputs
from smoothcert.norms import Norm
from smoothcert.stats import check_alpha, check_sample_count

if TYPE_CHECKING:
    from smoothcert.certify.classifier import SmoothedClassifier

__all__ = [
    "StagePlan",
    "stage_plan",
    "Tolerance",
    "parse_tolerance",
    "required_p_lower",
    "AdaptiveRule",
    "StageOutcome",
    "AdaptiveCertificate",
    "certify_adaptive",
    "CERTIFIED",
    "FUTILE",
    "UNCERTIFIED",
]

#: the one-sided level at which each confidence-bound convention of ``smoothcert.stats.BOUNDS``
#: spends alpha: the two-sided interval at alpha is the one-sided bound at alpha / 2
_ONE_SIDED_SHARE = {"one-sided": 1.0, "two-sided": 0.5}


# ---------------------------------------------------------------------------------- certify
@dataclass(frozen=True)
class AdaptiveCertificate(Certificate):
    """A ``Certificate`` from adaptive certification, with the same guarantee as fixed-n
    CERTIFY at level alpha. ``samples`` = n0 + the estimation samples used; ``counts`` their
    counts per class. ``stage`` is the 0-based stopping stage; ``best_radius`` per norm the
    radius that n samples could plausibly give (equal to ``radius`` at the last stage);
    ``decisions`` per requested (norm, r) is ``CERTIFIED``, ``FUTILE`` or ``UNCERTIFIED``."""

    stage: int = 0
    best_radius: dict[Norm, float] = field(default_factory=dict)
    decisions: dict[Norm, dict[float, str]] = field(default_factory=dict)


def certify_adaptive(smoothed: SmoothedClassifier, xs: torch.Tensor, n0: int, n: int,
                     alpha: float, norms: Sequence[Norm | str] = ("l2",), *,
                     radii: Mapping[Norm | str, Sequence[float]] | Sequence[float] | None = None,
                     tolerance: Tolerance | float | str | None = None,
                     generators: Sequence[torch.Generator | None] | None = None,
                     convert: bool = False, bound: str = "one-sided",
                     plan: StagePlan | None = None) -> list[AdaptiveCertificate]:
    """Adaptive CERTIFY of each input of ``xs`` (shape (N, *x.shape)) with at most n estimation
    samples each; see the module docstring for the procedure, its guarantee and its proof.

    With probability at least 1 - alpha over the noise, per input: if the result is not
    ``ABSTAIN``, g(x) = c_A and g(x + v) = c_A for every ||v||_norm < radius[norm], for all
    requested norms. ``bound`` names the convention of ``smoothcert.stats.BOUNDS`` whose level
    the procedure spends ("two-sided" spends alpha / 2). ``plan`` overrides the default stages
    ``stage_plan(n, alpha')``; its n and alpha must match. Each input draws selection and then
    estimation samples, stage after stage, from its own generator.
    """
    n0 = check_sample_count("n0", n0)
    n = check_sample_count("n", n)
    alpha = check_alpha(alpha)
    try:
        level = alpha * _ONE_SIDED_SHARE[bound]
    except KeyError:
        raise ValueError(f"unknown confidence bound {bound!r}; choose from "
                         f"{', '.join(_ONE_SIDED_SHARE)}") from None
    sampler = smoothed.sampler
    norm_list = check_norms(sampler.noise, norms, convert)
    if plan is None:
        plan = stage_plan(n, level)
    elif plan.n != n or plan.spent() > Fraction(level):
        raise ValueError(f"the stage plan (n={plan.n}, sum of alphas "
                         f"{float(plan.spent())!r}) does not fit n={n} and alpha={level!r}")
    rule = AdaptiveRule(sampler.noise, norm_list, plan, radii=radii, tolerance=tolerance,
                        convert=convert)
    xs = check_inputs(xs, sampler.noise)
    count = xs.shape[0]
    gens = check_generators(generators, count, xs.device)

    selection = sampler.class_counts(xs, n0, gens)
    top = selection.argmax(axis=1)
    estimation = np.zeros((count, sampler.num_classes), dtype=np.int64)

    def draw(active: np.ndarray, m: int) -> np.ndarray:
        # each input's next m samples continue its own stream, so all stages together are
        # one i.i.d. sequence per input, whichever inputs share a forward batch
        new = sampler.class_counts(xs[torch.as_tensor(active)], m, [gens[i] for i in active])
        estimation[active] += new
        return new[np.arange(active.size), top[active]]

    outcome = rule.run(count, draw)
    last = len(plan.sizes) - 1
    best = rule.radius(outcome.p_best)
    fields = certified_fields(sampler.noise, top, outcome.p_lower, norm_list, convert=convert)
    return [AdaptiveCertificate(
        **fields[i],
        samples=n0 + int(outcome.samples[i]),
        counts=estimation[i].copy(),
        stage=int(outcome.stage[i]),
        best_radius={norm: float(best[norm][i]) for norm in norm_list},
        decisions=rule.decisions(outcome.p_lower[i], outcome.p_best[i],
                                 bool(outcome.stage[i] == last)))
        for i in range(count)]
