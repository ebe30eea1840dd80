"""The fixed normalization layer every model starts with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Normalize"]


class Normalize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std: (x - mean) / std.

    It is the model's first layer, not a data transform, because smoothing noise is added to the
    raw input x in pixel space before this layer: certified radii are then in pixel units, and
    the same checkpoint serves any noise (Cohen et al. 2019 do the same). The statistics are
    buffers, saved with the weights and never trained.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std need one value per channel, got {mean!r}, {std!r}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be > 0, got {std!r}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[-3] != self.mean.shape[0]:
            raise ValueError(
                f"expected inputs (..., {self.mean.shape[0]}, H, W), got shape {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
