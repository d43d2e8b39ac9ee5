"""Layer depths by hand: longest path in the fx graph, and the call-order fallback."""

from __future__ import annotations

import torch
from torch import nn

from problems.quantization.graph import (
    CALL_ORDER,
    FX,
    call_order_depths,
    fx_depths,
    may_run_in_place,
    module_depths,
)


class Residual(nn.Module):
    """conv1 -> relu1 -> conv2 -> (+ skip(x)) -> relu2 -> pool -> flatten -> fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.skip = nn.Conv2d(1, 2, 1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.relu1(self.conv1(x)))
        z = self.relu2(y + self.skip(x))
        return self.fc(torch.flatten(self.pool(z), 1))


class Wrapped(nn.Module):
    """A block fx inlines, a module called twice, and a layer after both."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Residual()
        self.act = nn.ReLU()
        self.head = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.act(self.block(x)) * 2))


class Branchy(nn.Module):
    """Data-dependent control flow: symbolic tracing fails."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = self.relu(self.fc1(x))
        return self.fc2(self.relu(x))


def test_longest_path_through_a_skip_connection():
    d = fx_depths(Residual())
    # input 0; conv1 1, relu1 2, conv2 3; skip 1; add max(3, 1) + 1 = 4; relu2 5; pool 6; flatten 7; fc 8
    expected = {"conv1": 1, "relu1": 2, "conv2": 3, "skip": 1, "relu2": 5, "pool": 6, "fc": 8}
    assert {n: d[n] for n in expected} == expected


def test_inlined_block_and_repeated_module_take_their_deepest_node():
    d = fx_depths(Wrapped())
    # block = its fc (8); act first at 9, mul 10, act again 11; head 12
    assert d["block"] == 8 and d["block.relu2"] == 5 and d["act"] == 11 and d["head"] == 12


def test_module_depths_report_fx_and_only_the_wanted_names():
    depths, source = module_depths(Residual(), ["skip", "conv2", "skip"], torch.randn(1, 1, 4, 4))
    assert source == FX and depths == {"skip": 1, "conv2": 3}


def test_untraceable_model_falls_back_to_the_call_order():
    x = torch.ones(2, 4)
    assert call_order_depths(Branchy(), x) == {"fc1": 1, "relu": 3, "fc2": 4}  # relu called 2nd and 3rd
    depths, source = module_depths(Branchy(), ["fc1", "relu", "fc2"], x)
    assert source == CALL_ORDER and depths == {"fc1": 1, "relu": 3, "fc2": 4}
    # a container finishes after its children; a module never called (fx misses it too) is deepest + 1
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    model = nn.Sequential(seq, nn.Linear(4, 1))
    assert call_order_depths(model, x) == {"0.0": 1, "0.1": 2, "0": 3, "1": 4}
    residual = Residual()
    residual.spare = nn.ReLU()  # never called: fx misses it, so does the call order
    depths, source = module_depths(residual, ["skip", "spare"], torch.randn(1, 1, 4, 4))
    assert source == CALL_ORDER and depths == {"skip": 4, "spare": 8}  # conv1 relu1 conv2 skip ... fc 7


class Aliasing(nn.Module):
    """ReLUs whose input is fresh and read once (safe), read twice, the model input, reached through
    an Identity (a folded BatchNorm), and one module called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.conv2 = nn.Conv2d(2, 2, 1)
        self.bn = nn.Identity()
        self.safe = nn.ReLU()
        self.shared = nn.ReLU()
        self.on_input = nn.ReLU()
        self.via_identity = nn.ReLU()
        self.twice = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.safe(self.conv(x))  # conv output: fresh, one reader
        b = self.conv2(a)
        c = self.shared(b) + b  # b is read twice: overwriting it would change the sum
        d = self.on_input(x)  # the caller's tensor
        e = self.via_identity(self.bn(self.conv2(a)))
        return self.twice(c) + self.twice(e) + d


def test_only_relus_whose_input_is_fresh_and_read_once_may_run_in_place():
    assert may_run_in_place(Aliasing(), (nn.ReLU,)) == {"safe", "via_identity"}


def test_in_place_relus_change_no_value_and_the_quantized_resnet_gets_them():
    from problems.quantization.qmodel import QuantizedModel
    from problems.quantization.zoo.resnet import resnet8

    torch.manual_seed(0)
    model = resnet8(in_channels=1, width=4).eval()
    x = torch.randn(16, 1, 8, 8)
    q = QuantizedModel(model)
    q.calibrate([x])
    relus = [m for m in q.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(m.inplace for m in relus)  # every ReLU of a ResNet reads a fresh tensor
    with torch.inference_mode():
        fast = q(x)
        for m in relus:
            m.inplace = False
        assert torch.equal(fast, q(x))
    assert not any(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))  # the float model untouched
