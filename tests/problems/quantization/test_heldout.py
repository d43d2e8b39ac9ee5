"""Held-out accuracy against a hand computation: weights quantized by the formula, the float model
run on the test split, correct predictions counted here (no activation quantizers, so the formula is
all there is)."""

import copy

import pytest
import torch

from dse.core.config import parse_config
from dse.core.registry import PROBLEMS
from problems.quantization.zoo.data import load_dataset


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    cfg = parse_config(
        {
            "experiment": {"name": "q"},
            "execution": {"threads": 2},
            "model": {"name": "mlp", "options": {"hidden": [32]}},
            "data": {"name": "digits", "image_size": 8},
            "training": {"epochs": 2},
            "quantization": {
                "weights": {"calibrator": "max", "per_channel": True},
                "activations": {"types": [], "input": False},  # weights only: the formula below is exact
            },
            "output": {"root": str(root)},
        }
    )
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)


@pytest.fixture(scope="module")
def splits(problem):
    """The data loaded afresh from the config (not the problem's own tensors)."""
    return load_dataset(problem.cfg.data, seed=problem.cfg.data.seed)


def _by_hand(problem, bits: dict[str, int], data) -> tuple[int, int]:
    """(correct predictions, samples) of the float model whose weights are quantized per output
    channel, symmetric narrow range, scale = max|w_c| / (2^(b-1) - 1), on one split (x, y)."""
    model = copy.deepcopy(problem.float_model).eval()
    layers = dict(model.named_modules())
    for name, b in bits.items():
        w = layers[name[2:]].weight.detach().double()
        qmax = 2 ** (b - 1) - 1
        scale = w.abs().amax(dim=1, keepdim=True) / qmax
        layers[name[2:]].weight.data = (torch.round(w / scale).clamp(-qmax, qmax) * scale).float()
    with torch.no_grad():
        correct = (model(data.x).argmax(1) == data.y).sum().item()
    return correct, len(data.y)


def _count(accuracy: float, n: int) -> int:
    """The correct predictions behind an accuracy in percent (and it must be a whole count)."""
    count = round(accuracy * n / 100)
    assert accuracy == pytest.approx(100.0 * count / n, rel=1e-12, abs=1e-12)
    return count


def test_held_out_accuracy_is_the_test_split_under_the_given_bits(problem, splits):
    assert [v.name for v in problem.variables] == ["w:fc1", "w:fc"]
    configs = [
        {"w:fc1": 2, "w:fc": 2},
        {"w:fc1": 3, "w:fc": 8},
        {"w:fc1": 8, "w:fc": 2},
        {"w:fc1": 8, "w:fc": 8},
    ]
    got = [problem.evaluate_held_out(values) for values in configs]
    want = [_by_hand(problem, values, splits.test) for values in configs]
    assert all(set(g) == {"test_accuracy"} for g in got)
    n = want[0][1]
    assert [_count(g["test_accuracy"], n) for g in got] == [c for c, _ in want]  # exactly the same count
    assert len(set(want)) > 1  # the bits matter (2 bits cost accuracy): the check is not vacuous
    # the held-out split is the test split, not the validation one
    val = [_by_hand(problem, values, splits.val) for values in configs]
    assert val != want
    # validation is untouched: evaluate() still measures the validation split, after held-out runs
    for values, v in zip(configs, val):
        problem.evaluate_held_out(configs[0])
        assert _count(problem.evaluate(values, ["accuracy"])["accuracy"], v[1]) == v[0]
