import math

import pytest

from dse.core.config import ConstraintsSection
from dse.core.errors import BudgetExhausted
from dse.core.objectives import PENALTY, Constraint, Objectives
from dse.core.space import SearchSpace
from dse.run.evaluator import Evaluator
from dse.run.journal import Journal
from tests.dse.toy import ToyProblem, ToySection


def make(tmp_path, budget=10, **toy):
    problem = ToyProblem(ToySection(n_var=3, **toy))
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, ["accuracy", "weight_bits"])
    constraint = Constraint.of(ConstraintsSection(max_accuracy_drop=10), problem)
    journal = Journal(tmp_path / "journal.jsonl")
    return problem, Evaluator(problem, space, objectives, constraint, journal, budget=budget)


def test_repeated_genomes_are_answered_from_memory(tmp_path):
    problem, ev = make(tmp_path)
    a = ev.evaluate([(0, 1, 2), (0, 1, 2), (4, 4, 4)])
    assert problem.calls == 2 and ev.used == 2
    assert a[0] is a[1] and [e.eval_id for e in a] == [0, 0, 1]
    assert a[2].metrics["weight_bits"] == 8 * (10 + 20 + 30)
    assert a[2].feasible and not a[0].feasible  # 2-bit first variable loses > 10 points


def test_budget_is_enforced_after_recording_what_fits(tmp_path):
    problem, ev = make(tmp_path, budget=2)
    with pytest.raises(BudgetExhausted):
        ev.evaluate([(0, 0, 0), (1, 1, 1), (2, 2, 2)])
    assert ev.used == 2 and len(ev.journal.evaluations()) == 2


def test_failures_are_recorded_penalised_and_infeasible(tmp_path):
    problem, ev = make(tmp_path, fail_when_first_is=2, nan_when_first_is=3)
    boom, nan, fine = ev.evaluate([(0, 4, 4), (1, 4, 4), (4, 4, 4)])
    assert boom.status == "failed" and "injected failure" in boom.reason and not boom.feasible
    assert nan.status == "failed" and "non-finite accuracy" in nan.reason
    assert fine.ok
    assert (ev.objectives.minimised(boom) == PENALTY).all()
    assert math.isnan(Journal(tmp_path / "journal.jsonl").evaluations()[0].metrics["accuracy"])


def test_replay_answers_from_the_journal_without_running(tmp_path):
    problem, ev = make(tmp_path)
    first = ev.evaluate([(0, 1, 2), (3, 3, 3)])
    ev.journal.close()
    problem2, ev2 = make(tmp_path)
    again = ev2.evaluate([(0, 1, 2), (3, 3, 3), (4, 4, 4)])
    assert problem2.calls == 1 and ev2.replayed == 2
    assert [e.metrics for e in again[:2]] == [e.metrics for e in first]
    assert [e.eval_id for e in again] == [0, 1, 2]


def test_reference_points_are_free_and_may_leave_the_space(tmp_path):
    problem, ev = make(tmp_path, budget=1)
    r = ev.reference({"x0": 16, "x1": 16, "x2": 16}, "uniform-16")
    assert r.kind == "reference" and r.ok and ev.used == 0
