"""Exact early rejection on a real quantization problem (a tiny MLP on digits, 2 epochs).

Over 150 random configurations and thresholds taken from their accuracies (quantiles, a threshold
exactly at a configuration's accuracy, one validation sample above and below it, and within and just
past the feasibility rule's 1e-9 tolerance), the feasibility decided with early rejection is that of
the full evaluation: not a single difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dse.core.config import parse_config
from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Rejected
from dse.core.registry import PROBLEMS
from dse.core.space import SearchSpace
from dse.run.evaluator import Evaluator
from dse.run.journal import Journal
from problems.quantization.evaluation import batch_cuts, percent, top1


def test_top1_rejects_exactly_where_the_full_accuracy_misses_the_limit():
    """The counting itself, on planted predictions: half the trials put every wrong one before the last
    batch, so that a limit off by one sample (or by the 1e-9 tolerance) rejects a feasible one."""
    rng = np.random.default_rng(0)
    n, checked, rejected = 359, 0, 0
    cuts = batch_cuts(n, 16, 64)
    x, y = torch.arange(n), torch.zeros(n, dtype=torch.long)
    batches = [(x[a:b], y[a:b]) for a, b in cuts]
    for trial in range(80):
        wrong = int(rng.integers(0, 40))
        preds = torch.zeros(n, dtype=torch.long)
        preds[rng.choice(cuts[-1][0] if trial % 2 else n, size=wrong, replace=False)] = 1

        def model(xb: torch.Tensor, preds: torch.Tensor = preds) -> torch.Tensor:
            return torch.nn.functional.one_hot(preds[xb], 2).float()

        acc = top1(model, batches)
        assert acc == percent(n - wrong, n)
        for c in (n - wrong - 1, n - wrong, n - wrong + 1):
            for t in (percent(c, n) + d for d in (0.0, 0.5e-9, 2e-9, -2e-9)):
                constraint = Constraint("accuracy", "max", t)
                limit = constraint.worst_feasible
                try:
                    decided = constraint.feasible({"accuracy": top1(model, batches, limit)})
                except Rejected as r:
                    rejected += 1
                    assert acc <= r.bound < limit
                    decided = False
                assert decided == constraint.feasible({"accuracy": acc}), (wrong, t)
                checked += 1
    assert checked == 80 * 12 and rejected > 100


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    cfg = parse_config(
        {
            "experiment": {"name": "reject"},
            "execution": {"threads": 1, "batch_size": 64},
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            # batches of 16, 32, 64, 64, ...: a rejection can stop after 16 validation samples
            "data": {
                "name": "digits",
                "image_size": 8,
                "calib_samples": 64,
                "first_batch_size": 16,
            },
            "training": {"epochs": 2},
            "search_space": {"weights": {"choices": [2, 3, 4, 8]}, "activations": {"choices": [2, 3, 4, 8]}},
            "output": {"root": str(tmp_path_factory.mktemp("reject"))},
        }
    )
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)


@pytest.fixture(scope="module")
def configurations(problem):
    space = SearchSpace(problem.variables)
    values = [space.decode(g) for g in space.random(np.random.default_rng(0), 150)]
    return values, [problem.evaluate(v, ["accuracy"])["accuracy"] for v in values]


def _thresholds(problem, accuracies: list[float]) -> list[float]:
    n = len(problem.engine.splits.val.y)
    spread = list(np.quantile(accuracies, np.linspace(0.05, 0.95, 9)))
    at = []
    for acc in sorted(set(accuracies))[:: max(1, len(set(accuracies)) // 5)]:
        correct = round(acc * n / 100)
        assert percent(correct, n) == acc
        at += [acc, percent(correct + 1, n), percent(correct - 1, n), acc + 0.5e-9, acc + 2e-9, acc - 2e-9]
    return spread + at


@pytest.mark.slow  # trains a model
def test_feasibility_with_early_rejection_is_that_of_the_full_evaluation(problem, configurations):
    values, accuracies = configurations
    n = len(problem.engine.splits.val.y)
    thresholds = _thresholds(problem, accuracies)
    differences, rejected, early, at_threshold = 0, 0, 0, 0
    for t in thresholds:
        constraint = Constraint("accuracy", "max", float(t))
        limits = {"accuracy": constraint.worst_feasible}
        for v, acc in zip(values, accuracies, strict=True):
            full = constraint.feasible({"accuracy": acc})
            at_threshold += acc == t
            try:
                got = problem.evaluate(v, ["accuracy", "weight_bits"], reject_worse_than=limits)
                assert got["accuracy"] == acc  # not rejected: the full value itself
                decided = constraint.feasible(got)
            except Rejected as r:
                rejected += 1
                assert acc <= r.bound < limits["accuracy"]  # the bound is sound and proves infeasibility
                assert r.metrics["weight_bits"] > 0 and "accuracy" not in r.metrics
                early += f" of {n} samples" in r.detail and not r.detail.endswith(f"{n} of {n} samples")
                decided = False
            differences += decided != full
    assert differences == 0
    # the properties were exercised: many rejections, most of them before the last batch, and
    # configurations lying exactly at a threshold (feasible there, so never rejected)
    assert len(thresholds) * len(values) > 4000 and rejected > 1000 and early > 0.8 * rejected
    assert at_threshold >= 5
    print(f"{len(thresholds) * len(values)} decisions, {rejected} rejected ({early} before the last batch)")


@pytest.mark.slow  # trains a model
def test_a_search_with_rejection_decides_as_one_without(problem, configurations, tmp_path):
    values, accuracies = configurations
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, ["accuracy", "weight_bits"])
    constraint = Constraint("accuracy", "max", float(np.median(accuracies)))
    runs = {}
    for on in (True, False):
        journal = Journal(tmp_path / f"{on}.jsonl")
        ev = Evaluator(problem, space, objectives, constraint, journal, budget=150, early_reject=on)
        runs[on] = ev.evaluate([space.encode(v) for v in values])
    assert [e.feasible for e in runs[True]] == [e.feasible for e in runs[False]]
    assert sum(e.rejected for e in runs[True]) > 30 and not any(e.rejected for e in runs[False])
