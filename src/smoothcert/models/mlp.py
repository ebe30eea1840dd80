"""A small multilayer perceptron for low-dimensional inputs (digits, synthetic points)."""

from __future__ import annotations

import math

from torch import nn

from smoothcert.models.registry import register_model

#: widths of the hidden layers
HIDDEN = (256, 256)


@register_model("mlp")
def mlp(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Flatten, then Linear-ReLU layers of widths ``HIDDEN``, then a linear classifier."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(shape)
    for hidden in HIDDEN:
        layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
