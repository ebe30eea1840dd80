"""Shared pieces of the noise contract: its error, the failure helper and small utilities."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from smoothcert.noises.base import Noise

__all__ = ["NoiseContractError", "default_draws"]


class NoiseContractError(AssertionError):
    """A noise family violates the contract; the message says which part and by how much."""


def _require(condition: bool, message: str | Callable[[], str]) -> None:
    # Not ``assert``: the checks must also run under ``python -O``. A callable message is only
    # built on failure (it may index values that exist only then).
    if not condition:
        raise NoiseContractError(message() if callable(message) else message)


def _label(noise: Noise) -> str:
    shape = ", ".join(f"{k}={v!r}" for k, v in noise.shape_params.items())
    return f"{noise.name}(dim={noise.dim}, sigma={noise.sigma!r}{', ' + shape if shape else ''})"


def default_draws(dim: int) -> int:
    """Draws for the size test: about 2^20 coordinates in all, between 512 and 2^16 draws."""
    return int(min(1 << 16, max(512, (1 << 20) // dim)))


def _generator(seed: int, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def _on_grid(noise: Noise, value: float) -> float:
    """``value`` moved down onto the family's grid {0, 1/q, ..., 1} if it has a quantization."""
    q = getattr(noise, "quantization", None)
    return value if q is None else math.floor(value * q) / q

