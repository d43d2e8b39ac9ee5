"""The pruning problem on a tiny trained MLP: variables, metric definitions, in-place evaluation,
references, held-out accuracy, config checks."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from dse.core.config import parse_config  # noqa: E402
from dse.core.errors import ConfigError  # noqa: E402
from dse.core.registry import PROBLEMS  # noqa: E402
from problems.pruning.problem import LayerwisePruningProblem  # noqa: E402


def _cfg(root, **pruning):
    return parse_config(
        {
            "experiment": {"name": "p", "problem": "layerwise_pruning"},
            "execution": {"threads": 1},
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            "data": {"name": "digits", "image_size": 8},
            "training": {"epochs": 1},
            "pruning": pruning,
            "output": {"root": str(root)},
        }
    )


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp("pruning"))
    return PROBLEMS.problem_class("layerwise_pruning").from_config(cfg, progress=False)


def _all(problem, keep):
    return {v.name: keep for v in problem.variables}


@pytest.mark.slow  # trains the module's baseline
def test_one_variable_per_linear_layer_with_the_default_percents_kept(problem):
    assert [v.name for v in problem.variables] == ["keep:fc1", "keep:fc"]
    # the contract's order: cheapest, least accurate first; the all-highest configuration is dense
    assert all(v.choices == (10, 20, 30, 50, 75, 100) for v in problem.variables)
    assert list(problem.reference_configurations()) == [f"keep-{k}%" for k in (10, 20, 30, 50, 75, 100)]
    assert problem.reference_configurations()["keep-50%"] == {"keep:fc1": 50, "keep:fc": 50}
    assert problem.bounds("accuracy") == (100.0, 0.0) and problem.bounds("nonzero_weights") is None


@pytest.mark.slow  # trains the module's baseline
def test_nonzero_weights_counts_the_pruned_layers_without_running_the_model(problem, monkeypatch):
    # fc1: 64 x 16 weights + 16 biases; fc: 16 x 10 weights + 10 biases
    assert problem.evaluate(_all(problem, 100), ["nonzero_weights"]) == {
        "nonzero_weights": 64 * 16 + 16 + 160 + 10
    }
    monkeypatch.setattr(problem.model, "forward", lambda x: pytest.fail("a cost metric ran the model"))
    got = problem.evaluate({"keep:fc1": 50, "keep:fc": 10}, ["nonzero_weights", "sparsity"])
    kept = (1024 - 512) + (160 - 144)  # fc keeps 10 %: 160 * 90 // 100 = 144 pruned
    assert got == {"nonzero_weights": kept + 16 + 10, "sparsity": pytest.approx(100 * (512 + 144) / 1184)}


@pytest.mark.slow  # trains the module's baseline
def test_evaluation_prunes_the_one_copy_in_place_and_restores_it(problem, monkeypatch):
    float_acc = problem.reference()["accuracy"]
    assert problem.evaluate(_all(problem, 100), ["accuracy"])["accuracy"] == float_acc
    monkeypatch.setattr(copy, "deepcopy", lambda *a, **k: pytest.fail("an evaluation copied the model"))
    weight = problem.model.fc1.weight
    got = problem.evaluate({"keep:fc1": 20, "keep:fc": 50})
    actual = sum(
        int(torch.count_nonzero(m.weight)) + m.bias.numel() for m in (problem.model.fc1, problem.model.fc)
    )
    assert got["nonzero_weights"] == actual  # the cost metric describes the weights the accuracy ran on
    assert got["accuracy"] < float_acc + 1e-9
    assert problem.model.fc1.weight is weight
    assert torch.equal(
        problem.float_model.fc1.weight, problem.pruner.dense["fc1"]
    )  # the float model untouched
    assert problem.evaluate(_all(problem, 100), ["accuracy"])["accuracy"] == float_acc
    assert torch.equal(problem.model.fc1.weight, problem.float_model.fc1.weight)
    assert problem.evaluate_held_out(_all(problem, 100)) == {
        "test_accuracy": problem.reference()["test_accuracy"]
    }


@pytest.mark.slow  # trains the module's baseline
def test_include_exclude_choose_the_searched_layers_others_stay_dense_and_counted(problem, tmp_path):
    cfg = _cfg(tmp_path, exclude="^fc$", keep=[100, 10, 50, 10])  # sorted, de-duplicated
    p = LayerwisePruningProblem(
        problem.float_model, problem.splits, cfg, problem.reference(), problem.runtime
    )
    assert [(v.name, v.choices) for v in p.variables] == [("keep:fc1", (10, 50, 100))]
    assert p.evaluate({"keep:fc1": 50}, ["nonzero_weights"])["nonzero_weights"] == 512 + 16 + 160 + 10


def test_config_sections_are_checked(tmp_path):
    cfg = _cfg(tmp_path)
    assert cfg.objectives == ["accuracy", "nonzero_weights"]
    bad = [
        {"pruning": {"keeps": [50]}},  # misspelled key
        {"pruning": {"ratios": [0, 50]}},  # the old percent-pruned key
        {"pruning": {"keep": [0, 50]}},  # keeping nothing of a layer is no choice
        {"pruning": {"keep": [50, 120]}},
        {"pruning": {"keep": []}},
        {"pruning": {"exclude": "("}},
        {"objectives": ["accuracy", "weight_bits"]},  # a quantization metric
    ]
    for extra in bad:
        with pytest.raises(ConfigError):
            parse_config({"experiment": {"problem": "layerwise_pruning"}, **extra})
