"""Uniform noise on the cube [-scale, scale]^d: the l1 and l-infinity certificates of [YDH+20]."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from smoothcert.noises.base import Noise, register_noise
from smoothcert.norms import Norm

__all__ = ["Uniform"]

#: relative margin (16 ulps) taking float64 evaluation error off a closed form, so it rounds down
_ROUND_DOWN = 1.0 - 16 * np.finfo(np.float64).eps


@register_noise("uniform")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Uniform(Noise):
    """Density proportional to 1{||x||_inf <= scale}; sigma = scale / sqrt(3).

    Both radii are exact for this noise (Yang et al. 2020, Section 3.3 and Appendix): a shift v
    moves out of the cube a mass 1 - prod_i (1 - |v_i| / (2 scale)) and the likelihood ratio takes
    only the values 0, 1 and infinity, so the worst-case classifier sits in the uncovered part.

    - l1: R = 2 scale (p_lower - 1/2); the worst shift is along one axis (tight for the half-space
      x_1 <= b).
    - l-inf: R = 2 scale (1 - (3/2 - p_lower)^(1/d)); the worst shift is along a diagonal, where the
      cube and its shift overlap in mass (1 - R / (2 scale))^d.
    """

    _direct_norms = (Norm.L1, Norm.LINF)

    def _unit_sigma(self) -> float:
        return 1.0 / math.sqrt(3.0)

    def _sample_unit(self, batch, *, generator, device, dtype):
        u = torch.rand((batch, self.dim), generator=generator, device=device, dtype=dtype)
        return u.mul_(2.0).sub_(1.0)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        # p_lower - 1/2 is exact in float64 for p_lower in [1/4, 1] (Sterbenz), so the l1 radius
        # is exact and needs no margin.
        excess = p_lower - 0.5
        if norm is Norm.L1:
            return 2.0 * excess
        # 1 - (1 - excess)^(1/d) without cancellation: at d = 150528 the power is within 5e-6
        # of 1, and the naive form would lose ten digits.
        return -2.0 * np.expm1(np.log1p(-excess) / self.dim) * _ROUND_DOWN
