"""The sensitivity table (hand-computed on the toy) and the MOEAs' first population it seeds."""

import itertools

import numpy as np
import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.runs import read_json, run_toy, table
from tests.dse.toy import ToyProblem, ToySection

CHOICES = [2, 3, 4, 6, 8]
NAMES = ["x0", "x1", "x2", "x3"]
SENS = [0.5 / (i + 1) for i in range(4)]  # the toy's accuracy = 100 - 100 * sum sens_i * 2**-bits_i
TABLE = 1 + 4 * 4  # the all-highest configuration, then each variable alone at each lower choice


def test_table_values_are_the_score_drops_of_one_variable_lowered_alone(tmp_path):
    res = run_toy(tmp_path, "ilp", {"n_budgets": 1})
    sens, evals = table(res, "sensitivity.csv"), table(res, "evaluations.csv").set_index("eval_id")
    assert len(sens) == 4 * 5 and set(sens.score) == {"accuracy"}
    for r in sens.itertuples():
        i = NAMES.index(r.variable)
        drop = 100 * SENS[i] * (2.0**-r.value - 2.0**-8)  # by hand: accuracy(all 8) - accuracy(x_i alone)
        assert r.measured == pytest.approx(drop, abs=1e-9) and r.sensitivity == pytest.approx(drop, abs=1e-9)
        assert r.weight_bits == 10 * (i + 1) * (r.value - 8)  # the size it saves, all others at 8
        row = evals.loc[r.eval_id]  # the evaluation it was read from: x_i at that value, the rest at 8
        assert [row[n] for n in NAMES] == [r.value if n == r.variable else 8 for n in NAMES]
    assert (evals.label == "sensitivity").sum() == TABLE
    assert read_json(res, "summary.json")["sensitivity_evaluations"] == TABLE


def test_qerror_table(tmp_path):
    res = run_toy(tmp_path, "ilp", {"score": "qerror", "n_budgets": 1})
    sens = table(res, "sensitivity.csv")
    expected = [SENS[NAMES.index(r.variable)] * (2.0**-r.value - 2.0**-8) for r in sens.itertuples()]
    assert set(sens.score) == {"qerror"} and np.allclose(sens.measured, expected)


def _knapsack_answers(n_budgets: int) -> list[tuple[int, ...]]:
    """By brute force: the toy's accuracy adds up exactly, so the knapsack's answer at a budget is the
    most accurate configuration within it (the largest of equals); budgets from the smallest
    configuration meeting accuracy >= 95 to the all-highest one."""
    p = ToyProblem(ToySection())
    space = [dict(zip(NAMES, b)) for b in itertools.product(CHOICES, repeat=4)]
    metrics = [p.evaluate(v, ["accuracy", "weight_bits"]) for v in space]
    low = min(m["weight_bits"] for m in metrics if m["accuracy"] >= 95)
    out = []
    for budget in np.linspace(low, 800, n_budgets):
        fit = [(m["accuracy"], m["weight_bits"], i) for i, m in enumerate(metrics)]
        best = max(f for f in fit if f[1] <= budget)[2]
        out.append(tuple(space[best][n] for n in NAMES))
    return out


def test_first_population_holds_the_uniform_and_the_knapsack_genomes(tmp_path):
    res = run_toy(tmp_path, "nsga2", budget=TABLE + 12)  # pop_size 12: the table, then one generation
    evals = table(res, "evaluations.csv")
    assert (evals.label.iloc[:TABLE] == "sensitivity").all()  # the table comes first, in the budget
    configs = [tuple(r) for r in evals[NAMES].itertuples(index=False)]
    measured, first = configs[:TABLE], configs[TABLE:]
    # the uniform genomes and the knapsack answers at pop_size // 2 budgets (one answer, all-8, is
    # the table's first configuration: evaluated once, not again)
    for genome in [*((b,) * 4 for b in CHOICES), *_knapsack_answers(6)]:
        assert genome in first or genome == (8, 8, 8, 8) == measured[0], (genome, first)
    assert len(set(_knapsack_answers(6))) == 6
    assert read_json(res, "summary.json")["sensitivity_evaluations"] == TABLE


def test_initial_uniform_and_random_measure_no_table(tmp_path):
    for initial in ("uniform", "random"):
        res = run_toy(tmp_path, "nsga2", {"initial": initial}, budget=24, out=initial)
        assert "sensitivity" not in set(table(res, "evaluations.csv").label.dropna())
        assert not (res.run_dir / "sensitivity.csv").exists()
        assert read_json(res, "summary.json")["sensitivity_evaluations"] == 0


def test_budget_smaller_than_the_table_ends_the_run_within_it(tmp_path):
    res = run_toy(tmp_path, "nsga2", budget=9)
    evals = table(res, "evaluations.csv")
    assert len(evals) == 9 and (evals.label == "sensitivity").all()
    assert len(pd.read_csv(res.run_dir / "sensitivity.csv")) == 4 * 5  # written, NaN where not measured


def test_no_size_objective_seeds_with_uniform_genomes_alone(tmp_path):
    res = run_toy(tmp_path, "nsga2", budget=12, objectives=["accuracy", "qerror"])
    evals = table(res, "evaluations.csv")
    assert "sensitivity" not in set(evals.label.dropna())
    assert (2, 2, 2, 2) in [tuple(r) for r in evals[NAMES].itertuples(index=False)]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"initial": "best"}, "algorithm.options.initial: must be one of 'sensitivity', 'uniform', 'random'"),
        ({"score": "bops"}, "algorithm.options.score: must be one of 'accuracy', 'qerror'"),
    ],
)
def test_bad_seeding_options_exit_2(tmp_path, capsys, options, named):
    path = write_config(tmp_path, algorithm={"name": "nsga3", "options": options})
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert named in err and err.count("\n") == 0
    assert not (tmp_path / "results").exists()
