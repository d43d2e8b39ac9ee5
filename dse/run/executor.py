"""Where configurations are evaluated: in this process, or in a pool of workers (`execution.workers`).

The evaluator hands an executor a batch of `Task`s and gets one `Outcome` per task back, in the same
order. Both are plain, picklable data, so a worker process or a Ray actor can run `run_task` on its
own copy of the problem: only the driver keeps the memo, the budget and the journal. `run_task` is
the one place that turns what a problem's evaluation raised into a status, wherever it runs.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem, Rejected


class EvaluationTimeout(Exception):
    pass


@dataclass(frozen=True)
class Task:
    values: Mapping[str, int]
    metrics: Sequence[str]
    within_space: bool = True
    #: {metric: limit}: the evaluation may stop once the metric is proven worse (empty: exact)
    reject_worse_than: Mapping[str, float] = field(default_factory=dict)
    timeout: float | None = None


def run_metrics(problem: Problem, objectives: Objectives, constraint: Constraint) -> list[str]:
    """The metrics every task of a run asks for: its objectives, the constrained metric and every cost
    metric of the problem (cheap, and the tables show them all)."""
    return list(dict.fromkeys([*objectives.names, *constraint.metrics, *sorted(problem.COST_METRICS)]))


@dataclass
class Outcome:
    status: str  # "ok" | "rejected" | "failed"
    metrics: dict[str, float]
    reason: str = ""
    bounds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Executor(Protocol):
    """Runs batches of tasks; `workers` says how many run at once (1: this process)."""

    workers: int

    def run(self, tasks: Sequence[Task]) -> list[Outcome]: ...

    def close(self) -> None: ...


class InProcess:
    """The default executor: this process's problem, one task after another."""

    workers = 1

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def run(self, tasks: Sequence[Task]) -> list[Outcome]:
        return [run_task(self.problem, t) for t in tasks]

    def close(self) -> None:
        pass


def run_task(problem: Problem, task: Task) -> Outcome:
    """Evaluate one task on `problem`; a failing configuration becomes a `failed` outcome, never an
    exception (the search goes on), except Ctrl-C and running out of memory."""
    start = time.perf_counter()
    status, reason, bounds = "ok", "", {}
    try:
        rejecting = {"reject_worse_than": dict(task.reject_worse_than)} if task.reject_worse_than else {}
        with time_limit(task.timeout):
            metrics = problem.evaluate(
                dict(task.values), list(task.metrics), within_space=task.within_space, **rejecting
            )
    except Rejected as r:
        metrics = {m: r.metrics.get(m, float("nan")) for m in task.metrics}
        metrics[r.metric] = float("nan")
        status, reason, bounds = "rejected", f"rejected early: {r}", {r.metric: r.bound}
    except EvaluationTimeout:
        metrics, status, reason = {}, "failed", f"timed out after {task.timeout}s"
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - a failing configuration must not end the search
        metrics, status, reason = {}, "failed", f"{type(e).__name__}: {e}".splitlines()[0][:300]
    return Outcome(
        status, {k: float(v) for k, v in metrics.items()}, reason, bounds, time.perf_counter() - start
    )


@contextmanager
def time_limit(seconds: float | None):
    """SIGALRM-based limit: interrupts Python between operations. SIGALRM reaches a process's main
    thread only, which is where the driver, a worker process and a Ray actor evaluate; elsewhere (an
    evaluation in a thread) a timer thread raises the timeout in the evaluating thread instead."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        with _thread_time_limit(seconds):
            yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise EvaluationTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextmanager
def _thread_time_limit(seconds: float):
    """The limit for an evaluation outside the main thread: like SIGALRM, the exception lands between
    two Python operations of the evaluating thread."""
    target = ctypes.c_ulong(threading.get_ident())
    timer = threading.Timer(
        seconds,
        lambda: ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(EvaluationTimeout)),
    )
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)  # one raised too late: dropped
