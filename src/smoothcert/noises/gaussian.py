"""Gaussian noise N(0, scale^2 I): the l2 certificate of Cohen et al. (2019)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.special import ndtri

from smoothcert.noises._special import round_down
from smoothcert.noises.base import Noise, register_noise
from smoothcert.norms import Norm


@register_noise("gaussian")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Gaussian(Noise):
    """Density proportional to exp(-||x||_2^2 / (2 scale^2)); sigma = scale.

    l2 radius (Cohen, Rosenfeld and Kolter 2019, Theorem 1): R = scale * Phi^-1(p_lower),
    tight for a half-space classifier; rounded down by four ulps.
    """

    _direct_norms = (Norm.L2,)

    def _unit_sigma(self) -> float:
        return 1.0

    def _sample_unit(self, batch, *, generator, device, dtype):
        return torch.randn((batch, self.dim), generator=generator, device=device, dtype=dtype)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        # ndtri is within an ulp of Phi^-1 (checked against mpmath): four ulps down
        return round_down(ndtri(p_lower))
