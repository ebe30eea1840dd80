"""The CIFAR ResNets of He et al. (CVPR 2016, Section 4.2): ResNet-20 and ResNet-110.

Depth 6n + 2: a 3x3 convolution with 16 filters, three stages of n basic blocks with 16, 32 and
64 filters (the first block of stages 2 and 3 halves the resolution), global average pooling and
a linear classifier. Shortcuts are identities; where the shape changes the shortcut subsamples
by 2 and pads the new channels with zeros (the paper's option A), so the networks have the
paper's 0.27M (ResNet-20) and 1.7M (ResNet-110) parameters. ResNet-110 is the network of Cohen
et al. (2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smoothcert.models.registry import image_at_least, register_model


class _PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad channels to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels
                         else _PadShortcut(in_channels, out_channels, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, width = [], 16
        for stage, out in enumerate((16, 32, 64)):
            for i in range(blocks):
                layers.append(BasicBlock(width, out, 2 if stage and i == 0 else 1))
                width = out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register_model("resnet20", fits=image_at_least(8))
def resnet20(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return CifarResNet(20, shape[0], num_classes)


@register_model("resnet110", fits=image_at_least(8))
def resnet110(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return CifarResNet(110, shape[0], num_classes)
