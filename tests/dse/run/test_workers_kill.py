"""A `--workers 2` run killed (SIGKILL, Ctrl-C, SIGTERM) leaves no worker behind and resumes to the
very journal and front of an uninterrupted run."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pandas as pd
import psutil
import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import events, journal_lines, start_run, wait_for_lines

WORKERS = ("--workers", "2")


def _config(tmp_path, name, **toy):
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, toy={"n_var": 4, **toy}, algorithm={"budget": 60, "pop_size": 12})


def _front(run_dir):
    return pd.read_csv(run_dir / "pareto.csv").filter(regex="^(?!.*seconds$)")


def _workers_of(proc: subprocess.Popen) -> list[psutil.Process]:
    """The driver's worker processes (multiprocessing's resource tracker, also a child, left out)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


def _gone(procs: list[psutil.Process], timeout: float = 5.0) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not alive


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run_and_leaves_no_worker(tmp_path):
    cfg = _config(tmp_path, "killed", sleep=0.03)
    out = tmp_path / "killed-run"
    rng = random.Random(3)
    kills, seen = 0, 0
    while kills < 3:
        proc = start_run(cfg, "--out", str(out), *WORKERS)
        if not wait_for_lines(proc, out, seen + 1, timeout=60):
            proc.communicate()
            break
        workers = _workers_of(proc)
        try:
            proc.communicate(timeout=rng.uniform(0.0, 0.3))
        except subprocess.TimeoutExpired:
            assert len(workers) == 2
            proc.send_signal(signal.SIGKILL)
            proc.wait()  # not communicate(): workers hold the driver's stdout until they end
            kills += 1
            assert _gone(workers), "a worker outlived its SIGKILLed driver"
            proc.communicate()
        seen = journal_lines(out)
    assert kills >= 2, "the run finished before it could be killed: raise the toy's sleep"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), *WORKERS) == 0

    ref_cfg = _config(tmp_path, "reference")
    for workers in ("2", "1"):  # uninterrupted, with the pool and in one process
        ref = tmp_path / f"reference-run-{workers}"
        assert run_cli("run", str(ref_cfg), "--quiet", "--out", str(ref), "--workers", workers) == 0
        assert events(out) == events(ref)
        pd.testing.assert_frame_equal(_front(out), _front(ref))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_the_workers_and_write_what_finished(tmp_path, sig):
    cfg = _config(tmp_path, "stopped", sleep=0.2)
    out = tmp_path / "stopped-run"
    proc = start_run(cfg, "--out", str(out), *WORKERS)
    assert wait_for_lines(proc, out, 12, timeout=60)
    workers = _workers_of(proc)
    assert len(workers) == 2
    start = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and time.monotonic() - start < 10
    assert _gone(workers, 1.0)
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), *WORKERS) == 0
    assert len([e for e in events(out) if e["kind"] == "search"]) == 60


@pytest.mark.slow
def test_workers_busy_with_long_evaluations_end_soon_after_their_driver_is_killed(tmp_path):
    pids = tmp_path / "pids.log"
    cfg = _config(tmp_path, "long", sleep=60.0, pid_log=str(pids))
    proc = start_run(cfg, "--out", str(tmp_path / "long-run"), *WORKERS)
    try:
        deadline = time.monotonic() + 60
        while not pids.exists():  # a worker is mid-evaluation (references go one at a time), one idle
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        workers = _workers_of(proc)
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()  # not communicate(): workers hold the driver's stdout until they end
    assert _gone(workers, 3.0), "workers went on evaluating for a driver that is gone"
    proc.communicate()
