"""Uniform noise on the l2 ball of radius scale: the exact l2 certificate of [YDH+20]."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy.special import betaincinv

from smoothcert.noises._special import floor_to_grid
from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.samplers import l2_sphere
from smoothcert.norms import Norm

__all__ = ["UniformBall"]

#: relative margin (16 ulps) taking float64 evaluation error off the closed form (measured error
#: against 40-digit quadrature: at most 3 ulps), so the radius rounds down
_ROUND_DOWN = 1.0 - 16 * np.finfo(np.float64).eps
#: bits kept of p_lower - 1/2 (a relative loss below 4e-15, 16 ulps)
_BITS = 48


@register_noise("uniform_ball")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UniformBall(Noise):
    """Density proportional to 1{||x||_2 <= scale}; sigma = scale / sqrt(d + 2).

    Sampling at scale 1: U^(1/d) g / ||g||_2 with U ~ Unif[0, 1] and g ~ N(0, I).

    l2 radius (Yang et al. 2020; exact, by the overlap of two balls): a shift v with
    ||v||_2 = r keeps the mass V(r) = 2 P[X_1 > r/2] of the ball, X uniform in the unit ball, and
    the likelihood ratio takes only the values 0, 1 and infinity, so g is certified while
    p_lower - (1 - V(r)) > 1/2. With (1 + X_1)/2 ~ Beta((d+1)/2, (d+1)/2), the spec's
    R = 2 - 4 B^-1_{(d+1)/2,(d+1)/2}(3/4 - p_lower/2); it is evaluated in the equivalent form

        R = 2 scale sqrt(I^-1_{1/2,(d+1)/2}(p_lower - 1/2)),

    from P[|X_1| <= w] = I_{w^2}(1/2, (d+1)/2), which has no cancellation near p_lower = 1/2 or at
    large d (the first form subtracts two numbers close to 2).
    """

    _direct_norms = (Norm.L2,)

    def _unit_sigma(self) -> float:
        return 1.0 / math.sqrt(self.dim + 2.0)

    def _sample_unit(self, batch, *, generator, device, dtype):
        direction = l2_sphere(batch, self.dim, generator=generator, device=device, dtype=dtype)
        u = torch.rand((batch, 1), generator=generator, device=device, dtype=dtype)
        return direction * u.pow_(1.0 / self.dim)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        # p_lower - 1/2 is exact in float64 for p_lower in [1/4, 1] (Sterbenz). betaincinv is
        # noisy at the ulp level, where the radius grows by about an ulp per ulp of p (near
        # p = 1): rounding p - 1/2 down to 48 bits makes the radius non-decreasing in p.
        y = betaincinv(0.5, 0.5 * (self.dim + 1.0), floor_to_grid(p_lower - 0.5, _BITS))
        return 2.0 * np.sqrt(y) * _ROUND_DOWN
