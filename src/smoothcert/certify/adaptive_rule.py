"""The stopping rule of adaptive certification, on counts only (no torch).

Pre-declared estimation stages (``StagePlan``, ``stage_plan``), the goals (requested radii, via
``required_p_lower``, and a ``Tolerance``), and ``AdaptiveRule``, which drives the stages and
stops each input once its goals are decided. The procedure built on it, its guarantee and the
proof are in ``smoothcert.certify.adaptive``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from smoothcert.certify.certificate import check_norms
from smoothcert.noises.base import Noise
from smoothcert.norms import Norm
from smoothcert.stats import check_alpha, check_sample_count, clopper_pearson_lower
from smoothcert.validation import check_float

__all__ = [
    "StagePlan",
    "stage_plan",
    "Tolerance",
    "parse_tolerance",
    "required_p_lower",
    "AdaptiveRule",
    "StageOutcome",
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
    growth = check_float("growth", growth, minimum=1.0, strict_minimum=True)
    final_share = check_float("final_share", final_share, minimum=0.0, maximum=1.0,
                              strict_minimum=True)
    futility = check_float("futility", futility, minimum=0.0, maximum=1.0, strict_maximum=True)
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
        check_float("tolerance", self.value, minimum=0.0)
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
        self.noise = noise
        self.norms = check_norms(noise, norms, convert)
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
