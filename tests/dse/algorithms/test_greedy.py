import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.runs import run_toy, table

NAMES = ["x0", "x1", "x2", "x3", "x4", "x5"]
TOY = {"n_var": 6, "choices": [2, 3, 4, 5, 6, 7, 8]}


def check_trajectory(res, floor):
    traj, evals = table(res, "greedy_trajectory.csv"), table(res, "evaluations.csv")
    assert (traj.weight_bits.diff().dropna() < 0).all()  # every accepted step shrinks the size
    assert (traj.accuracy >= floor - 1e-9).all()  # and none breaks the limit
    names = [n for n in NAMES if n in traj.columns]
    by_id = evals.set_index("eval_id")
    for r in traj.itertuples():  # each point is a real evaluation of that configuration
        ev = by_id.loc[r.eval_id]
        assert ev.accuracy == pytest.approx(r.accuracy) and ev.weight_bits == r.weight_bits
        assert [ev[n] for n in names] == [getattr(r, n) for n in names]
    fine = traj[traj.phase == "fine"]
    for a, b in zip(traj.itertuples(), traj.iloc[1:].itertuples()):  # a fine step lowers one variable
        if b.phase == "fine":
            changed = [n for n in names if getattr(a, n) != getattr(b, n)]
            assert changed == [b.variable] and getattr(b, b.variable) < getattr(a, b.variable)
    return traj, evals, fine


@pytest.mark.parametrize("fine_threshold", [None, 2.0, 3.5])
def test_fine_search_never_breaks_the_limit_and_shrinks(tmp_path, fine_threshold):
    res = run_toy(tmp_path, "greedy", {"fine_threshold": fine_threshold}, toy=TOY)
    floor = 95.0 if fine_threshold is None else max(95.0, 100 - fine_threshold)
    traj, evals, fine = check_trajectory(res, floor)
    assert list(traj.phase[:2]) == ["start", "coarse"] and len(fine) >= 2
    last = traj.iloc[-1]
    # at the end no single variable can go one choice lower without breaking the limit
    from tests.dse.toy import ToyProblem, ToySection

    p = ToyProblem(ToySection(**TOY))
    values = {n: int(last[n]) for n in NAMES}
    for n in NAMES:
        choices = TOY["choices"]
        i = choices.index(values[n])
        if i > 0:
            acc = p.evaluate({**values, n: choices[i - 1]}, ["accuracy"])["accuracy"]
            assert acc < floor
    # the coarse phase reads the sensitivity table: every variable alone at every lower choice
    assert {"greedy:start", "sensitivity", "greedy:combine", "greedy:fine-probe"} <= set(evals.label)
    assert (evals.label == "sensitivity").sum() == 6 * 6
    assert {"phase", "size", "variable"} <= set(evals.columns)


def test_a_failing_choice_is_never_accepted(tmp_path):
    res = run_toy(tmp_path, "greedy", toy={**TOY, "nan_when_first_is": 7})
    traj, evals, _ = check_trajectory(res, 95.0)
    assert 7 not in set(traj.x0) and (evals.x0 == 7).any() and set(traj.x0) == {8}


def test_the_combination_is_repaired_when_it_breaks_the_constraint(tmp_path):
    # each variable alone may lose 4 points: all of them together lose far more than the 5 allowed
    res = run_toy(tmp_path, "greedy", {"coarse_threshold": 4.0}, toy=TOY)
    traj, evals, _ = check_trajectory(res, 95.0)
    assert "greedy:repair" in set(evals.label)
    combine = evals[evals.label == "greedy:combine"].iloc[0]
    assert combine.accuracy < 95
    coarse = traj[traj.phase == "coarse"].iloc[0]
    assert coarse.accuracy >= 95


def test_start_from_the_problems_initial_values(tmp_path):
    res = run_toy(tmp_path, "greedy", toy={**TOY, "initial": [6, 6, 9, 5, 1, 6]})
    first = table(res, "greedy_trajectory.csv").iloc[0]
    assert [first[n] for n in NAMES] == [6, 6, 8, 5, 2, 6]  # clipped to the choices
    top = run_toy(tmp_path, "greedy", {"start": "highest"}, toy={**TOY, "initial": [6] * 6}, out="top")
    assert list(table(top, "greedy_trajectory.csv").iloc[0][NAMES]) == [8] * 6


def test_budget_ends_it_with_the_trajectory_written(tmp_path):
    full = run_toy(tmp_path, "greedy", toy=TOY, out="full")
    full_traj, full_evals = table(full, "greedy_trajectory.csv"), table(full, "evaluations.csv")
    assert len(full_evals) > 40 and len(full_traj) > 4
    cols = ["eval_id", "label", "accuracy", "weight_bits", *NAMES]
    # cut short in the coarse phase (within its 1 + 6 x 6 sensitivity evaluations) / the fine phase
    for budget, points in ((8, 1), (45, 3)):
        res = run_toy(tmp_path, "greedy", budget=budget, toy=TOY, out=f"b{budget}")
        evals = table(res, "evaluations.csv")
        assert len(res.evaluations) == len(evals) == budget
        # the same deterministic search, stopped: its first `budget` evaluations ...
        pd.testing.assert_frame_equal(evals[cols], full_evals[cols].iloc[:budget])
        # ... and the trajectory up to there, written although the search did not finish
        traj, _, _ = check_trajectory(res, 95.0)
        assert len(traj) == points
        pd.testing.assert_frame_equal(traj, full_traj[full_traj.eval_id < budget], check_dtype=False)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"start": "lowest"}, "algorithm.options.start"),
        ({"coarse_threshold": -1}, "algorithm.options.coarse_threshold"),
        ({"threshold": 1}, "algorithm.options.threshold: unknown option"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, options, named):
    path = write_config(tmp_path, algorithm={"name": "greedy", "options": options})
    assert run_cli("run", str(path), "--quiet") == 2
    assert named in capsys.readouterr().err


def test_needs_a_size_objective(tmp_path, capsys):
    path = write_config(tmp_path, objectives=["accuracy", "qerror"], algorithm={"name": "greedy"})
    assert run_cli("run", str(path), "--quiet") == 2
    assert "objectives: greedy needs a size objective" in capsys.readouterr().err
