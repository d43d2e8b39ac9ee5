"""User model factories ('tests.problems.quantization.odd_models:NAME') that calibration must refuse."""

from __future__ import annotations

from torch import nn


class _Unused(nn.Module):
    """Flatten -> fc; `spare` is a ReLU that forward never calls: its quantizer sees no data."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)
        self.spare = nn.ReLU()

    def forward(self, x):
        return self.fc(self.flatten(x))


def unused_relu() -> nn.Module:
    return _Unused()


def dead_layer() -> nn.Module:
    """fc1 has zero weights and bias: its output (and relu1's) is an all-zero tensor."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    return model
