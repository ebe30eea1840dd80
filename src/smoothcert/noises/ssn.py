"""Splitting noise (SSN, [LF21]): a random split of each coordinate's line into cells of width
2 scale; the classifier sees the clipped centre of the cell holding x. Certifies l1 like uniform
noise of the same scale."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from smoothcert.noises._splitting import split_continuous
from smoothcert.noises.base import Noise, register_noise
from smoothcert.norms import Norm

__all__ = ["SplittingNoise"]


@register_noise("ssn")
@dataclasses.dataclass(frozen=True, kw_only=True)
class SplittingNoise(Noise):
    """Randomized splitting noise of Levine & Feizi (ICML 2021, arXiv:2103.10834), scale lambda.

    T(x): for each coordinate an offset s_i ~ U[0, 2 lambda), independent across coordinates and
    draws; x_i is replaced by the centre of the cell [s_i + 2 lambda k, s_i + 2 lambda (k + 1))
    that contains it, the cell first clipped to [0, 1] (``smoothcert.noises._splitting``).

    Certificate ([LF21] Theorem 1): a shift v changes coordinate i's cell with probability
    min(1, |v_i| / (2 lambda)), so T(x) and T(x + v) differ with probability at most
    ||v||_1 / (2 lambda) under the coupling that shares the offsets, whence the l1 radius
    R = 2 lambda (p_lower - 1/2), exactly uniform noise's. It needs no independence between
    coordinates (which ``dssn`` exploits) and holds for every x in R^d (inputs are meant to lie
    in [0, 1], the range the cells are clipped to). Only l1 is certified directly; the
    l-infinity certificate of uniform noise used independent coordinates and does not carry over.

    ``sigma = lambda / sqrt(3)``, the sigma of uniform noise with the same l1 certificate, so that
    the two are compared on one axis. It is also the RMS of T(x) - x for a coordinate whose cell
    lies inside [0, 1]; clipping makes the displacement smaller near the edges.
    """

    additive = False
    _direct_norms = (Norm.L1,)

    def _unit_sigma(self) -> float:
        return 1.0 / math.sqrt(3.0)

    def _perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        width = 2.0 * self.scale
        work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        offsets = torch.rand(x.shape, generator=generator, device=x.device, dtype=work)
        return split_continuous(x, offsets * width, width)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        # exact in float64 for p_lower in [1/4, 1] (Sterbenz), as for uniform noise
        return 2.0 * (p_lower - 0.5)
