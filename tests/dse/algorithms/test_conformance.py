"""What every registered algorithm must do, checked on the torch-free toy problem.

Parametrised over `ALGORITHMS.names()`, so a newly registered algorithm gets the suite for free
(as optuna's sampler tests do); what one needs to run at all (options, constraints, a smaller
space, an optional package) goes in SETTINGS below, never into special-cased tests. Properties:

- reproducible: the same seed writes the same journal (timings aside), in this process and in a
  fresh one with another hash seed;
- resumable: a run killed mid-evaluation (twice) and rerun ends with the journal and every output
  of an uninterrupted run;
- budgeted: no more distinct search evaluations (journal rows and model runs) than the budget, and
  all of it where the algorithm wants more: a smaller budget only ends the same search sooner;
- failure-tolerant: configurations that raise are recorded as failed and the run carries on;
- batch-invariant: where evaluations go out in batches to several workers, the journal is the one
  written one evaluation at a time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.core.registry import ALGORITHMS
from dse.run.evaluator import CHUNK
from dse.run.executor import InProcess
from dse.run.journal import JOURNAL_NAME
from tests.dse.proc import REPO, events
from tests.dse.runs import run_toy
from tests.dse.toy import ToyProblem

BUDGET = 24  # pop_size 12 (tests.dse.runs): two MOEA generations
SMALL_BUDGET = 5  # below what any algorithm wants here


@dataclass(frozen=True)
class Setting:
    options: dict[str, Any] = field(default_factory=dict)
    toy: dict[str, Any] = field(default_factory=dict)  # default: 4 variables of [2, 3, 4, 6, 8]
    constraints: dict[str, Any] | None = None  # None: max_accuracy_drop 5
    fail_when_first_is: int = 3  # the x0 value whose configurations raise (failure property)
    requires: str | None = None  # an optional package the algorithm cannot run without
    fresh_process: bool = True  # False: too slow to start in a second process (say why)


SETTINGS: dict[str, Setting] = {
    "rnsga2": Setting(options={"ref_points": [[99.0, 400], [97.0, 300]]}),
    "moead": Setting(constraints={}),  # pymoo's MOEA/D refuses constraints
    # numba compiles AGE-MOEA's kernels anew in every process (seconds each): not in a second one
    "agemoea": Setting(requires="numba", fresh_process=False),
    "agemoea2": Setting(requires="numba", fresh_process=False),
    # 16 configurations: exhaustive finishes the space within the budget
    "exhaustive": Setting(toy={"n_var": 2, "choices": [2, 3, 4, 8]}),
    # every bisection configuration is x0 = high or low, and a failed all-low is refused by design
    # ("choose a higher low"): failing the all-high point leaves the search a failure to carry on from
    "bisection": Setting(fail_when_first_is=8),
    "greedy": Setting(fail_when_first_is=6),  # it lowers x0 from 8 one choice at a time, never to 3 here
    "ilp": Setting(options={"n_budgets": 4}),  # 17 sensitivities + 4 solutions: finishes within the budget
}


def _runnable(name: str) -> bool:
    req = SETTINGS.get(name, Setting()).requires
    return req is None or importlib.util.find_spec(req) is not None


def _param(name: str) -> Any:
    req = SETTINGS.get(name, Setting()).requires
    reason = f"{name} needs the optional package {req!r}, which is not installed (pip install {req})"
    marks = [pytest.mark.skipif(not _runnable(name), reason=reason)]
    if req is not None:  # numba compiles these on first use (~3 s a process): not in the quick loop
        marks.append(pytest.mark.slow)
    return pytest.param(name, marks=marks)


NAMES = [_param(n) for n in ALGORITHMS.names()]
FRESH = [n for n in ALGORITHMS.names() if SETTINGS.get(n, Setting()).fresh_process]


def run(tmp: Path, name: str, out: str, *, budget: int = BUDGET, **toy: Any):
    s = SETTINGS.get(name, Setting())
    return run_toy(
        tmp, name, s.options, budget=budget, toy={**s.toy, **toy}, constraints=s.constraints, out=out
    )


# -- what the runs left behind -----------------------------------------------------------------------


def search_events(run_dir: Path) -> list[dict[str, Any]]:
    return [e for e in events(run_dir) if e["kind"] == "search"]


def check_journal(run_dir: Path, budget: int) -> list[dict[str, Any]]:
    """Search rows numbered 0..n-1, each a distinct configuration, no more of them than the budget."""
    rows = search_events(run_dir)
    assert [e["eval_id"] for e in rows] == list(range(len(rows)))
    configs = [tuple(e["values"].values()) for e in rows]
    assert len(set(configs)) == len(configs), "a configuration was evaluated twice"
    assert len(rows) <= budget, f"{len(rows)} search evaluations for a budget of {budget}"
    return rows


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).filter(regex="^(?!.*seconds$)")


def outputs(run_dir: Path) -> dict[str, Any]:
    """Every file derived from the journal, timings and how many were replayed aside."""
    out: dict[str, Any] = {}
    for path in sorted(run_dir.iterdir()):
        if path.suffix == ".csv":
            out[path.name] = _frame(path)
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data.get("source"), dict):  # mpq.json names the folder it was written in
                data["source"].pop("run_dir", None)
            drop = ("replayed_from_journal",)
            out[path.name] = {k: v for k, v in data.items() if not k.endswith("seconds") and k not in drop}
    return out


def assert_same_outputs(a: Path, b: Path) -> None:
    oa, ob = outputs(a), outputs(b)
    assert sorted(oa) == sorted(ob)
    for name, value in oa.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, ob[name], obj=name)
        else:
            assert value == ob[name], name


# -- one uninterrupted run per algorithm, shared by the properties -------------------------------


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory, fresh_process_runs):  # the fresh process starts early
    """name -> run folder of the uninterrupted run with BUDGET; made on first use."""
    root = tmp_path_factory.mktemp("full")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = run(root, name, name).run_dir
        return cache[name]

    return get


def _child(root: str, names: list[str]) -> None:
    """Entry point of the fresh process of the reproducibility test."""
    for name in names:
        run(Path(root), name, name)


@pytest.fixture(scope="module")
def fresh_process_runs(tmp_path_factory):
    """The same runs made by a fresh process with another hash seed: started with the first test that
    needs `full_runs`, so it works while the others run; awaited by the last test of the file."""
    root = tmp_path_factory.mktemp("fresh")
    names = [n for n in FRESH if _runnable(n)]
    code = f"import sys; from {__name__} import _child; _child(sys.argv[1], sys.argv[2:])"
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root), *names], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    done: list[bool] = []

    def get(name: str) -> Path:
        if not done:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            done.append(True)
        return root / name

    yield get
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


# -- the properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_journal(tmp_path, name, full_runs):
    first = full_runs(name)
    again = run(tmp_path, name, "again").run_dir
    assert search_events(first), "the run evaluated nothing"
    assert events(again) == events(first)


@pytest.fixture
def killer(monkeypatch):
    """`arm(run_dir, k)`: kill the run (KeyboardInterrupt, as from a signal) in the first model run it
    starts once its journal holds k search rows; that evaluation is lost, as under SIGKILL.
    (Counted in the journal, not in model runs: a configuration already computed as a reference
    point is answered without one.) `arm(None)` lets runs finish."""
    armed: dict[str, Any] = {}
    original = ToyProblem.evaluate

    def evaluate(self, values, metrics=None, **kw):
        if armed and kw.get("within_space", True) and metrics is not None and "accuracy" in metrics:
            journal = armed["run_dir"] / JOURNAL_NAME
            if journal.read_text().count('"kind":"search"') >= armed["at"]:
                armed.clear()
                raise KeyboardInterrupt
        return original(self, values, metrics, **kw)

    monkeypatch.setattr(ToyProblem, "evaluate", evaluate)

    def arm(run_dir: Path | None, at: int = 0) -> None:
        armed.clear()
        if run_dir is not None:
            armed.update(run_dir=run_dir, at=at)

    return arm


@pytest.mark.parametrize("name", NAMES)
def test_resume_after_kills_equals_an_uninterrupted_run(tmp_path, name, full_runs, killer):
    ref = full_runs(name)
    n = len(search_events(ref))
    assert n >= 3, "too few evaluations to interrupt twice"
    out = tmp_path / "resumed"
    for at in (n // 3, 2 * n // 3):  # killed twice: a resumed run resumes too
        killer(out, at)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, name, "resumed")
        assert at <= len(search_events(out)) < n
    killer(None)
    res = run(tmp_path, name, "resumed")
    assert res.summary["replayed_from_journal"] >= 2 * n // 3
    assert events(res.run_dir) == events(ref)
    assert_same_outputs(res.run_dir, ref)  # the front and every other output
    run(tmp_path, name, "resumed")  # rerunning a finished run adds nothing
    assert events(res.run_dir) == events(ref)


@pytest.fixture
def model_runs(monkeypatch):
    """The search configurations the problem computed accuracy for (each a model run), in order."""
    calls: list[dict[str, int]] = []
    original = ToyProblem.evaluate

    def evaluate(self, values, metrics=None, **kw):
        if kw.get("within_space", True) and (metrics is None or "accuracy" in metrics):
            calls.append(dict(values))
        return original(self, values, metrics, **kw)

    monkeypatch.setattr(ToyProblem, "evaluate", evaluate)
    return calls


@pytest.mark.parametrize("name", NAMES)
def test_budget_is_respected_and_used(tmp_path, name, model_runs):
    found = {}
    for budget in (BUDGET, SMALL_BUDGET):
        model_runs.clear()
        res = run(tmp_path, name, f"budget-{budget}", budget=budget)
        rows = found[budget] = check_journal(res.run_dir, budget)
        assert res.summary["evaluations"] == len(rows)
        # the model ran once for each new journal row (not for one the memo answered) and never else
        computed = [e["values"] for e in rows if not e["info"].get("memo")]
        assert model_runs == computed, "the model ran for search configurations outside the evaluator"
    # an algorithm stops early only when done: with less budget it runs the same search, cut short
    full, small = found[BUDGET], found[SMALL_BUDGET]
    assert len(small) == min(SMALL_BUDGET, len(full))
    assert small == full[: len(small)]


@pytest.mark.parametrize("name", NAMES)
def test_a_failed_evaluation_does_not_stop_the_run(tmp_path, name):
    bad = SETTINGS.get(name, Setting()).fail_when_first_is
    res = run(tmp_path, name, "failing", fail_when_first_is=bad)
    rows = check_journal(res.run_dir, BUDGET)
    failed = [e["eval_id"] for e in rows if e["values"]["x0"] == bad]
    assert failed, f"no configuration with x0={bad} was tried: the property was not exercised"
    for e in rows:
        if e["values"]["x0"] == bad:
            assert e["status"] == "failed" and "injected failure" in e["reason"], e
        else:
            assert e["status"] == "ok", e
    assert any(e["status"] == "ok" and e["eval_id"] > failed[0] for e in rows), "nothing ran after a failure"
    assert res.summary["status"] in ("finished", "budget_spent")
    assert res.summary["failed_evaluations"] == len(failed)
    table = pd.read_csv(res.run_dir / "evaluations.csv")
    assert (table.status == "failed").sum() == len(failed)


@pytest.mark.parametrize("name", NAMES)
def test_batches_for_several_workers_write_the_journal_of_one_by_one_evaluation(
    tmp_path, name, full_runs, monkeypatch
):
    """The in-process executor told it has 3 workers: the evaluator sends it chunks of up to 12
    model runs at once, as it would a pool; the journal must not change."""
    reference = events(full_runs(name))  # first: made one evaluation at a time
    sizes: list[int] = []
    original = InProcess.run

    def run_batch(self, tasks):
        sizes.append(len(tasks))
        return original(self, tasks)

    monkeypatch.setattr(InProcess, "workers", 3)
    monkeypatch.setattr(InProcess, "run", run_batch)
    batched = run(tmp_path, name, "batched").run_dir
    assert events(batched) == reference
    assert max(sizes) <= CHUNK * 3
    assert max(sizes) > 1, f"{name} sent no batch: every model run went out alone"


# last in the file: the fresh process has been running alongside the tests above


@pytest.mark.parametrize("name", [p for p in NAMES if p.values[0] in FRESH])
def test_same_seed_same_journal_in_a_fresh_process(name, full_runs, fresh_process_runs):
    assert events(fresh_process_runs(name)) == events(full_runs(name)), "another process, another journal"
