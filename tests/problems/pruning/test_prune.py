"""Magnitude pruning against hand computation, and the in-place swap: cached masks, exact restore."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from problems.pruning.prune import (  # noqa: E402
    MagnitudePruner,
    magnitude_mask,
    prunable_layers,
    pruned_count,
)

W = [[0.5, -0.1, 0.3, -0.8], [0.2, 0.05, -0.6, 0.4]]


def _linear() -> nn.Linear:
    fc = nn.Linear(4, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(W))
        fc.bias.copy_(torch.tensor([0.7, -0.3]))
    return fc


def test_keeping_half_of_a_linear_layer_zeroes_its_four_smallest_magnitudes():
    # |w| sorted: 0.05, 0.1, 0.2, 0.3 | 0.4, 0.5, 0.6, 0.8 -> 8 * (100 - 50) // 100 = 4 pruned
    keep = magnitude_mask(torch.tensor(W), 50)
    assert keep.tolist() == [[True, False, False, True], [False, False, True, True]]
    assert magnitude_mask(torch.tensor(W), 75).tolist() == [  # 8 * 25 // 100 = 2 pruned
        [True, False, True, True],
        [True, False, True, True],
    ]
    assert magnitude_mask(torch.tensor(W), 10).sum().item() == 1  # floor(7.2) = 7 pruned: only -0.8 left
    assert magnitude_mask(torch.tensor(W), 100).all() and not magnitude_mask(torch.tensor(W), 0).any()


def test_conv_counts_round_down_and_ties_go_by_position():
    w = torch.arange(1.0, 9.0).view(2, 1, 2, 2)  # 8 weights, |w| = 1..8
    keep = magnitude_mask(w, 30)  # 8 * (100 - 30) // 100 = 5 pruned (5.6 rounded down)
    assert pruned_count(8, 30) == 5 and pruned_count(8, 100) == 0 and pruned_count(8, 1) == 7
    assert keep.flatten().tolist() == [False] * 5 + [True] * 3
    ties = magnitude_mask(torch.ones(2, 2), 50)  # equal magnitudes: the first two positions go
    assert ties.flatten().tolist() == [False, False, True, True]


def test_pruner_applies_counts_and_restores_in_place():
    model = nn.Sequential(_linear(), nn.ReLU(), nn.Conv1d(1, 1, 1, bias=False), nn.BatchNorm1d(1))
    layers = prunable_layers(model, ["Linear", "Conv1d"])
    assert list(layers) == ["0", "2"]  # BatchNorm is not prunable
    pruner = MagnitudePruner(model, layers)
    fc = model[0]
    param, ptr = fc.weight, fc.weight.data_ptr()
    original = fc.weight.detach().clone()

    assert pruner.keeps == {"0": 100, "2": 100}  # dense to begin with
    pruner.apply({"0": 50})
    expected = torch.tensor([[0.5, 0.0, 0.0, -0.8], [0.0, 0.0, -0.6, 0.4]])
    assert torch.equal(fc.weight.detach(), expected)
    assert torch.equal(fc.bias.detach(), torch.tensor([0.7, -0.3]))  # biases are never pruned
    # 4 weights + 2 biases of the Linear, 1 weight of the dense Conv1d; 4 of 9 weights are zero
    counts = pruner.counts({"0": 50})
    assert counts == {"nonzero_weights": 4 + 2 + 1, "sparsity": pytest.approx(100 * 4 / 9)}
    assert counts["nonzero_weights"] == sum(
        int(torch.count_nonzero(m.weight)) + (m.bias.numel() if m.bias is not None else 0)
        for m in layers.values()
    )

    mask = pruner.mask("0", 50)
    pruner.apply({"0": 100})
    assert torch.equal(fc.weight.detach(), original)  # back to 100 % kept: the trained weights, bit for bit
    pruner.apply({"0": 10})
    assert torch.count_nonzero(fc.weight).item() == 1
    pruner.apply({"0": 30})  # 10 -> 30 %: its mask comes from the dense weights, not the pruned ones
    # 8 * 70 // 100 = 5 pruned: 0.5, -0.8 and -0.6 are left
    assert torch.equal(fc.weight.detach(), torch.tensor([[0.5, 0.0, 0.0, -0.8], [0.0, 0.0, -0.6, 0.0]]))
    pruner.apply({"0": 50})
    assert torch.equal(fc.weight.detach(), expected)
    assert pruner.mask("0", 50) is mask and pruner.masks_computed == 3  # 50, 10 and 30 %, once each
    assert fc.weight is param and fc.weight.data_ptr() == ptr  # swapped in place: no new module or tensor
