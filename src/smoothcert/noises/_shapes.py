"""Helpers shared by the shape-parameterized families: parameter checks and radial samplers."""

from __future__ import annotations

import math

import torch

from smoothcert.noises.samplers import standard_gamma

__all__ = ["check_exponent", "check_log_unit_sigma", "radial_gamma", "working_dtype"]

# Unit draws with sigma above this may leave float32's range (3e38) before the base class scales
# them down, so they are computed in float64 and cast after scaling.
_FLOAT32_SAFE_SIGMA = 1e25


def check_exponent(name: str, value: object) -> float:
    """A shape exponent must be a finite number > 0; returns it as a float."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_log_unit_sigma(log_sigma: float, detail: str) -> float:
    """exp(log_sigma), or ValueError when the unit sigma overflows float64 (extreme shapes)."""
    if not log_sigma < 700.0:
        raise ValueError(f"{detail}: the noise's unit sigma exp({log_sigma:.4g}) overflows "
                         "float64; choose a larger exponent")
    return math.exp(log_sigma)


def working_dtype(unit_sigma: float, dtype: torch.dtype) -> torch.dtype:
    """The dtype to draw unit samples in: float64 where float32 could overflow."""
    return torch.float64 if unit_sigma > _FLOAT32_SAFE_SIGMA else dtype


def radial_gamma(shape: float, k: float, batch: int, *, generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
    """r = Z^(1/k) with Z ~ Gamma(shape), as a (batch, 1) float64 column."""
    z = standard_gamma(shape, batch, generator=generator, device=device, dtype=torch.float64)
    return torch.exp(torch.log(z) / k).unsqueeze(1)
