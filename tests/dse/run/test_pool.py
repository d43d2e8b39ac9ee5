"""The local worker pool: same outcomes as in-process, in order; failures, timeouts and dead workers."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dse.core.config import parse_config
from dse.core.errors import DseError
from dse.run.executor import InProcess, Task, run_task
from dse.run.pool import ProcessPool, one_line
from dse.run.workers import make_executor, worker_spec
from tests.dse.toy import ToyProblem

METRICS = ["accuracy", "weight_bits", "total_bits"]


def _cfg(workers: int = 2, **toy):
    return parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "toy": {"n_var": 3, **toy},
            "execution": {"workers": workers, "threads": 1},
        }
    )


def _tasks(timeout: float | None = None) -> list[Task]:
    """Full and rejected evaluations (accuracy below 96 is rejected early) of unequal costs."""
    tasks = []
    for a in (2, 3, 4, 6, 8):
        for b in (2, 8):
            limit = {"accuracy": 96.0} if b == 2 else {}
            tasks.append(Task({"x0": a, "x1": b, "x2": 4}, METRICS, reject_worse_than=limit, timeout=timeout))
    return tasks


@pytest.fixture
def pool_of():
    """A pool factory that closes whatever it made, even when the test fails."""
    made = []

    def make(cfg, workers=None):
        ex = make_executor(cfg, ToyProblem(cfg.toy), workers)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.close()


def _plain(outcomes):
    """Everything but the timing, NaN written out (NaN != NaN)."""
    return [(o.status, repr(o.metrics), o.reason, o.bounds) for o in outcomes]


@pytest.mark.parametrize("workers", [1, 2])
def test_outcomes_equal_in_process_ones_in_task_order(pool_of, workers):
    # x0 = 2 takes longer: outcomes come back out of order, and are put back in order
    cfg = _cfg(workers, early_reject=True, fail_when_first_is=3, sleep=0.1, sleep_when_first_is=2)
    expected = InProcess(ToyProblem(cfg.toy)).run(_tasks())
    assert {o.status for o in expected} == {"ok", "rejected", "failed"}
    ex = pool_of(cfg)
    assert isinstance(ex, InProcess) == (workers == 1)  # one local worker: no extra process
    assert _plain(ex.run(_tasks())) == _plain(expected)
    assert _plain(ex.run(_tasks()[::-1])) == _plain(expected[::-1])  # the same workers, again


def test_a_timed_out_evaluation_in_a_worker_is_failed_with_the_timeout(pool_of):
    ex = pool_of(_cfg(sleep=5.0, sleep_when_first_is=2))
    start = time.monotonic()
    out = ex.run(_tasks(timeout=0.3)[:4])  # x0 = 2 (twice) sleeps past the limit, x0 = 3 does not
    assert [o.status for o in out] == ["failed", "failed", "ok", "ok"]
    assert out[0].reason == "timed out after 0.3s"
    assert time.monotonic() - start < 4  # the worker was interrupted, not waited for


def test_a_failing_configuration_in_a_worker_is_failed_and_the_pool_goes_on(pool_of):
    ex = pool_of(_cfg(fail_when_first_is=4))
    out = ex.run(_tasks())
    assert [o.status == "failed" for o in out] == [t.values["x0"] == 4 for t in _tasks()]
    assert {o.reason for o in out if o.status == "failed"} == {"RuntimeError: injected failure"}
    assert ex.run(_tasks()[:1])[0].status == "ok"


def test_evaluations_run_in_the_workers_spread_over_them(pool_of, tmp_path):
    log = tmp_path / "pids.log"
    ex = pool_of(_cfg(pid_log=str(log), sleep=0.05))
    for _ in range(5):  # a worker that starts late (a loaded machine) may miss the first batch
        ex.run(_tasks())
        pids = [int(p) for p in log.read_text().split()]
        if set(pids) == set(ex.pids()):
            break
    assert len(pids) % 10 == 0 and os.getpid() not in pids
    assert set(pids) == set(ex.pids())  # dispatched one at a time to whichever is idle: both worked


def test_a_worker_that_dies_mid_task_is_an_error_naming_it_not_a_hang(pool_of):
    ex = pool_of(_cfg(sleep=10.0))
    ex.run([])  # nothing to do; the workers start meanwhile
    victim = ex.pids()[0]
    threading.Timer(1.5, os.kill, (victim, signal.SIGKILL)).start()
    start = time.monotonic()
    with pytest.raises(DseError, match=rf"worker 0 \(pid {victim}\) was killed by SIGKILL while evaluating"):
        ex.run(_tasks()[:2])
    assert time.monotonic() - start < 8
    with pytest.raises(DseError, match="closed"):  # the pool stopped its other worker
        ex.run(_tasks()[:1])


def test_a_worker_that_cannot_build_the_problem_says_why_in_one_line():
    spec = worker_spec(_cfg())
    bad = {**spec.config, "toy": {**spec.config["toy"], "n_var": 0}}  # e.g. a config edited meanwhile
    ex = ProcessPool(type(spec)(**{**spec.__dict__, "config": bad}), 2)
    try:
        with pytest.raises(DseError) as e:
            ex.run(_tasks()[:1])
    finally:
        ex.close()
    assert str(e.value).startswith("a worker could not build the problem: worker config: toy.n_var: ")
    assert "\n" not in str(e.value)
    assert one_line(ImportError("no module named x\n  (traceback)")) == "ImportError: no module named x"


def test_close_stops_every_worker(pool_of):
    ex = pool_of(_cfg())
    ex.run(_tasks()[:2])
    procs = list(ex._procs)
    ex.close()
    assert not any(p.is_alive() for p in procs)


def test_ctrl_c_mid_batch_stops_the_busy_workers_at_once(pool_of):
    # Ctrl-C as a terminal process takes it, whatever the test runner inherited (a runner started in
    # the background of a non-interactive shell ignores SIGINT, and so would this process)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ex = pool_of(_cfg(sleep=30.0))
        procs = list(ex._procs)
        threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            ex.run(_tasks()[:4])
        assert not any(p.is_alive() for p in procs) and time.monotonic() - start < 6
    finally:
        signal.signal(signal.SIGINT, old)


def test_the_timeout_also_interrupts_an_evaluation_outside_the_main_thread():
    """SIGALRM reaches the main thread only; an evaluation in another thread gets the timer's
    exception instead (and none after it finished in time)."""
    problem = ToyProblem(_cfg(sleep=5.0, sleep_when_first_is=2).toy)
    out: list = []
    tasks = _tasks(timeout=0.3)[:3]  # x0 = 2 sleeps past the limit, x0 = 3 does not
    thread = threading.Thread(target=lambda: out.extend(run_task(problem, t) for t in tasks))
    start = time.monotonic()
    thread.start()
    thread.join(10)
    assert [o.status for o in out] == ["failed", "failed", "ok"]
    assert out[0].reason == "timed out after 0.3s" and time.monotonic() - start < 4
    time.sleep(0.4)  # a timer firing late would raise here, in no evaluation
