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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from smoothcert.certify.classifier import ABSTAIN, Certificate, SmoothedClassifier
from smoothcert.noises.base import Noise
from smoothcert.norms import Norm
from smoothcert.stats import check_alpha, check_sample_count, clopper_pearson_lower

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

#: decision for a requested radius: the returned certificate reaches it
CERTIFIED = "certified"
#: decision for a requested radius: given up before n samples (n could not plausibly reach it)
FUTILE = "futile"
#: decision for a requested radius: all n samples used, and the certificate does not reach it
UNCERTIFIED = "uncertified"

#: the one-sided level at which each confidence-bound convention of ``smoothcert.stats.BOUNDS``
#: spends alpha: the two-sided interval at alpha is the one-sided bound at alpha / 2
_ONE_SIDED_SHARE = {"one-sided": 1.0, "two-sided": 0.5}


# ---------------------------------------------------------------------------------- stage plan
@dataclass(frozen=True)
class StagePlan:
    """Pre-declared estimation stages: cumulative sample sizes ``sizes`` (strictly increasing,
    the last is n), the one-sided Clopper-Pearson level ``alphas[k]`` of stage k's lower bound,
    and the level ``futility[k]`` of its upper bound for futility stops (0 at the last stage,
    which stops anyway).

    Invariant, checked exactly in rational arithmetic: sum(alphas) <= alpha, the level of the
    whole procedure (see the module's proof).
    """

    sizes: tuple[int, ...]
    alphas: tuple[float, ...]
    futility: tuple[float, ...]
    alpha: float

    def __post_init__(self) -> None:
        k = len(self.sizes)
        if k < 1 or len(self.alphas) != k or len(self.futility) != k:
            raise ValueError(f"a stage plan needs one alpha and one futility level per stage; "
                             f"got {k} sizes, {len(self.alphas)} alphas, "
                             f"{len(self.futility)} futility levels")
        if any(int(s) != s or s < 1 for s in self.sizes) or \
                any(b <= a for a, b in zip(self.sizes, self.sizes[1:], strict=False)):
            raise ValueError(f"stage sizes must be strictly increasing integers >= 1, got "
                             f"{self.sizes}")
        if any(not 0.0 < a < 1.0 for a in self.alphas):
            raise ValueError(f"stage alphas must lie in (0, 1), got {self.alphas}")
        if any(not 0.0 <= b < 1.0 for b in self.futility):
            raise ValueError(f"futility levels must lie in [0, 1), got {self.futility}")
        if self.spent() > Fraction(self.alpha):
            raise ValueError(f"the stage alphas sum to {float(self.spent())!r} > alpha = "
                             f"{self.alpha!r}; the union bound needs sum <= alpha")

    @property
    def n(self) -> int:
        """The largest number of estimation samples (the last stage)."""
        return self.sizes[-1]

    def spent(self) -> Fraction:
        """sum_k alpha_k, exactly."""
        return sum((Fraction(a) for a in self.alphas), Fraction(0))


def stage_plan(n: int, alpha: float, *, first: int = 100, growth: float = 2.0,
               final_share: float = 0.5, futility: float = 0.005) -> StagePlan:
    """Geometric stages ``first, first*growth, ...`` (rounded up), capped by a last stage n.

    The last stage gets ``final_share * alpha`` (inputs that need all n samples lose little to
    fixed-n CERTIFY at level alpha), the others share the rest evenly; ``futility`` is split
    evenly among all stages but the last. With ``first >= n`` there is one stage at level alpha,
    which is fixed-n CERTIFY. Levels are rounded down where needed so that their exact sum never
    exceeds alpha.
    """
    n = check_sample_count("n", n)
    first = check_sample_count("first", first)
    alpha = check_alpha(alpha)
    if not (isinstance(growth, (int, float)) and math.isfinite(growth) and growth > 1.0):
        raise ValueError(f"growth must be a number > 1, got {growth!r}")
    if not (isinstance(final_share, (int, float)) and 0.0 < final_share <= 1.0):
        raise ValueError(f"final_share must lie in (0, 1], got {final_share!r}")
    if not (isinstance(futility, (int, float)) and 0.0 <= futility < 1.0):
        raise ValueError(f"futility must lie in [0, 1), got {futility!r}")
    sizes: list[int] = []
    size = first
    while size < n:
        sizes.append(size)
        size = max(size + 1, math.ceil(size * growth))
    sizes.append(n)
    k = len(sizes)
    if k == 1:
        alphas = [alpha]
        futilities = [0.0]
    else:
        if final_share == 1.0:
            raise ValueError("final_share = 1 leaves no alpha for the early stages; use "
                             "first >= n for fixed-n certification")
        early = alpha * (1.0 - final_share) / (k - 1)
        alphas = [early] * (k - 1) + [alpha * final_share]
        futilities = [futility / (k - 1)] * (k - 1) + [0.0]
    # floating-point products may land an ulp above their exact share; shave them until the
    # exact sum is within alpha
    while sum((Fraction(a) for a in alphas), Fraction(0)) > Fraction(alpha):
        alphas = [math.nextafter(a, 0.0) for a in alphas]
    return StagePlan(sizes=tuple(sizes), alphas=tuple(alphas), futility=tuple(futilities),
                     alpha=alpha)


# ---------------------------------------------------------------------------------- goals
@dataclass(frozen=True)
class Tolerance:
    """How close to the best reachable radius is close enough: ``value`` in the radius's units,
    or, if ``relative``, a fraction of the best radius that n samples could give."""

    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value >= 0.0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.value!r}")
        if self.relative and self.value >= 1.0:
            raise ValueError(f"a relative tolerance must be below 100%, got {self.value:.0%}")

    def met(self, radius: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Whether ``best - radius`` is within the tolerance (elementwise)."""
        allowed = self.value * best if self.relative else self.value
        return best - radius <= allowed

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def parse_tolerance(value: Tolerance | float | str) -> Tolerance:
    """A ``Tolerance`` from a number (absolute), ``"0.01"`` (absolute) or ``"1%"`` (relative)."""
    if isinstance(value, Tolerance):
        return value
    if isinstance(value, bool):
        raise TypeError(f"tolerance must be a number or a string like '0.01' or '1%', "
                        f"got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Tolerance(float(value))
    if isinstance(value, str):
        text = value.strip()
        relative = text.endswith("%")
        try:
            number = float(text[:-1] if relative else text)
        except ValueError:
            raise ValueError(f"tolerance must look like '0.01' (absolute) or '1%' (relative), "
                             f"got {value!r}") from None
        return Tolerance(number / 100.0 if relative else number, relative)
    raise TypeError(f"tolerance must be a number or a string like '0.01' or '1%', got {value!r}")


def required_p_lower(noise: Noise, norm: Norm | str, radius: Any, *,
                     convert: bool = False) -> Any:
    """p*(r): the smallest float64 p_lower with ``noise.certified_radius(p*, norm) >= r``.

    Inverts the noise's nondecreasing radius function by bisection on p in (1/2, 1] down to
    adjacent floats. By construction ``certified_radius(p*) >= r`` holds for the returned value
    (it was evaluated), so any p_lower >= p* certifies r. Returns ``inf`` where even p_lower = 1
    does not reach r. ``radius`` is a positive number or array; the result has its shape.
    """
    norm = Norm.parse(norm)
    r = np.asarray(radius, dtype=np.float64)
    if not np.isfinite(r).all() or (r <= 0).any():
        raise ValueError(f"radii must be finite and > 0, got {radius!r}")
    flat = r.ravel()

    def radius_at(p: np.ndarray) -> np.ndarray:
        return np.asarray(noise.certified_radius(p, norm, convert=convert), dtype=np.float64)

    lo = np.full(flat.shape, 0.5)
    hi = np.ones(flat.shape)
    reachable = radius_at(hi) >= flat
    # float64 has 2^52 values in [1/2, 1): bisection reaches adjacent floats in 53 steps
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        open_ = reachable & (mid > lo) & (mid < hi)
        if not open_.any():
            break
        ok = radius_at(mid) >= flat
        hi = np.where(open_ & ok, mid, hi)
        lo = np.where(open_ & ~ok, mid, lo)
    out = np.where(reachable, hi, np.inf).reshape(r.shape)
    return float(out) if out.ndim == 0 else out


# ---------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class StageOutcome:
    """Per input: ``n_a`` successes among ``samples`` estimation samples, ``stage`` (0-based
    index of the stopping stage), the returned ``p_lower`` and ``p_best`` (the best p_lower n
    samples could plausibly give; equal to p_lower at the last stage)."""

    n_a: np.ndarray
    samples: np.ndarray
    stage: np.ndarray
    p_lower: np.ndarray
    p_best: np.ndarray


class AdaptiveRule:
    """The stopping rule of adaptive certification, on counts only (no torch), vectorized over
    inputs: ``run(count, draw)`` drives the stages of ``plan``; the goals are ``radii`` (per
    norm) and/or ``tolerance`` (every norm in ``norms``), and the procedure stops at the first
    stage where every given goal is met.
    """

    def __init__(self, noise: Noise, norms: Sequence[Norm | str], plan: StagePlan, *,
                 radii: Mapping[Norm | str, Sequence[float]] | Sequence[float] | None = None,
                 tolerance: Tolerance | float | str | None = None,
                 convert: bool = False) -> None:
        if isinstance(norms, (str, Norm)):
            norms = [norms]
        self.noise = noise
        self.norms = list(dict.fromkeys(Norm.parse(v) for v in norms))
        if not self.norms:
            raise ValueError("norms must name at least one norm (l1, l2, linf)")
        self.plan = plan
        self.convert = bool(convert)
        if radii is None and tolerance is None:
            raise ValueError("adaptive certification needs a goal: radii=... and/or "
                             "tolerance=...")
        self.radii = self._parse_radii(radii) if radii is not None else {}
        self.tolerance = parse_tolerance(tolerance) if tolerance is not None else None
        #: p*(r) per norm, aligned with ``self.radii``
        self.thresholds = {norm: np.atleast_1d(required_p_lower(noise, norm, list(rs),
                                                                convert=self.convert))
                           for norm, rs in self.radii.items()}
        finite = [t[np.isfinite(t)] for t in self.thresholds.values()]
        self._finite_thresholds = np.unique(np.concatenate(finite)) if finite else np.zeros(0)

    def _parse_radii(self, radii: Mapping[Norm | str, Sequence[float]] | Sequence[float]
                     ) -> dict[Norm, tuple[float, ...]]:
        if isinstance(radii, Mapping):
            parsed = {Norm.parse(k): v for k, v in radii.items()}
        else:
            parsed = {norm: radii for norm in self.norms}
        out: dict[Norm, tuple[float, ...]] = {}
        for norm, values in parsed.items():
            if norm not in self.norms:
                raise ValueError(f"radii are given for {norm.value}, which is not among the "
                                 f"certified norms {', '.join(v.value for v in self.norms)}")
            if isinstance(values, (int, float, np.number)):
                values = [values]
            values = tuple(sorted({float(v) for v in values}))
            if not values or not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"radii for {norm.value} must be finite numbers > 0, got "
                                 f"{values!r}")
            out[norm] = values
        return out

    # -------------------------------------------------------------- bounds
    def radius(self, p_lower: np.ndarray) -> dict[Norm, np.ndarray]:
        """The certified radius of each norm for each p_lower (0 where p_lower <= 1/2)."""
        p = np.asarray(p_lower, dtype=np.float64)
        return {norm: np.asarray(self.noise.certified_radius(p, norm, convert=self.convert),
                                 dtype=np.float64) for norm in self.norms}

    def best_p_lower(self, stage: int, n_a: np.ndarray) -> np.ndarray:
        """The best p_lower the last stage could plausibly return, after ``n_a`` successes in
        the ``sizes[stage]`` samples of ``stage``: its bound at the count ceil(UB * n), UB the
        upper Clopper-Pearson bound at the stage's futility level (1 where that level is 0)."""
        plan = self.plan
        size = plan.sizes[stage]
        beta = plan.futility[stage]
        n_a = np.asarray(n_a, dtype=np.int64)
        if beta > 0.0:
            upper = 1.0 - np.asarray(clopper_pearson_lower(size - n_a, size, beta),
                                     dtype=np.float64)
        else:
            upper = np.ones(n_a.shape)
        count = np.minimum(plan.n, np.ceil(upper * plan.n)).astype(np.int64)
        return np.asarray(clopper_pearson_lower(count, plan.n, plan.alphas[-1]),
                          dtype=np.float64)

    def done(self, p_lower: np.ndarray, p_best: np.ndarray) -> np.ndarray:
        """Whether every goal is met, per input, given the current p_lower and p_best."""
        ok = np.ones(p_lower.shape, dtype=bool)
        if self._finite_thresholds.size:
            t = self._finite_thresholds
            certified = p_lower[:, None] >= t
            futile = p_best[:, None] < t
            ok &= (certified | futile).all(axis=1)
        if self.tolerance is not None:
            current = self.radius(p_lower)
            best = self.radius(np.maximum(p_best, p_lower))
            for norm in self.norms:
                ok &= self.tolerance.met(current[norm], best[norm])
        return ok

    # -------------------------------------------------------------- driver
    def run(self, count: int, draw: Callable[[np.ndarray, int], np.ndarray]) -> StageOutcome:
        """Run the stages for ``count`` inputs. ``draw(active, m)`` must return, for each input
        index in ``active``, the number of times the selected class comes out in ``m`` new
        estimation samples of that input (fresh, independent of all earlier ones)."""
        plan = self.plan
        n_a = np.zeros(count, dtype=np.int64)
        samples = np.zeros(count, dtype=np.int64)
        stage = np.zeros(count, dtype=np.int64)
        p_lower = np.zeros(count, dtype=np.float64)
        p_best = np.zeros(count, dtype=np.float64)
        active = np.arange(count)
        drawn = 0
        last = len(plan.sizes) - 1
        for k, size in enumerate(plan.sizes):
            if active.size == 0:
                break
            new = np.asarray(draw(active, size - drawn), dtype=np.int64)
            if new.shape != active.shape or (new < 0).any() or (new > size - drawn).any():
                raise ValueError(f"draw returned counts {new!r} for {active.size} inputs and "
                                 f"{size - drawn} samples each")
            drawn = size
            n_a[active] += new
            samples[active] = size
            stage[active] = k
            bound = np.asarray(clopper_pearson_lower(n_a[active], size, plan.alphas[k]),
                               dtype=np.float64)
            # the max over stages is covered by the same union bound as each stage alone
            p_lower[active] = np.maximum(p_lower[active], bound)
            if k == last:
                p_best[active] = p_lower[active]
                break
            best = np.maximum(self.best_p_lower(k, n_a[active]), p_lower[active])
            p_best[active] = best
            active = active[~self.done(p_lower[active], best)]
        return StageOutcome(n_a=n_a, samples=samples, stage=stage, p_lower=p_lower,
                            p_best=p_best)

    def decisions(self, p_lower: float, p_best: float, final: bool
                  ) -> dict[Norm, dict[float, str]]:
        """For each requested (norm, r): ``CERTIFIED``, ``FUTILE`` or ``UNCERTIFIED``."""
        out: dict[Norm, dict[float, str]] = {}
        for norm, rs in self.radii.items():
            radius = float(self.noise.certified_radius(float(p_lower), norm,
                                                       convert=self.convert))
            out[norm] = {r: CERTIFIED if radius >= r else (UNCERTIFIED if final else FUTILE)
                         for r in rs}
        return out


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
    norm_list = smoothed.check_norms(norms, convert)
    if plan is None:
        plan = stage_plan(n, level)
    elif plan.n != n or plan.spent() > Fraction(level):
        raise ValueError(f"the stage plan (n={plan.n}, sum of alphas "
                         f"{float(plan.spent())!r}) does not fit n={n} and alpha={level!r}")
    rule = AdaptiveRule(smoothed.noise, norm_list, plan, radii=radii, tolerance=tolerance,
                        convert=convert)
    if not isinstance(xs, torch.Tensor) or xs.dim() < 2:
        raise TypeError(f"xs must be a batch tensor (N, *x.shape), got "
                        f"{type(xs).__name__} {tuple(getattr(xs, 'shape', ()))}")
    count = xs.shape[0]
    gens = list(generators) if generators is not None else [None] * count
    if len(gens) != count:
        raise ValueError(f"got {len(gens)} generators for {count} inputs; give one each")

    selection = smoothed.class_counts_batch(xs, n0, gens)
    top = selection.argmax(axis=1)
    estimation = np.zeros((count, smoothed.num_classes), dtype=np.int64)

    def draw(active: np.ndarray, m: int) -> np.ndarray:
        # each input's next m samples continue its own stream, so all stages together are
        # one i.i.d. sequence per input, whichever inputs share a forward batch
        new = smoothed.class_counts_batch(xs[torch.as_tensor(active)], m,
                                          [gens[i] for i in active])
        estimation[active] += new
        return new[np.arange(active.size), top[active]]

    outcome = rule.run(count, draw)
    last = len(plan.sizes) - 1
    radius = rule.radius(outcome.p_lower)
    best = rule.radius(outcome.p_best)
    out: list[AdaptiveCertificate] = []
    for i in range(count):
        certified = bool(outcome.p_lower[i] > 0.5)
        final = bool(outcome.stage[i] == last)
        out.append(AdaptiveCertificate(
            prediction=int(top[i]) if certified else ABSTAIN,
            p_lower=float(outcome.p_lower[i]),
            radius={norm: float(radius[norm][i]) if certified else 0.0 for norm in norm_list},
            samples=n0 + int(outcome.samples[i]),
            counts=estimation[i].copy(),
            stage=int(outcome.stage[i]),
            best_radius={norm: float(best[norm][i]) for norm in norm_list},
            decisions=rule.decisions(outcome.p_lower[i], outcome.p_best[i], final)))
    return out
