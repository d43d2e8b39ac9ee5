"""What every worker needs to rebuild the driver's problem, and the choice of executor.

A worker (a spawned process or a Ray actor) receives a `WorkerSpec`: the resolved config as plain
JSON data plus the import paths of the problem's classes, so that it builds the very problem the
driver built (the baseline is cached by the driver first, calibration is deterministic given the
config) and needs no registration done by the driver's own imports (a problem registered by a test
or a plug-in module is found by path). Only the driver holds the memo, the budget and the journal.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from dse.core.config import ExperimentConfig, parse_config
from dse.core.errors import ConfigError, DseError
from dse.core.problem import Problem
from dse.core.registry import PROBLEMS
from dse.run.executor import Executor, InProcess

RAY_MISSING = "execution.backend: ray is not installed; install the extra: pip install 'dse[ray]'"


@dataclass(frozen=True)
class WorkerSpec:
    """Plain, picklable data a worker builds its problem from."""

    config: dict[str, Any]
    problem: str  # the registered problem name (experiment.problem)
    config_class: str  # 'module:QualName' of the problem's config class
    problem_class: str  # 'module:QualName' of the problem class
    sys_path: list[str] = field(default_factory=list)  # where the driver found its modules


def _path(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def worker_spec(cfg: ExperimentConfig) -> WorkerSpec:
    name = cfg.experiment.problem
    return WorkerSpec(
        config=cfg.model_dump(mode="json"),
        problem=name,
        config_class=_path(PROBLEMS.config_class(name)),
        problem_class=_path(PROBLEMS.problem_class(name)),
        sys_path=[p for p in sys.path if p],
    )


def build_problem(spec: WorkerSpec) -> Problem:
    """The driver's problem, rebuilt in this process (a worker's startup)."""
    for p in reversed(spec.sys_path):
        if p not in sys.path and os.path.isdir(p):
            sys.path.insert(0, p)
    if spec.problem not in PROBLEMS:
        PROBLEMS.register(spec.problem, (spec.config_class, spec.problem_class))  # type: ignore[arg-type]
    cfg = parse_config(dict(spec.config), source="worker config")
    problem: Problem = PROBLEMS.problem_class(spec.problem).from_config(cfg, progress=False)
    return problem


def worker_threads(cfg: ExperimentConfig) -> int | None:
    """Torch threads per local worker: `execution.threads`, else the machine's cores shared out (torch's
    default, every core in every worker, oversubscribes the machine as soon as there are two)."""
    if cfg.execution.threads is not None or cfg.execution.workers == 1:
        return cfg.execution.threads
    return max(1, (os.cpu_count() or 1) // cfg.execution.workers)


def oversubscription_note(cfg: ExperimentConfig) -> str | None:
    """One line where local workers x threads exceed this machine's cores (on a CPU, each evaluation
    then waits for the others: slower than fewer threads), else None."""
    ex, cores = cfg.execution, os.cpu_count() or 1
    if ex.backend != "local" or ex.workers == 1 or ex.device.startswith("cuda") or ex.threads is None:
        return None
    if ex.workers * ex.threads <= cores:
        return None
    return (
        f"execution: {ex.workers} workers x {ex.threads} threads on {cores} cores oversubscribes the CPU; "
        f"--set execution.threads={max(1, cores // ex.workers)} is usually faster"
    )


def check_execution(cfg: ExperimentConfig) -> None:
    """What the execution section can refuse before anything is built or written."""
    if cfg.execution.backend == "ray" and not ray_installed():
        raise ConfigError(RAY_MISSING)


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        return False


def make_executor(cfg: ExperimentConfig, problem: Problem, workers: int | None = None) -> Executor:
    """The executor `cfg.execution` asks for (`workers` overrides its count): this process for one
    local worker, else a pool whose workers each build the problem once."""
    check_execution(cfg)
    n = cfg.execution.workers if workers is None else workers
    if n < 1:
        raise DseError(f"execution.workers: must be at least 1, got {n}")
    if cfg.execution.backend == "local" and n == 1:
        return InProcess(problem)
    cfg = cfg.model_copy(update={"execution": cfg.execution.model_copy(update={"workers": n})})
    if cfg.execution.backend == "ray":
        from dse.run.ray_pool import RayPool

        return RayPool(worker_spec(cfg), n, cfg.execution)
    from dse.run.pool import ProcessPool

    threads = cfg.execution.model_copy(update={"threads": worker_threads(cfg)})
    return ProcessPool(worker_spec(cfg.model_copy(update={"execution": threads})), n)
