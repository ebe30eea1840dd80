"""Tiny models shared by the certification tests."""

from __future__ import annotations

import torch


class Linear(torch.nn.Module):
    """A fixed linear classifier on 1x4x4 images, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(3, 16, generator=gen))

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.weight.T


class Interrupting(torch.nn.Module):
    """Wraps a model and raises KeyboardInterrupt at the given forward call, as a user's ^C or a killed rank."""

    def __init__(self, model: torch.nn.Module, at_call: int) -> None:
        super().__init__()
        self.model, self.at_call, self.calls = model, at_call, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.at_call:
            raise KeyboardInterrupt
        return self.model(x)
