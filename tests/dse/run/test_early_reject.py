"""Exact early rejection through the evaluator, on the toy problem emulating it (toy.early_reject).

A rejected evaluation is infeasible exactly when a full one is, its constrained metric unknown and its
bound kept; it counts once against the budget, replays as rejected, and an exact request for it
computes (and journals) the full evaluation under the same eval_id.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dse.core.config import ConstraintsSection
from dse.core.evaluation import Evaluation, latest
from dse.core.objectives import PENALTY, Constraint, Objectives
from dse.core.problem import Rejected
from dse.core.space import SearchSpace
from dse.run.evaluator import Evaluator
from dse.run.journal import Journal, load_evaluations
from tests.dse.toy import ToyProblem, ToySection


def make(tmp_path, budget=50, early_reject=True, memo=None, name="journal.jsonl", **toy):
    problem = ToyProblem(ToySection(n_var=3, early_reject=True, **toy))
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, ["accuracy", "weight_bits"])
    constraint = Constraint.of(ConstraintsSection(max_accuracy_drop=10), problem)
    journal = Journal(tmp_path / name)
    ev = Evaluator(
        problem, space, objectives, constraint, journal, budget=budget, memo=memo, early_reject=early_reject
    )
    return problem, ev


def full_feasible(problem: ToyProblem, constraint: Constraint, values: dict[str, int]) -> bool:
    return constraint.feasible(problem.evaluate(values, ["accuracy"]))


LOW, HIGH = (0, 4, 4), (4, 4, 4)  # x0 at 2 bits loses 12.5 points (infeasible); all at 8 bits: feasible
MID = (1, 0, 4)  # x0 at 3 and x1 at 2 bits lose 6.25 points each: infeasible


def test_a_rejected_row_is_infeasible_with_its_metric_unknown_and_its_bound_kept(tmp_path):
    problem, ev = make(tmp_path)
    low, high = ev.evaluate([LOW, HIGH])
    assert low.status == "rejected" and low.rejected and not low.ok and not low.feasible
    assert math.isnan(low.metrics["accuracy"]) and low.metrics["weight_bits"] == 2 * 10 + 8 * 20 + 8 * 30
    exact = problem.evaluate(low.values, ["accuracy"])["accuracy"]
    limit = ev.constraint.worst_feasible
    assert exact <= low.bounds["accuracy"] < limit and "rejected early" in low.reason
    assert high.ok and high.feasible and not high.bounds
    assert ev.used == 2 and problem.rejections == 1  # one evaluation of the budget each
    # the algorithms see it as infeasible by at least threshold - bound, not as a failure
    assert ev.constraint.violation_of(low) == pytest.approx(ev.constraint.threshold - low.bounds["accuracy"])
    assert 0 < ev.constraint.violation_of(low) < PENALTY
    assert ev.objectives.minimised(low).tolist() == [-low.bounds["accuracy"], low.metrics["weight_bits"]]


def test_feasibility_with_rejection_is_that_of_full_evaluations(tmp_path):
    problem, ev = make(tmp_path, budget=125, choices=[2, 3, 4, 5, 8])
    evals = ev.evaluate(list(np.ndindex(5, 5, 5)))
    assert len(evals) == 125 and sum(e.rejected for e in evals) > 10 and sum(e.feasible for e in evals) > 10
    for e in evals:
        assert e.feasible == full_feasible(problem, ev.constraint, e.values), e
        assert e.rejected == (not e.feasible)  # the toy rejects every infeasible configuration


def test_off_exact_requests_and_reference_points_are_never_rejected(tmp_path):
    problem, ev = make(tmp_path, early_reject=False)
    assert ev.limits == {} and ev.evaluate([LOW])[0].ok
    problem, ev = make(tmp_path, name="b.jsonl")
    assert ev.evaluate([LOW], exact=True)[0].ok and problem.rejections == 0
    ref = ev.reference({"x0": 2, "x1": 2, "x2": 2}, "uniform-2")
    assert ref.ok and not ref.feasible and problem.rejections == 0


def test_an_exact_request_after_a_rejection_runs_once_under_the_same_eval_id(tmp_path):
    problem, ev = make(tmp_path)
    first = ev.evaluate_values(dict(zip(ev.space.names, (2, 8, 8))))
    exact = ev.evaluate_values(dict(first.values), exact=True)
    assert first.rejected and exact.ok and not exact.feasible and exact.eval_id == first.eval_id
    assert exact.info["rejected_first"] and exact.seconds >= first.seconds
    assert ev.evaluate_values(dict(first.values), exact=True) is exact  # computed once
    assert ev.evaluate_values(dict(first.values)) is first  # a non-exact request: what it got first
    assert ev.used == 1 and [e.status for e in ev.journal.evaluations()] == ["rejected", "ok"]
    assert ev.evaluations() == [exact]  # the tables show the exact record
    assert latest(ev.journal.evaluations()) == [exact]
    ev.journal.close()
    assert load_evaluations(tmp_path) == [exact]  # as a run folder is read back (plot, compare, ...)


def test_rejected_rows_replay_as_rejected_and_exact_ones_as_exact(tmp_path):
    problem, ev = make(tmp_path)
    a, b, c = ev.evaluate([LOW, MID, HIGH])
    up = ev.evaluate([MID], exact=True)[0]
    ev.journal.close()
    lines = [Evaluation.from_json(e.to_json()) for e in ev.journal.evaluations()]
    assert [e.status for e in lines] == ["rejected", "rejected", "ok", "ok"] and lines[0].bounds == a.bounds
    assert "bounds" not in c.to_json()  # rows that are not rejected keep their journal form
    problem2, ev2 = make(tmp_path)  # resume: the same requests, in the same order
    again = ev2.evaluate([LOW, MID, HIGH])
    assert problem2.calls == 0 and ev2.replayed == 3
    assert [e.to_json() for e in again] == [e.to_json() for e in (a, b, c)]
    assert ev2.evaluate([MID], exact=True)[0].to_json() == up.to_json() and problem2.calls == 0
    # killed between the rejection and the exact evaluation: the exact one is computed on resume
    first_line = (tmp_path / "journal.jsonl").read_text().splitlines(keepends=True)[0]
    (tmp_path / "killed.jsonl").write_text(first_line)
    problem3, ev3 = make(tmp_path, name="killed.jsonl")
    assert ev3.evaluate([LOW])[0].rejected and problem3.calls == 0
    assert ev3.evaluate([LOW], exact=True)[0].ok and problem3.calls == 1


def test_a_comparison_memo_hands_each_run_what_it_would_compute_alone(tmp_path):
    memo: dict = {}
    problem, ev = make(tmp_path, memo=memo, name="a.jsonl")
    exact = ev.evaluate([LOW], exact=True)[0]  # run 1 knows LOW exactly (an ok, infeasible row)
    rejected = ev.evaluate([MID])[0]
    problem2, ev2 = make(tmp_path, memo=memo, name="b.jsonl")
    low, mid = ev2.evaluate([LOW, MID])
    assert low.rejected and problem2.rejections == 1  # as alone: rejected, not run 1's exact row
    assert mid.rejected and mid.info["memo"] and mid.bounds == rejected.bounds and problem2.calls == 1
    assert ev2.evaluate([LOW], exact=True)[0].metrics == exact.metrics and problem2.calls == 1
    # an infeasible reference point (every run evaluates those first) answers a search request
    problem3, ev3 = make(tmp_path, memo=memo, name="c.jsonl")
    ref = ev3.reference(dict(zip(ev3.space.names, (2, 2, 2))), "uniform-2")
    search = ev3.evaluate([(0, 0, 0)])[0]
    assert search.ok and search.info["memo"] and search.metrics == ref.metrics and problem3.rejections == 0


def test_worst_feasible_is_the_exact_boundary_of_the_feasibility_rule():
    for sense, thresholds in (("max", [97.72813990461049, 0.0, 50.0, 100.0, 1e-3]), ("min", [0.5, 3.0])):
        for t in thresholds:
            c = Constraint("m", sense, t)
            w = c.worst_feasible
            worse = math.nextafter(w, -math.inf if sense == "max" else math.inf)
            assert c.feasible({"m": w}) and not c.feasible({"m": worse}), (sense, t)
    assert Constraint("m", "max", None).worst_feasible is None


def test_the_contract_refuses_a_rejection_that_proves_nothing(tmp_path):
    problem = ToyProblem(ToySection(n_var=2, early_reject=True))
    values = {"x0": 2, "x1": 8}
    with pytest.raises(Rejected):
        problem.evaluate(values, reject_worse_than={"accuracy": 99.0})
    plain = ToyProblem(ToySection(n_var=2))  # no EARLY_REJECT: the limit is ignored, the value exact
    assert plain.evaluate(values, reject_worse_than={"accuracy": 99.0})["accuracy"] < 99.0

    def lying(self, values, metrics, reject_worse_than=None):
        raise Rejected("accuracy", reject_worse_than["accuracy"])  # the limit itself is not worse

    problem._evaluate = lying.__get__(problem)
    with pytest.raises(RuntimeError, match="not worse than its limit"):
        problem.evaluate(values, reject_worse_than={"accuracy": 99.0})
