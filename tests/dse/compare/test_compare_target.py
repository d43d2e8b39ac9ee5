"""compare.target (a fixed evaluations-to-target size), compare.aliases (one algorithm, two option
sets) and the sensitivity table computed once per comparison."""

import json
import math

import pandas as pd
import pytest

import dse.compare.runs as runs_module
from dse.compare.comparison import compare
from dse.core.config import TargetSection, parse_config
from dse.core.errors import ConfigError, DseError
from tests.dse.rundata_fixtures import E, run_data
from tests.dse.toy import ToyProblem

SIZES = {"weight_bits": {"unit": "bits", "baselines": {"float": 400.0, "8-bit": 100.0}}}


def runs():
    a = run_data("a-s0", "a", 0, [E(0, 95, 50), E(1, 99, 80), E(2, 94, 40)], sizes=SIZES)
    b = run_data("b-s0", "b", 0, [E(0, 92, 30), E(1, 97, 45)], sizes=SIZES)
    return [a, b]


@pytest.mark.parametrize(
    ("target", "value"),
    [
        (TargetSection(value=45.0), 45.0),
        (TargetSection(fraction=0.5), 50.0),
        (TargetSection(metric="weight_bits", fraction=0.125, of="float"), 50.0),
    ],
)
def test_a_fixed_target_sets_the_target_column_and_evals_to_target(target, value):
    c = compare(runs(), target=target)
    t = c.table.set_index("run")
    assert c.target == value and (t.target == value).all()
    # a: size 50 at its first evaluation (within 50, not within 45); b: 30 at its first
    assert t.loc["a-s0", "evals_to_target"] == (1 if value >= 50 else 3)
    assert t.loc["b-s0", "evals_to_target"] == 1
    assert c.reference_json()["target"]["value"] == value and "given" in c.target_rule


def test_default_target_is_the_best_size_found_loosened():
    c = compare(runs())
    assert c.target == pytest.approx(31.5) and (c.table.target == c.target).all()


def test_bad_targets_are_refused():
    with pytest.raises(DseError, match="compare.target.of: weight_bits has no size baseline '4-bit'"):
        compare(runs(), target=TargetSection(fraction=0.5, of="4-bit"))
    with pytest.raises(DseError, match="compare.target.metric: 'accuracy' is not a minimised objective"):
        compare(runs(), target=TargetSection(metric="accuracy", value=90.0))
    with pytest.raises(ConfigError, match="compare.target: give exactly one of value and fraction"):
        parse_config({"experiment": {"problem": "toy"}, "compare": {"target": {"value": 1, "fraction": 0.5}}})


@pytest.fixture
def compared(tmp_path, monkeypatch):
    """nsga2 (seeded), nsga2-uniform (an alias) and ilp over two seeds on one toy setup, counting the
    accuracy evaluations (model runs) of each configuration."""
    monkeypatch.setattr(runs_module, "write_compare_plots", lambda comparison, out: [])
    calls: dict[tuple[int, ...], int] = {}
    original = ToyProblem._evaluate

    def evaluate(self, values, metrics):
        if "accuracy" in metrics:
            key = tuple(values.values())
            calls[key] = calls.get(key, 0) + 1
        return original(self, values, metrics)

    monkeypatch.setattr(ToyProblem, "_evaluate", evaluate)
    cfg = parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "constraints": {"max_accuracy_drop": 5},
            "algorithm": {"pop_size": 12},
            "output": {"root": str(tmp_path / "results"), "plots": False},
            "compare": {
                "algorithms": ["nsga2", "nsga2-uniform", "ilp"],
                "aliases": {"nsga2-uniform": "nsga2"},
                "options": {"nsga2-uniform": {"initial": "uniform"}, "ilp": {"n_budgets": 3}},
                "seeds": [0, 1],
                "budget": 24,
                "target": {"fraction": 0.5},  # of the all-8-bit size, 800 bits: 400
            },
        }
    )
    result = runs_module.run_config(cfg, tmp_path / "cmp", progress=False, log=lambda m: None)
    return result, calls


def test_the_table_is_computed_once_per_comparison_and_journaled_by_every_run(compared):
    result, calls = compared
    seeded = [r for r in result.comparison.runs if r.label in ("nsga2", "ilp")]
    assert len(seeded) == 4
    tables = [pd.read_csv(r.run_dir / "sensitivity.csv") for r in seeded]
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t.drop(columns="eval_id"), tables[0].drop(columns="eval_id"))
    configs = set()
    for r in seeded:  # each run journals the 17 table evaluations and counts them in its budget
        mine = [e for e in r.evaluations if e.label == "sensitivity"]
        assert len(mine) == 17 and r.summary["sensitivity_evaluations"] == 17
        configs |= {tuple(e.values.values()) for e in mine}
    assert len(configs) == 17
    assert all(calls[c] == 1 for c in configs), {c: calls[c] for c in configs if calls[c] != 1}


def test_an_alias_runs_its_algorithm_with_its_own_options_under_its_own_name(compared):
    result, _ = compared
    table = result.comparison.table
    assert table.algorithm.tolist() == ["nsga2", "nsga2", "nsga2-uniform", "nsga2-uniform", "ilp", "ilp"]
    uniform = [r for r in result.comparison.runs if r.label == "nsga2-uniform"]
    for r in uniform:
        assert r.run_dir.name == f"nsga2-uniform-s{r.seed}" and r.algorithm == "nsga2"
        assert r.config["algorithm"]["options"] == {"initial": "uniform"}
        assert not any(e.label == "sensitivity" for e in r.evaluations)
    summary = pd.read_csv(result.out_dir / "comparison_summary.csv")
    assert summary.algorithm.tolist() == ["nsga2", "nsga2-uniform", "ilp"]


def test_compare_target_from_the_config_reaches_the_table(compared):
    result, _ = compared
    table = pd.read_csv(result.out_dir / "comparison.csv")
    assert (table.target == 400.0).all()
    for row, run in zip(table.itertuples(), result.comparison.runs, strict=True):
        hits = [e.eval_id + 1 for e in run.evaluations if e.feasible and e.metrics["weight_bits"] <= 400]
        assert (math.isnan(row.evals_to_target) and not hits) or row.evals_to_target == min(hits)
    ref = json.loads((result.out_dir / "reference.json").read_text())["target"]
    assert ref["value"] == 400.0 and "0.5 x the 8-bit size" in ref["rule"]


def test_an_alias_may_not_shadow_an_algorithm(tmp_path):
    cfg = parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "compare": {"algorithms": ["random"], "aliases": {"random": "nsga2"}},
        }
    )
    with pytest.raises(ConfigError, match="compare.aliases.random: already the name of an algorithm"):
        runs_module.run_config(cfg, tmp_path / "cmp", progress=False)
