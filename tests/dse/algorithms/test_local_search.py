"""The MOEAs' history-wide duplicate elimination and their interleaved Pareto local search, on the toy."""

import numpy as np
import pandas as pd
import pytest
from pymoo.core.population import Population

from dse.algorithms.local_search import neighbours
from dse.algorithms.operators import ArchiveDuplicateElimination
from dse.indicators.pareto import non_dominated
from tests.dse.proc import events
from tests.dse.runs import run_toy, table
from tests.dse.toy import ToyProblem

CHOICES = [2, 3, 4, 6, 8]
NAMES = ["x0", "x1", "x2", "x3"]
TABLE = 1 + 4 * 4  # the toy's sensitivity table


def test_neighbours_are_one_choice_away_within_the_bounds():
    assert neighbours((0, 2, 1), np.array([1, 2, 3])) == [(1, 2, 1), (0, 1, 1), (0, 2, 0), (0, 2, 2)]
    assert neighbours((0,), np.array([0])) == []


def test_archive_elimination_refuses_what_the_run_evaluated_before():
    elim = ArchiveDuplicateElimination()
    pop = Population.new(X=np.array([[0, 1], [2, 2], [0, 1], [3, 0], [1, 1]], dtype=float))
    assert elim.do(pop).get("X").tolist() == [[0, 1], [2, 2], [3, 0], [1, 1]]  # pymoo's: within itself
    elim.add([(2, 2), (1, 1)])
    assert elim.do(pop).get("X").tolist() == [[0, 1], [3, 0]]
    other = Population.new(X=np.array([[3.0, 0.0]]))  # and still against the current population
    assert elim.do(pop, other).get("X").tolist() == [[0, 1]]


def _genomes(rows: pd.DataFrame, names: list[str] = NAMES) -> list[tuple[int, ...]]:
    """Each row's configuration as choice indices."""
    return [tuple(CHOICES.index(v) for v in r) for r in rows[names].itertuples(index=False)]


def _front(rows: pd.DataFrame, names: list[str] = NAMES) -> list[tuple[int, ...]]:
    """The non-dominated feasible configurations among `rows` (accuracy up, weight_bits down)."""
    feasible = rows[rows.feasible]
    return _genomes(
        feasible.iloc[non_dominated(np.column_stack([-feasible.accuracy, feasible.weight_bits]))], names
    )


def test_each_generation_adds_a_third_of_its_size_in_unseen_neighbours_of_the_front(tmp_path):
    res = run_toy(tmp_path, "nsga2", {}, budget=70)  # local_search 0.25: 4 per generation of 12
    evals = table(res, "evaluations.csv").sort_values("eval_id")
    assert len(evals) == 70 and not evals[NAMES].duplicated().any()
    labels = evals.label.fillna("").tolist()
    # the table, the first population (12, one of them in the table), then generation by generation
    # 12 offspring and 4 neighbours of the front, the last generation cut by the budget
    first = ["sensitivity"] * TABLE + [""] * 11
    assert labels == first + ([""] * 12 + ["local_search"] * 4) * 2 + [""] * 10
    for start in (len(first) + 12, len(first) + 28):  # drawn from the front as it stood then
        before = evals[evals.eval_id < start]
        front, seen = _front(before), set(_genomes(before))
        for genome in _genomes(evals[(evals.eval_id >= start) & (evals.eval_id < start + 4)]):
            assert genome not in seen
            assert any(sum(abs(a - b) for a, b in zip(genome, p)) == 1 for p in front), genome


def test_a_smaller_budget_ends_the_same_search_sooner(tmp_path):
    """The local search is interleaved, not a budget share kept for the end: raising the budget of
    a finished run continues the same search (algorithm.budget may change on resume)."""
    full = table(run_toy(tmp_path, "nsga2", {}, budget=70, out="full"), "evaluations.csv")
    cut = table(run_toy(tmp_path, "nsga2", {}, budget=50, out="cut"), "evaluations.csv")
    columns = ["eval_id", *NAMES, "label"]
    pd.testing.assert_frame_equal(cut[columns], full[columns].iloc[:50])


def test_resumed_in_the_middle_of_local_search_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    ref = run_toy(tmp_path, "nsga2", {}, budget=70, out="ref").run_dir
    original, killed = ToyProblem.evaluate, []

    def evaluate(self, values, metrics=None, **kw):  # killed as the 43rd search row starts
        journal = tmp_path / "resumed" / "journal.jsonl"
        if not killed and journal.is_file() and journal.read_text().count('"kind":"search"') >= 42:
            killed.append(True)
            raise KeyboardInterrupt
        return original(self, values, metrics, **kw)

    monkeypatch.setattr(ToyProblem, "evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path, "nsga2", {}, budget=70, out="resumed")
    assert sum(e.get("kind") == "search" for e in events(tmp_path / "resumed")) == 42 and killed
    resumed = table(run_toy(tmp_path, "nsga2", {}, budget=70, out="resumed"), "evaluations.csv")
    assert set(resumed.label[40:44]) == {"local_search"}  # it was killed in the middle of these
    assert events(tmp_path / "resumed") == events(ref)


def test_no_local_search_with_a_share_of_zero(tmp_path):
    res = run_toy(tmp_path, "nsga2", {"local_search": 0}, budget=60)
    evals = table(res, "evaluations.csv")
    assert len(evals) == 60 and "local_search" not in set(evals.label.fillna(""))
