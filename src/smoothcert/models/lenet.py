"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for small images."""

from __future__ import annotations

from torch import nn

from smoothcert.models.registry import image_at_least, register_model


@register_model("lenet", fits=image_at_least(12))
def lenet(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Conv5x5(C->6, padding 2)-ReLU-MaxPool2, Conv5x5(6->16)-ReLU-MaxPool2, Linear->120-ReLU,
    Linear(120->84)-ReLU, Linear(84->classes). MNIST 28x28 gives the classic 16x5x5 features."""
    channels, height, width = shape

    def features(size: int) -> int:
        return (size // 2 - 4) // 2

    return nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * features(height) * features(width), 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )
