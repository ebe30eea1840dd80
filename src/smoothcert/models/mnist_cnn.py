"""The MNIST network of Pal and Sulam (TMLR 2023, Section 6)."""

from __future__ import annotations

from torch import nn

from smoothcert.models.registry import exact_shape, register_model


@register_model("mnist_cnn", fits=exact_shape((1, 28, 28)), normalize=False)
def mnist_cnn(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Conv3x3(1->32)-ReLU, Conv3x3(32->64)-ReLU, MaxPool 2, Flatten (9216),
    Linear(9216->128)-ReLU, Linear(128->classes).

    Pal and Sulam feed raw [0, 1] pixels without normalization, so this architecture's first
    layer is the identity normalization (mean 0, std 1), whatever the dataset's statistics.
    Their paper's line ends in Linear(128, 2) (binary MNIST); their released runs use 10 classes.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(inplace=True),
        nn.Linear(128, num_classes),
    )
