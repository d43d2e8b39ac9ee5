"""Every registered algorithm under exact early rejection (the toy emulating it, toy.early_reject).

Parametrised like the conformance suite (its SETTINGS and helpers): runs with rejection are
reproducible and resumable; every row's feasibility is that of a full evaluation; the sensitivity
table and the algorithms that read scores of infeasible configurations (`exact_scores`) get full
evaluations; algorithms whose decisions never read such scores try the very same configurations
with rejection on and off.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from dse.algorithms.pymoo_moea import PymooMOEA
from dse.core.objectives import Constraint
from dse.core.registry import ALGORITHMS
from tests.dse.algorithms.test_conformance import (  # noqa: F401 - killer is a fixture
    BUDGET,
    NAMES,
    SETTINGS,
    Setting,
    check_journal,
    killer,
    search_events,
)
from tests.dse.proc import events
from tests.dse.runs import read_json, run_toy
from tests.dse.toy import ToyProblem, ToySection

#: their next configuration never depends on the score of an infeasible one
SAME_WITH_OR_WITHOUT = ("random", "exhaustive", "ilp", "bisection", "greedy")
#: those that evaluate infeasible configurations without exact scores here (moead: no constraint;
#: greedy: its sensitivity table and start are exact, and the rest of its search stays feasible)
EXERCISED = {n for n in ALGORITHMS.names() if n not in ("moead", "greedy")}


def _run(tmp, name: str, out: str, early_reject: bool = True, drop: float = 5, **toy: Any) -> Any:
    """The conformance run with the toy rejecting early; the MOEAs seeded with uniform genomes only, so
    that their small budget goes to evolution (the sensitivity table would take most of it)."""
    s = SETTINGS.get(name, Setting())
    options = dict(s.options)
    if issubclass(ALGORITHMS.get(name), PymooMOEA):
        options["initial"] = "uniform"
    constraints = {"max_accuracy_drop": drop} if s.constraints is None else dict(s.constraints)
    constraints["early_reject"] = early_reject
    toy = {**s.toy, **toy, "early_reject": True}
    return run_toy(tmp, name, options, budget=BUDGET, toy=toy, constraints=constraints, out=out)


@pytest.mark.parametrize("name", NAMES)
def test_rejection_is_exact_reproducible_and_resumable(tmp_path, name, killer):  # noqa: F811
    ref = _run(tmp_path, name, "on")
    rows = check_journal(ref.run_dir, BUDGET)
    summary = read_json(ref, "summary.json")
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert summary["rejected_evaluations"] == len(rejected) and summary["failed_evaluations"] == 0
    # exact: each row's feasibility is that of a full evaluation
    c = summary["constraint"]
    constraint = Constraint(c["metric"], c["sense"], c["threshold"])
    plain = ToyProblem(ToySection(**SETTINGS.get(name, Setting()).toy))
    for r in rows:
        assert r["feasible"] == constraint.feasible(plain.evaluate(r["values"], ["accuracy"])), r
        if r["status"] == "rejected":
            assert r["metrics"]["accuracy"] is None and r["bounds"]["accuracy"] < constraint.threshold
    # full evaluations where the scores of infeasible configurations are read
    table = [r for r in rows if r["label"] == "sensitivity"]
    assert all(r["status"] == "ok" for r in table), "the sensitivity table was rejected early"
    if ALGORITHMS.get(name).exact_scores:
        assert not rejected, f"{name} reads infeasible scores, yet was given rejected evaluations"
    elif name in EXERCISED:
        assert rejected, "nothing was rejected: the property was not exercised"
    # reproducible and resumable
    assert events(_run(tmp_path, name, "again").run_dir) == events(ref.run_dir)
    out = tmp_path / "resumed"
    n = len(search_events(ref.run_dir))
    for at in (n // 3, 2 * n // 3):
        killer(out, at)
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, name, "resumed")
    killer(None)
    assert events(_run(tmp_path, name, "resumed").run_dir) == events(ref.run_dir)
    # the same configurations with rejection off, where decisions never read infeasible scores
    if name in SAME_WITH_OR_WITHOUT:
        off = check_journal(_run(tmp_path, name, "off", early_reject=False).run_dir, BUDGET)
        assert [(r["values"], r["feasible"]) for r in off] == [(r["values"], r["feasible"]) for r in rows]
        assert all(r["status"] == "ok" for r in off)


def test_ilp_measures_its_sensitivities_and_solutions_in_full(tmp_path):
    # a tight limit: the smaller knapsack answers miss it too
    on, off = _run(tmp_path, "ilp", "on", drop=2), _run(tmp_path, "ilp", "off", early_reject=False, drop=2)
    rows = search_events(on.run_dir)
    for label in ("sensitivity", "ilp:solution"):
        assert any(not r["feasible"] for r in rows if r["label"] == label), f"no {label} to reject"
    assert all(r["status"] == "ok" for r in rows)
    for name in ("sensitivity.csv", "ilp.csv"):
        a, b = (pd.read_csv(r.run_dir / name).filter(regex="^(?!.*seconds$)") for r in (on, off))
        pd.testing.assert_frame_equal(a, b, obj=name)
    assert pd.read_csv(on.run_dir / "ilp.csv").measured_accuracy.notna().all()


def test_greedy_measures_its_start_in_full(tmp_path):
    res = _run(tmp_path, "greedy", "low-start", initial=[2, 3, 2, 3])  # misses the limit; no reference point
    (start,) = search_events(res.run_dir)
    assert start["label"] == "greedy:start" and not start["feasible"] and start["status"] == "ok"
