import itertools
import os

import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.runs import run_toy, table
from tests.dse.toy import ToyProblem, ToySection


@pytest.fixture
def no_fsync(monkeypatch):
    """Thousands of journal lines: skip the per-line disk sync, which these tests do not exercise."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def brute_force_front(n_var: int, floor: float) -> set[tuple[float, float]]:
    p = ToyProblem(ToySection(n_var=n_var))
    pts = []
    for bits in itertools.product(p.section.choices, repeat=n_var):
        m = p.evaluate({f"x{i}": b for i, b in enumerate(bits)}, ["weight_bits", "accuracy"])
        if m["accuracy"] >= floor:
            pts.append((m["weight_bits"], round(m["accuracy"], 9)))
    return {(s, a) for s, a in pts if not any(s2 <= s and a2 >= a and (s2, a2) != (s, a) for s2, a2 in pts)}


def test_exhaustive_front_equals_brute_force(tmp_path, no_fsync):
    res = run_toy(tmp_path, "exhaustive", budget=5000, toy={"n_var": 5})  # 3,125 configurations
    evals = table(res, "evaluations.csv")
    assert len(evals) == 3125 == res.summary["space_size"]
    names = [f"x{i}" for i in range(5)]
    assert list(map(tuple, evals[names].values)) == list(itertools.product([2, 3, 4, 6, 8], repeat=5))
    front = table(res, "pareto.csv")
    found = {(r.weight_bits, round(r.accuracy, 9)) for r in front.itertuples()}
    assert found == brute_force_front(5, 95.0)


def test_exhaustive_stops_at_the_budget_in_order(tmp_path):
    res = run_toy(tmp_path, "exhaustive", budget=30, toy={"n_var": 3})
    evals = table(res, "evaluations.csv")
    expected = list(itertools.product([2, 3, 4, 6, 8], repeat=3))[:30]
    assert list(map(tuple, evals[["x0", "x1", "x2"]].values)) == expected


def test_exhaustive_refuses_a_space_over_the_limit(tmp_path, capsys):
    path = write_config(tmp_path, toy={"n_var": 7}, algorithm={"name": "exhaustive", "budget": 10})
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert "algorithm.options.max_configurations" in err and "78,125" in err and err.count("\n") == 0
    small = write_config(
        tmp_path, toy={"n_var": 3}, algorithm={"name": "exhaustive", "options": {"max_configurations": 100}}
    )
    assert run_cli("run", str(small), "--quiet", "--fresh") == 2
    assert "more than the limit of 100" in capsys.readouterr().err


def test_exhaustive_rejects_unknown_options(tmp_path, capsys):
    path = write_config(tmp_path, algorithm={"name": "exhaustive", "options": {"max_configs": 5}})
    assert run_cli("run", str(path), "--quiet") == 2
    assert "algorithm.options.max_configs: unknown option" in capsys.readouterr().err
