"""Checks of the noise contract for deterministic families (``noise.deterministic``)."""

from __future__ import annotations

import numpy as np
import torch

from smoothcert.noises.base import Noise
from smoothcert.noises.checks._common import _generator, _label, _on_grid, _require

__all__ = ["check_deterministic"]


def check_deterministic(noise: Noise, device: torch.device | str = "cpu") -> None:
    """A deterministic family enumerates L >= 1 transformations (``num_transforms``,
    ``grid_indices``, ``transform_grid``), ``perturb`` draws each of them and nothing else, and
    ``radius_from_counts`` gives one float64 radius >= 0 per count vector."""
    if not noise.deterministic:
        return
    device = torch.device(device)
    length = noise.num_transforms
    _require(isinstance(length, int) and length >= 1,
             f"{_label(noise)} enumerates {length!r} transformations")
    # every draw is checked in 2 L draws of this instance; that all L transformations are drawn,
    # in 20 L draws of the family in at most 16 dimensions (cheaper, same sampling code)
    _check_enumeration(noise, 2, device)
    _check_enumeration(type(noise).create(dim=min(noise.dim, 16), scale=noise.scale,
                                          **noise.shape_params), 20, device)
    counts = np.zeros((3, 4), dtype=np.int64)
    counts[0, 0] = length
    counts[1, 1] = length
    counts[2, :2] = (length - length // 2, length // 2)
    radius = noise.radius_from_counts(counts)
    _require(isinstance(radius, np.ndarray) and radius.dtype == np.float64
             and radius.shape == (3,) and bool(np.all(radius >= 0)),
             f"{_label(noise)}.radius_from_counts gave {radius!r} for three count vectors")


def _check_enumeration(noise: Noise, per: int, device: torch.device) -> None:
    length = noise.num_transforms
    x = torch.full((1, noise.dim), _on_grid(noise, 0.25), dtype=torch.float64, device=device)
    every = noise.transform_grid(noise.grid_indices(x), torch.arange(length, device=device),
                                 torch.float64)
    draws = noise.perturb(x.expand(per * length, -1), _generator(0, device))
    # match each row to the first enumerated transformation with the nearest random projection
    # (equal rows match the same one), then require exact equality with it
    weights = torch.randn(noise.dim, generator=_generator(1, device), dtype=torch.float64,
                          device=device)
    signature = every @ weights

    def nearest(rows: torch.Tensor) -> torch.Tensor:
        return ((rows @ weights)[:, None] - signature[None, :]).abs().argmin(dim=1)

    drawn = nearest(draws)
    _require(torch.equal(draws, every[drawn]), f"{_label(noise)}.perturb drew a "
             f"transformation outside its {length} enumerated ones")
    if per < 20:
        return
    distinct = torch.unique(nearest(every)).numel()
    # 20 L uniform draws miss a given t with probability e^-20
    seen = torch.unique(drawn).numel()
    _require(seen == distinct, f"{_label(noise)}.perturb drew {seen} of its {distinct} "
             f"distinct transformations in {per * length} draws")

