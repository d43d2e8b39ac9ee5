import itertools

import numpy as np
import pytest

from dse.algorithms.ilp import solve
from dse.algorithms.sensitivity import monotone
from tests.dse.helpers import run_cli, write_config
from tests.dse.runs import run_toy, table
from tests.dse.toy import ToyProblem, ToySection

NAMES = ["x0", "x1", "x2", "x3"]


def test_solutions_meet_their_budgets_exactly_and_are_optimal(tmp_path):
    res = run_toy(tmp_path, "ilp", budget=100)
    ilp, evals = table(res, "ilp.csv"), table(res, "evaluations.csv")
    assert {"budget", "predicted_weight_bits", "predicted_accuracy", "measured_accuracy"} <= set(ilp.columns)
    assert len(ilp) == 10 and ilp.budget.iloc[0] == 200 and ilp.budget.iloc[-1] == 800  # all-2 .. all-8
    # sensitivities: the all-highest point plus each variable at each lower choice
    sens = evals[evals.label == "sensitivity"]
    assert len(sens) == 1 + 4 * 4
    by_id = evals.set_index("eval_id")
    p = ToyProblem(ToySection())
    space = list(itertools.product([2, 3, 4, 6, 8], repeat=4))
    sizes = {b: p.evaluate(dict(zip(NAMES, b)), ["weight_bits", "accuracy"]) for b in space}
    for r in ilp.itertuples():
        ev = by_id.loc[r.eval_id]
        assert r.predicted_weight_bits == ev.weight_bits <= r.budget  # exact, not approximately
        assert r.measured_accuracy == ev.accuracy
        # the toy's accuracy adds up over variables, so the prediction is the truth...
        assert r.predicted_accuracy == pytest.approx(r.measured_accuracy, abs=1e-9)
        # ...and the solver's answer is the best any configuration within the budget reaches
        best = max(m["accuracy"] for m in sizes.values() if m["weight_bits"] <= r.budget)
        assert r.measured_accuracy == pytest.approx(best, abs=1e-9)
    sens_table = table(res, "sensitivity.csv")
    assert len(sens_table) == 4 * 5 and (sens_table.sensitivity >= 0).all()
    solutions = evals[evals.label == "ilp:solution"]
    assert "predicted_accuracy" in evals.columns and solutions.predicted_accuracy.notna().all()
    assert len(evals) == len(sens) + len(solutions)


def test_qerror_score(tmp_path):
    res = run_toy(tmp_path, "ilp", {"score": "qerror", "n_budgets": 4})
    ilp = table(res, "ilp.csv")
    assert {"predicted_qerror", "measured_qerror", "measured_accuracy"} <= set(ilp.columns)
    assert len(ilp) == 4
    assert np.allclose(ilp.predicted_qerror, ilp.measured_qerror)
    assert (ilp.predicted_weight_bits <= ilp.budget).all()


def test_budget_too_small_for_the_sensitivities(tmp_path):
    res = run_toy(tmp_path, "ilp", budget=5)
    assert len(res.evaluations) == 5 and table(res, "ilp.csv").empty


def test_the_solutions_that_fit_the_budget_stay_in_ilp_csv(tmp_path):
    res = run_toy(tmp_path, "ilp", budget=17 + 3)  # the table, then 3 of the 10 solutions
    ilp, evals = table(res, "ilp.csv"), table(res, "evaluations.csv")
    assert len(evals) == 20 and res.summary["status"] == "budget_spent"
    new = evals[evals.label == "ilp:solution"]
    assert len(new) == 3 and set(new.eval_id) <= set(ilp.eval_id)
    assert list(ilp.budget) == sorted(ilp.budget) and len(ilp) < 10


def test_solve_matches_brute_force_on_random_knapsacks():
    rng = np.random.default_rng(3)
    for _ in range(30):
        k = [int(x) for x in rng.integers(2, 5, size=4)]
        sens = {f"v{i}": rng.normal(size=n).round(2) for i, n in enumerate(k)}
        delta = {f"v{i}": -rng.integers(0, 50, size=n).astype(float) for i, n in enumerate(k)}
        sens["v0"][0] = np.inf  # a failed choice is never picked
        room = float(rng.integers(-120, 0))
        picks = solve(sens, delta, room)
        combos = [
            c
            for c in itertools.product(*(range(n) for n in k))
            if c[0] != 0 and sum(delta[f"v{i}"][j] for i, j in enumerate(c)) <= room
        ]
        if not combos:
            assert picks is None
            continue
        best = min(sum(sens[f"v{i}"][j] for i, j in enumerate(c)) for c in combos)
        got = [picks[f"v{i}"] for i in range(4)]
        assert sum(delta[f"v{i}"][j] for i, j in enumerate(got)) <= room
        assert sum(sens[f"v{i}"][j] for i, j in enumerate(got)) == pytest.approx(best)


def test_sensitivities_never_favour_fewer_bits():
    assert monotone(np.array([5.0, -0.3, 0.6, -0.2, 0.0])).tolist() == [5.0, 0.6, 0.6, 0.0, 0.0]
    assert monotone(np.array([np.inf, 1.0, np.inf, 0.0])).tolist() == [np.inf, 1.0, np.inf, 0.0]


def test_ties_in_predicted_loss_spend_the_budget():
    sens = {"a": np.array([0.0, 0.0]), "b": np.array([1.0, 0.0])}
    delta = {"a": np.array([-10.0, 0.0]), "b": np.array([-5.0, 0.0])}
    assert solve(sens, delta, 0.0) == {"a": 1, "b": 1}
    assert solve(sens, delta, -10.0) == {"a": 0, "b": 1}
    assert solve(sens, delta, -12.0) == {"a": 0, "b": 0}
    # a variable the size ignores keeps its highest equally good choice
    free = {"a": np.array([0.0, 0.0, 0.0]), "b": np.array([0.5, 0.0, 0.0])}
    zero = {"a": np.zeros(3), "b": np.array([-4.0, -2.0, 0.0])}
    assert solve(free, zero, -4.0) == {"a": 2, "b": 0}


@pytest.mark.parametrize(
    ("options", "named"),
    [({"n_budgets": 0}, "algorithm.options.n_budgets"), ({"score": "bops"}, "algorithm.options.score")],
)
def test_bad_options_exit_2(tmp_path, capsys, options, named):
    path = write_config(tmp_path, algorithm={"name": "ilp", "options": options})
    assert run_cli("run", str(path), "--quiet") == 2
    assert named in capsys.readouterr().err


def test_a_size_that_does_not_add_up_over_variables_is_refused(tmp_path, capsys, monkeypatch):
    plain = ToyProblem._evaluate

    def with_interaction(self, values, metrics):  # weight_bits gains a term in x0 * x1: not additive
        out = plain(self, values, metrics)
        if "weight_bits" in out:
            out["weight_bits"] += 3.0 * values["x0"] * values["x1"]
        return out

    monkeypatch.setattr(ToyProblem, "_evaluate", with_interaction)
    path = write_config(tmp_path, algorithm={"name": "ilp", "budget": 50})
    capsys.readouterr()
    assert run_cli("run", str(path), "--quiet") == 2
    # the first configuration checked is all-lowest (2 bits): sizes 10, 20, 30, 40 per bit give 200;
    # the term adds 3*2*2 = 12, while the per-variable changes from all-highest (8 bits) sum to
    # 800 + 192 + 2 * (3*2*8 - 192) - 600 = 104
    assert capsys.readouterr().err.strip() == (
        "error: objectives: ilp needs a size objective that adds up over variables; weight_bits does not "
        "(212 vs 104 summed)"
    )
