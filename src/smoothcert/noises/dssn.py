"""Deterministic splitting noise (DSSN, [LF21]): splitting noise with one shared offset that
takes only L values on quantized inputs, so the smoothed classifier is computed exactly from L
forward passes; its l1 certificate needs no sampling and has no failure probability."""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from smoothcert.noises._splitting import split_grid
from smoothcert.noises.base import Noise, register_noise
from smoothcert.norms import Norm
from smoothcert.seeds import torch_generator
from smoothcert.validation import check_int

__all__ = ["DeterministicSplittingNoise", "dssn_steps", "dssn_radius", "THREAT_MODEL"]

#: how far (in grid steps) an input may sit from the grid and still count as on it: float32
#: rounding of k / 255 is below 2e-5 steps, a real off-grid value (another quantization, a
#: normalized input) is far more
GRID_TOLERANCE = 1e-3

#: relative margin (16 ulps) that rounds a float64 product down
_ROUND_DOWN = 1.0 - 16 * np.finfo(np.float64).eps

#: the stream key of the template, beside the user's ``template_seed``
_TEMPLATE_STREAM = 210310834

THREAT_MODEL = (
    "l1 perturbations that keep the input on the grid {0, 1/q, ..., 1}^d (q = quantization): "
    "the certificate says that every such x' with ||x' - x||_1 <= radius gets the same "
    "prediction; perturbed inputs off the grid are not covered"
)


@functools.lru_cache(maxsize=16)
def _template(dim: int, length: int, seed: int, device: str) -> torch.Tensor:
    gen = torch_generator(seed, _TEMPLATE_STREAM)
    return torch.randint(0, length, (dim,), generator=gen, dtype=torch.int64).to(device)


#: the largest table of cell centres kept, in entries ((q + 1) L; 2^22 floats: 16 MiB)
_TABLE_ENTRIES = 1 << 22


@functools.lru_cache(maxsize=8)
def _centres(quantization: int, length: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """split_grid of every (a, j) in [0, q] x [0, L), flattened row-major (index a L + j)."""
    a = torch.arange(quantization + 1, device=device).repeat_interleave(length)
    j = torch.arange(length, device=device).repeat(quantization + 1)
    return split_grid(a, j, length, quantization, dtype)


@register_noise("dssn")
@dataclasses.dataclass(frozen=True, kw_only=True)
class DeterministicSplittingNoise(Noise):
    """Deterministic smoothing with splitting noise of Levine & Feizi (ICML 2021,
    arXiv:2103.10834), scale lambda, for inputs on the grid {0, 1/q, ..., 1} (q =
    ``quantization``, 255 for 8-bit images).

    The transformations: L = floor(2 lambda q) offsets and a fixed integer template
    v in {0, ..., L-1}^d drawn from ``template_seed``. For t = 0, ..., L-1, coordinate i uses the
    offset s_i(t) = (((v_i + t) mod L) + 1/2) / q and the cells [s_i(t) + k L / q,
    s_i(t) + (k + 1) L / q) of splitting noise, clipped to [0, 1]; T_t(x)_i is the centre of the
    cell holding x_i. The smoothed classifier is the plurality vote over the L transformations,
    ties broken towards the lower class index, and is evaluated exactly
    (``smoothcert.certify.deterministic``).

    Cell width: L / q, that is 2 lambda rounded down to whole grid steps (on the grid, offsets
    finer than a grid step change nothing; the rounding keeps every cell computation in exact
    integer arithmetic). sigma = lambda / sqrt(3) stays the user's, on the axis of uniform noise.

    Certificate (``dssn_radius``): for a grid point x' with ||x' - x||_1 = m / q, coordinate i
    changes cell for at most q |x'_i - x_i| of the L values of t (the cell boundaries of all
    offsets are the half-integer points, each belonging to one offset), whatever the template,
    so at most m votes move. With A the top class, x' keeps prediction A whenever m <=
    min over B != A of floor((c_A - c_B - [B < A]) / 2). Exact, deterministic; the threat model
    is ``THREAT_MODEL`` (perturbed inputs on the same grid). Inputs off the grid (within
    ``GRID_TOLERANCE`` grid steps of float rounding) are refused.

    ``certified_radius(p_lower)`` is the radius for a lower bound p_lower on the top class's
    vote share when nothing else is known: every grid x' with ||x' - x||_1 < (p_lower - 1/2) L / q
    keeps the prediction (the runner-up may hold all other votes). It equals ``dssn_radius`` for
    a two-class vote up to the closed/open ball; the certificate of an input uses its counts.

    ``perturb`` (training) draws one t per example, uniformly, with the template fixed.
    """

    quantization: int = 255
    template_seed: int = 0

    additive = False
    deterministic = True
    _direct_norms = (Norm.L1,)

    def _validate(self) -> None:
        check_int("quantization", self.quantization, minimum=1)
        check_int("template_seed", self.template_seed, minimum=0)
        object.__setattr__(self, "quantization", int(self.quantization))
        object.__setattr__(self, "template_seed", int(self.template_seed))
        if self.num_transforms < 1:
            raise ValueError(
                f"dssn needs 2 * scale * quantization >= 1 (at least one offset), got scale "
                f"{self.scale!r} and quantization {self.quantization}: sigma must be at least "
                f"{1 / (2 * math.sqrt(3) * self.quantization):.6g}")

    def _unit_sigma(self) -> float:
        return 1.0 / math.sqrt(3.0)

    # ------------------------------------------------------------------ the transformations
    @property
    def num_transforms(self) -> int:
        """L = floor(2 lambda q): the number of transformations, and of forward passes."""
        # a relative 1e-12 lets a scale given as an exact multiple of 1/(2q) survive the
        # sigma <-> scale round trip (it can only widen a cell by that much: no soundness issue)
        return math.floor(2.0 * self.scale * self.quantization * (1.0 + 1e-12))

    @property
    def cell_width(self) -> float:
        """The cell width L / q actually used (2 lambda rounded down to whole grid steps)."""
        return self.num_transforms / self.quantization

    def template(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The template v (int64, shape (dim,)) on ``device``; a function of dim, L and
        ``template_seed`` only. Do not modify it."""
        return _template(self.dim, self.num_transforms, self.template_seed, str(device))

    def grid_indices(self, x: torch.Tensor) -> torch.Tensor:
        """The integers a = q x (int64, same shape) of inputs on the grid {0, 1/q, ..., 1};
        ValueError naming the first value that is not on it."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        q = self.quantization
        scaled = x.detach().to(torch.float64) * q
        a = torch.round(scaled)
        bad = ~((scaled - a).abs() <= GRID_TOLERANCE) | (a < 0) | (a > q)
        if bool(bad.any()):
            where = tuple(int(i) for i in torch.nonzero(bad)[0])
            value = float(x[where])
            raise ValueError(
                f"dssn (quantization={q}) works on inputs on the grid {{0, 1/{q}, ..., 1}} "
                f"only; the entry at index {where} is {value!r} = {value * q:.6g} / {q}, not on "
                f"it. "
                f"Give unnormalized inputs in [0, 1] with the data's quantization (255 for 8-bit "
                f"images, 16 for the digits dataset)")
        return a.to(torch.int64)

    def transform(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """T_t(x) for each row: ``x`` of shape (rows, dim) on the grid (or (1, dim), broadcast),
        ``t`` int64 of shape (rows,) with values in [0, L); result (rows, dim), dtype of x."""
        return self.transform_grid(self.grid_indices(x), t, x.dtype)

    def transform_grid(self, a: torch.Tensor, t: torch.Tensor,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``transform`` for grid integers ``a`` (from ``grid_indices``), without the check."""
        length, q = self.num_transforms, self.quantization
        j = self.template(a.device).unsqueeze(0) + t.reshape(-1, 1)  # in [0, 2L - 1)
        j = torch.where(j >= length, j - length, j)
        if (q + 1) * length > _TABLE_ENTRIES:
            return split_grid(a, j, length, q, dtype)
        # one gather from the table of every (a, j) pair: far faster than the integer
        # arithmetic per entry, and the same numbers
        return _centres(q, length, dtype, str(a.device)).take(a * length + j)

    def _perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        t = torch.randint(0, self.num_transforms, (x.shape[0],), generator=generator,
                          device=x.device)
        return self.transform(x, t)

    # ------------------------------------------------------------------ certificates
    def radius_from_counts(self, counts: np.ndarray) -> np.ndarray:
        """The exact l1 radii (float64, shape counts.shape[:-1]) of vote counts over the L
        transformations: ``dssn_radius(counts, quantization)``."""
        counts = np.asarray(counts)
        totals = counts.sum(axis=-1)
        if np.any(totals != self.num_transforms):
            raise ValueError(f"counts must sum to L = {self.num_transforms} (one vote per "
                             f"transformation), got sums {np.unique(totals).tolist()}")
        return np.asarray(dssn_radius(counts, self.quantization), dtype=np.float64)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        # (p - 1/2) L / q at this scale, divided by the scale that the base multiplies back;
        # the margin takes the rounding of the two products off (never above the truth)
        return (p_lower - 0.5) * (self.cell_width / self.scale) * _ROUND_DOWN

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "offsets": self.num_transforms,
                "cell_width": self.cell_width, "threat_model": THREAT_MODEL}


def dssn_steps(counts: Any) -> Any:
    """The certified l1 radius in grid steps (int64) of vote counts (last axis: classes).

    With A the top class (the lowest index among the largest counts), a perturbation that moves
    m votes keeps A ahead of class B iff c_A - m > c_B + m, or c_A - m = c_B + m and A < B (ties
    go to the lower index). So A is kept for all m <= min over B != A of
    floor((c_A - c_B - [B < A]) / 2), and one more step can lose it (all moved votes A -> B).
    A 1-D ``counts`` gives an int.
    """
    c = np.asarray(counts)
    if c.ndim < 1 or c.shape[-1] < 2 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"counts must be integers with at least 2 classes on the last axis, "
                         f"got dtype {c.dtype} and shape {c.shape}")
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    c = c.astype(np.int64)
    top = np.argmax(c, axis=-1)
    c_top = np.take_along_axis(c, top[..., None], axis=-1)
    index = np.arange(c.shape[-1])
    margin = c_top - c - (index < top[..., None])
    margin = np.where(index == top[..., None], np.iinfo(np.int64).max, margin)
    steps = np.min(margin, axis=-1) // 2
    return int(steps) if steps.ndim == 0 else steps


def dssn_radius(counts: Any, quantization: int) -> Any:
    """The exact certified l1 radius of DSSN vote ``counts`` for inputs on the grid
    {0, 1/q, ..., 1}, q = ``quantization``: ``dssn_steps(counts) / q``, rounded down in
    float64 (never above the rational value). Every grid x' with ||x' - x||_1 <= radius gets
    the same prediction; a 1-D ``counts`` gives a float."""
    q = check_int("quantization", quantization, minimum=1)
    steps = np.asarray(dssn_steps(counts))
    flat = [_steps_to_radius(int(m), q) for m in steps.reshape(-1)]
    radius = np.array(flat, dtype=np.float64).reshape(steps.shape)
    return float(radius) if radius.ndim == 0 else radius


def _steps_to_radius(steps: int, q: int) -> float:
    radius = steps / q
    if Fraction(radius) > Fraction(steps, q):
        radius = math.nextafter(radius, 0.0)
    return radius
