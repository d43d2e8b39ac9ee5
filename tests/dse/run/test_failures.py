"""Failing evaluations are recorded, counted and kept off the front; a crash never masks its cause."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

import dse.run.runner
from dse.algorithms.random_search import RandomSearch
from dse.core.config import parse_config
from dse.core.errors import ConfigError
from dse.run.runner import run_experiment
from tests.dse.helpers import run_cli, write_config
from tests.dse.toy import ToyProblem, ToySection


def _run(tmp_path, algorithm, budget, **toy):
    path = write_config(tmp_path, toy=toy, algorithm={"name": algorithm, "budget": budget, "pop_size": 12})
    assert run_cli("run", str(path), "--quiet") == 0
    run_dir = tmp_path / "results" / "toy" / f"{algorithm}-s0"
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def _true_front(section: ToySection) -> set[tuple[int, ...]]:
    """Brute force over the whole space: the feasible, non-failing, non-dominated configurations."""
    problem = ToyProblem(section)
    rows, keys = [], []
    for bits in itertools.product(section.choices, repeat=section.n_var):
        if bits[0] in (section.fail_when_first_is, section.nan_when_first_is):
            continue
        m = problem.evaluate({f"x{i}": b for i, b in enumerate(bits)}, ["accuracy", "weight_bits"])
        if m["accuracy"] >= 100 - 5:  # the helpers' max_accuracy_drop
            rows.append((-m["accuracy"], m["weight_bits"]))
            keys.append(bits)
    return {keys[i] for i in _non_dominated(np.array(rows))}


def _non_dominated(F: np.ndarray) -> list[int]:
    """Plain O(n^2) definition, independent of the code under test."""
    return [i for i in range(len(F)) if not any((F <= F[i]).all(1) & (F < F[i]).any(1))]


def test_exhaustive_run_with_injected_failures_finds_the_true_front(tmp_path):
    toy = {"n_var": 3, "fail_when_first_is": 4, "nan_when_first_is": 6}
    run_dir, summary = _run(tmp_path, "random", 125, **toy)  # 5**3: every configuration
    evals = pd.read_csv(run_dir / "evaluations.csv")
    failed = evals[evals.status == "failed"]
    assert len(evals) == 125 and summary["failed_evaluations"] == len(failed) == 50
    assert set(failed.reason) == {"RuntimeError: injected failure", "non-finite accuracy=nan"}
    front = pd.read_csv(run_dir / "pareto.csv")
    assert (front.status == "ok").all()
    assert set(map(tuple, front[["x0", "x1", "x2"]].to_numpy().tolist())) == _true_front(ToySection(**toy))
    assert summary["status"] == "budget_spent"


def test_nsga2_with_failures_finishes_with_the_front_of_what_succeeded(tmp_path):
    run_dir, summary = _run(tmp_path, "nsga2", 80, n_var=4, fail_when_first_is=6)
    evals = pd.read_csv(run_dir / "evaluations.csv")
    assert len(evals) == 80 and summary["failed_evaluations"] == (evals.status == "failed").sum() > 0
    ok = evals[(evals.status == "ok") & evals.feasible]
    expected = ok.iloc[_non_dominated(np.c_[-ok.accuracy, ok.weight_bits])]
    front = pd.read_csv(run_dir / "pareto.csv")
    assert sorted(front.eval_id) == sorted(expected.eval_id) and len(front) > 3


def test_a_slow_evaluation_times_out_and_the_search_goes_on(tmp_path):
    path = write_config(
        tmp_path,
        toy={"n_var": 2, "sleep": 2.0, "sleep_when_first_is": 3},
        algorithm={"name": "random", "budget": 20},
        output={"eval_timeout": 0.05},
    )
    assert run_cli("run", str(path), "--quiet") == 0
    evals = pd.read_csv(tmp_path / "results/toy/random-s0/evaluations.csv")
    slow = evals[evals.x0 == 3]
    assert len(evals) == 20 and len(slow) > 0
    assert (slow.status == "failed").all() and (slow.reason == "timed out after 0.05s").all()
    assert (evals[evals.x0 != 3].status == "ok").all()


def _crashing_search(monkeypatch, after: int) -> None:
    def _run(self, ctx):
        ctx.evaluator.evaluate(ctx.space.random(ctx.rng(), after))
        raise RuntimeError("boom in the algorithm")

    monkeypatch.setattr(RandomSearch, "_run", _run)


def _cfg(tmp_path):
    return parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "algorithm": {"name": "random", "budget": 50},
            "output": {"dir": str(tmp_path / "run"), "plots": False},
        }
    )


def test_a_crash_mid_run_still_writes_the_outputs(tmp_path, monkeypatch):
    _crashing_search(monkeypatch, after=7)
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment(_cfg(tmp_path), progress=False)
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["status"] == "error" and summary["error"] == "RuntimeError: boom in the algorithm"
    assert summary["evaluations"] == len(pd.read_csv(tmp_path / "run/evaluations.csv")) > 0


def test_failing_outputs_never_mask_the_error_that_stopped_the_run(tmp_path, monkeypatch, capsys):
    _crashing_search(monkeypatch, after=3)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dse.run.runner, "write_run_outputs", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment(_cfg(tmp_path), progress=False)
    assert "could not write the run outputs (OSError: disk full)" in capsys.readouterr().err
    lines = (tmp_path / "run/journal.jsonl").read_text().splitlines()
    assert sum('"kind":"search"' in line for line in lines) == 3  # the journal kept the work


def test_a_search_refusing_its_options_removes_the_folder_it_created(tmp_path, monkeypatch):
    def refuse(self, ctx):
        raise ConfigError("algorithm.options.x: does not suit this space")

    cfg = _cfg(tmp_path)
    run_experiment(cfg, progress=False)  # an earlier, good run
    old = sorted(p.name for p in (tmp_path / "run").iterdir())
    monkeypatch.setattr(RandomSearch, "_run", refuse)
    with pytest.raises(ConfigError, match="does not suit"):
        run_experiment(cfg, progress=False, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # moved aside, then put back
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == old
    with pytest.raises(ConfigError):  # resuming an existing run: its folder stays
        run_experiment(cfg, progress=False)
    assert json.loads((tmp_path / "run/summary.json").read_text())["status"] == "error"
