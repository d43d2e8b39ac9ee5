"""Evaluations per second through 1..N workers, measured side by side in one process (`dse bench`).

Every executor gets the same tasks (`dse bench` gives full evaluations: their cost is the unit the
problem's own figures use, where early rejection would make the figure depend on how many random
configurations miss the constraint). Each pool is warmed up with one untimed pass (workers build the
problem, fill their weight caches); then its passes are timed in turn with passes of this process
alone, so that a change in the machine's load hits both alike, and the median pass counts. One local
worker is what `--workers 1` runs: this process, no pool.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dse.core.config import ExperimentConfig
from dse.core.problem import Problem
from dse.run.executor import Executor, InProcess, Task
from dse.run.workers import make_executor

MIB = 1024**2


@dataclass
class Throughput:
    backend: str
    workers: int
    evaluations_per_s: float
    #: against one local worker (this process), timed in turn with it
    speedup: float
    #: resident memory of each worker process (MiB); with one local worker, this process
    rss_mib: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workers": self.workers,
            "evaluations_per_s": self.evaluations_per_s,
            "speedup": self.speedup,
            "rss_mib_per_worker": self.rss_mib,
        }


def search_tasks(
    candidates: Sequence[Mapping[str, int]], metrics: Sequence[str], limits: Mapping[str, float]
) -> list[Task]:
    return [Task(dict(v), list(metrics), reject_worse_than=dict(limits)) for v in candidates]


def measure_throughput(
    cfg: ExperimentConfig,
    problem: Problem,
    tasks: Sequence[Task],
    max_workers: int,
    backends: Sequence[str] = ("local",),
    repeats: int = 3,
) -> list[Throughput]:
    """Evaluations per second of `tasks` for every backend and 1..`max_workers` workers.

    Each pool's timed passes alternate with passes of this process alone (one local worker), and its
    speedup is taken against those: on a shared machine, load that comes and goes hits both sides."""
    rows: list[Throughput] = []
    alone = InProcess(problem)
    alone.run(tasks)  # warm-up
    ray_started = _start_ray(cfg, max_workers) if "ray" in backends else False
    try:
        for k in range(1, max_workers + 1):
            executors: dict[str, Executor] = {}
            try:
                for backend in backends:
                    executors[backend] = _executor(cfg, problem, backend, k)
                    if not isinstance(executors[backend], InProcess):  # "alone" is warm already
                        executors[backend].run(tasks)  # warm-up: workers started, caches filled
                seconds: dict[str, list[float]] = {b: [] for b in ["alone", *executors]}
                for _ in range(repeats):
                    for name, ex in [("alone", alone), *executors.items()]:
                        if isinstance(ex, InProcess) and name != "alone":
                            continue  # one local worker is this process: timed as "alone"
                        start = time.perf_counter()
                        ex.run(tasks)
                        seconds[name].append(time.perf_counter() - start)
                base = len(tasks) / statistics.median(seconds["alone"])
                for backend, ex in executors.items():
                    timed = seconds["alone" if isinstance(ex, InProcess) else backend]
                    rate = len(tasks) / statistics.median(timed)
                    rows.append(Throughput(backend, k, rate, rate / base, [r / MIB for r in _rss(ex)]))
            finally:
                for ex in executors.values():
                    ex.close()
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    return rows


def _executor(cfg: ExperimentConfig, problem: Problem, backend: str, workers: int) -> Executor:
    address = cfg.execution.address if backend == "ray" else None
    execution = cfg.execution.model_copy(update={"backend": backend, "address": address})
    return make_executor(cfg.model_copy(update={"execution": execution}), problem, workers)


def _start_ray(cfg: ExperimentConfig, workers: int) -> bool:
    """One Ray for every pool measured (starting Ray per pool costs seconds each time)."""
    from dse.run.ray_pool import start_ray

    return start_ray(cfg.execution, workers)


def _rss(executor: Executor) -> list[int]:
    if isinstance(executor, InProcess):
        import psutil

        return [int(psutil.Process().memory_info().rss)]
    return list(executor.worker_rss())  # type: ignore[attr-defined]
