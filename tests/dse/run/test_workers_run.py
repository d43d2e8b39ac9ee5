"""Runs with a worker pool: the same records as one process, the driver alone journals, the pool is
made once and always closed, the CLI shortcuts reach `execution`, and Ray missing is one line."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

import dse.run.setup
from dse.cli import build_parser
from dse.cli.common import config_from_args
from dse.core.config import parse_config
from dse.run.executor import InProcess
from dse.run.runner import run_experiment
from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import events
from tests.dse.toy import ToyProblem

TOY = {"n_var": 4}


def _csv(run_dir):
    return pd.read_csv(run_dir / "evaluations.csv").filter(regex="^(?!.*seconds$)")


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_two_workers_write_what_one_process_writes_and_only_the_driver_journals(tmp_path, algorithm):
    pids = tmp_path / "pids.log"
    path = write_config(tmp_path, toy={**TOY, "pid_log": str(pids)}, algorithm={"name": algorithm})
    runs = {w: tmp_path / f"w{w}" for w in (1, 2)}
    for w, out in runs.items():
        pids.unlink(missing_ok=True)
        assert run_cli("run", str(path), "--quiet", "--out", str(out), "--workers", str(w)) == 0
        where = set(pids.read_text().split())
        # one worker: this process; two: never this process (toy evaluations take no time, so under
        # load the worker that started first may do them all)
        assert (where == {str(os.getpid())}) == (w == 1) and len(where) <= w
    assert events(runs[1]) == events(runs[2])  # one line per evaluation, same order, same ids
    pd.testing.assert_frame_equal(_csv(runs[1]), _csv(runs[2]))


class Recording(InProcess):
    """An executor that says it has two workers and records its life."""

    workers = 2
    made: list[Recording] = []

    def __init__(self, problem):
        super().__init__(problem)
        self.closed = False
        self.batches = 0
        Recording.made.append(self)

    def run(self, tasks):
        self.batches += 1
        return super().run(tasks)

    def close(self):
        self.closed = True


@pytest.fixture
def recording(monkeypatch):
    Recording.made = []
    monkeypatch.setattr(dse.run.setup, "make_executor", lambda cfg, problem: Recording(problem))
    return Recording.made


def test_a_comparison_shares_one_pool_and_closes_it(tmp_path, recording):
    path = write_config(tmp_path, compare={"algorithms": ["nsga2", "random"], "seeds": [0, 1], "budget": 20})
    assert run_cli("compare", str(path), "--quiet", "--workers", "2") == 0
    assert len(recording) == 1 and recording[0].closed and recording[0].batches > 4


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_run_closes_its_pool_on_ctrl_c_and_errors(tmp_path, recording, monkeypatch, stop):

    cfg = parse_config(
        {"experiment": {"name": "toy", "problem": "toy"}, "toy": TOY, "output": {"root": str(tmp_path)}}
    )

    def boom(self, ctx):
        ctx.evaluator.evaluate([ctx.space.highest()])
        raise stop("stopped")

    monkeypatch.setattr("dse.algorithms.base.Algorithm.run", boom)
    with pytest.raises(stop):
        run_experiment(cfg, progress=False)
    assert len(recording) == 1 and recording[0].closed


def test_execution_shortcuts_on_run_and_compare(tmp_path):
    path = str(write_config(tmp_path))
    shortcuts = ["--device", "cpu", "--workers", "3", "--backend", "ray"]
    for command in ("run", "compare"):
        args = build_parser().parse_args([command, path, *shortcuts])
        ex = (config_from_args(args) if command == "run" else _compare_config(args)).execution
        assert (ex.device, ex.workers, ex.backend) == ("cpu", 3, "ray")
    assert run_cli("run", path, "--workers", "0") == 2


def _compare_config(args):
    from dse.cli.common import execution_overrides
    from dse.core.config import load_config

    return load_config(args.inputs[0], execution_overrides(args), sets=args.sets)


@pytest.mark.parametrize("command", ["run", "compare", "validate", "bench"])
def test_ray_backend_without_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    monkeypatch.setattr(ToyProblem, "from_config", classmethod(lambda *a, **k: pytest.fail("built")))
    path = write_config(tmp_path)
    assert run_cli(command, str(path), "--backend", "ray") == 2
    err = capsys.readouterr().err
    why = "ray is not installed; install the extra: pip install 'dse[ray]'"
    assert err == f"error: execution.backend: {why}\n"
    assert not (tmp_path / "results").exists()  # nothing built or written


def test_more_local_threads_than_cores_is_pointed_out(monkeypatch):
    from dse.run.workers import oversubscription_note, worker_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def cfg(**execution):
        return parse_config({"experiment": {"problem": "toy"}, "execution": execution})

    note = oversubscription_note(cfg(workers=2, threads=2))
    assert note == (
        "execution: 2 workers x 2 threads on 2 cores oversubscribes the CPU; "
        "--set execution.threads=1 is usually faster"
    )
    for fine in ({"workers": 2, "threads": 1}, {"workers": 1, "threads": 4}, {"workers": 2}):
        assert oversubscription_note(cfg(**fine)) is None
    assert worker_threads(cfg(workers=2)) == 1  # unset: the cores shared out
    assert worker_threads(cfg(workers=1)) is None and worker_threads(cfg(workers=2, threads=3)) == 3


def test_a_run_begun_with_two_workers_resumes_in_one_process_to_the_same_records(tmp_path):
    path = write_config(tmp_path, toy=TOY)
    out, ref = tmp_path / "resumed", tmp_path / "straight"
    assert run_cli("run", str(path), "--quiet", "--out", str(out), "--workers", "2", "--budget", "25") == 0
    assert run_cli("run", str(path), "--quiet", "--out", str(out), "--workers", "1") == 0
    assert run_cli("run", str(path), "--quiet", "--out", str(ref)) == 0
    assert events(out) == events(ref)
