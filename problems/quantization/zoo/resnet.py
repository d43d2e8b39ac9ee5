"""CIFAR-style ResNets (He et al. 2016, sec. 4.2): depth 6n+2, 3 stages of n blocks, widths w, 2w, 4w.

Every ReLU is its own `nn.ReLU` module (never reused, never `F.relu`) so that activation quantizers
can hook module outputs. Module names, per block `layerS.B`:

    conv1 -> bn1 -> relu1 -> conv2 -> bn2 -> (+ shortcut(x)) -> relu2

`shortcut` is `None` (identity) when the shape is kept, else an option-B projection
`nn.Sequential(conv 1x1, BN)` (`shortcut.0`, `shortcut.1`). The stem is `conv1, bn1, relu`,
the head `avgpool` (global average pooling), `fc`. Every conv is directly followed by its BN, so
BN folding can pair `X.conv1`/`X.bn1`, `X.conv2`/`X.bn2` and `X.shortcut.0`/`X.shortcut.1`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(out + identity)


class CifarResNet(nn.Module):
    def __init__(
        self, blocks_per_stage: int, *, in_channels: int = 3, width: int = 16, num_classes: int = 10
    ) -> None:
        super().__init__()
        if blocks_per_stage < 1 or in_channels < 1 or width < 1 or num_classes < 1:
            raise ValueError(
                f"blocks_per_stage, in_channels, width and num_classes must be >= 1 "
                f"(got {blocks_per_stage}, {in_channels}, {width}, {num_classes})"
            )
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(width, width, blocks_per_stage, stride=1)
        self.layer2 = self._stage(width, 2 * width, blocks_per_stage, stride=2)
        self.layer3 = self._stage(2 * width, 4 * width, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        self._init_weights()

    @staticmethod
    def _stage(in_planes: int, planes: int, n: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes, 1) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: every block starts as the identity,
        # which makes these small nets train faster and more reliably (Goyal et al. 2017).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet8(*, in_channels: int = 3, width: int = 16, num_classes: int = 10) -> CifarResNet:
    return CifarResNet(1, in_channels=in_channels, width=width, num_classes=num_classes)


def resnet20(*, in_channels: int = 3, width: int = 16, num_classes: int = 10) -> CifarResNet:
    return CifarResNet(3, in_channels=in_channels, width=width, num_classes=num_classes)


def resnet32(*, in_channels: int = 3, width: int = 16, num_classes: int = 10) -> CifarResNet:
    return CifarResNet(5, in_channels=in_channels, width=width, num_classes=num_classes)
