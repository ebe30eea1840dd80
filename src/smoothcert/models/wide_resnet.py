"""Wide residual networks (Zagoruyko and Komodakis, BMVC 2016); WRN-40-2 is the CIFAR-10
network of Yang et al. (2020).

Depth 6n + 4 with widening factor k: a 3x3 convolution with 16 filters, three stages of n
pre-activation blocks (BN-ReLU-Conv3x3, BN-ReLU-Conv3x3) with 16k, 32k and 64k filters (stages 2
and 3 start with stride 2; a 1x1 convolution matches shapes on the shortcut), BN-ReLU, global
average pooling, linear classifier. No dropout. WRN-40-2 has 2.2M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smoothcert.models.registry import image_at_least, register_model


class WideBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = (None if stride == 1 and in_channels == out_channels
                         else nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        # the projection sees the pre-activated input, as in the authors' implementation
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        blocks = (depth - 4) // 6
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        layers, width = [], 16
        for stage, out in enumerate((16 * widen, 32 * widen, 64 * widen)):
            for i in range(blocks):
                layers.append(WideBlock(width, out, 2 if stage and i == 0 else 1))
                width = out
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.layers(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model("wrn40_2", fits=image_at_least(8))
def wrn40_2(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return WideResNet(40, 2, shape[0], num_classes)
