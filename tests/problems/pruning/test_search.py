"""The framework's greedy and ilp searches on the pruning problem: both rely on the `Problem` contract
(a higher choice keeps more weights: costlier, more accurate; all-highest = dense), start from or
measure against the dense model, and find a feasible configuration that prunes something."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import dse.api as dse  # noqa: E402

DENSE = 64 * 16 + 16 + 16 * 10 + 10  # hidden [16]: fc1 and fc weights plus biases


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("pruning-search")  # one cached float baseline for both searches


@pytest.mark.parametrize("algorithm", ["greedy", "ilp"])
def test_greedy_and_ilp_find_a_feasible_pruned_configuration(root, algorithm):
    cfg = dse.config(
        {
            "experiment": {"name": "tiny", "problem": "layerwise_pruning"},
            "execution": {"threads": 1},
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            "data": {"name": "digits", "image_size": 8},
            "training": {"epochs": 3},
            "objectives": ["accuracy", "nonzero_weights"],
            "constraints": {"max_accuracy_drop": 2.0},
            "algorithm": {"name": algorithm, "budget": 40},
            "output": {"root": str(root / "results"), "plots": False},
        }
    )
    result = dse.run(cfg)
    threshold = result.summary["constraint"]["threshold"]
    assert result.summary["status"] == "finished" and len(result.evaluations) > 2
    front = result.front
    assert front["feasible"].all() and (front["accuracy"] >= threshold).all()
    pruned = front[front["nonzero_weights"] < DENSE]
    assert len(pruned) >= 1  # not just the dense model: some layer is pruned within the constraint
    assert (pruned[["keep:fc1", "keep:fc"]] < 100).any(axis=1).all()
