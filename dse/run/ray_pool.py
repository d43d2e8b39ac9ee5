"""`execution.backend: ray`: the worker pool as a Ray `ActorPool`, on this machine or a cluster.

Each actor builds the problem once from the same `WorkerSpec` a local worker gets and runs
`run_task`. A Ray actor's methods run one at a time in the actor process's main thread (checked by
`tests/dse/run/test_ray_pool.py`), so the SIGALRM per-evaluation timeout works there as in a local
worker. Ray is imported here only, on first use: `dse[ray]` is an optional extra.

`execution.address` joins a running cluster (`ray start --head` there, then `address: auto`); without
it a local Ray is started for the pool and shut down when the pool closes. Actors ask for
`execution.threads` CPUs (1 when unset) and, on a CUDA device (or `auto` where the cluster has GPUs),
one GPU each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from dse.core.errors import DseError
from dse.core.execution import ExecutionSection
from dse.run.executor import Outcome, Task, run_task
from dse.run.workers import RAY_MISSING, WorkerSpec, build_problem

#: seconds to wait for every actor to have built its problem (a cluster short of resources never does)
START_TIMEOUT_S = 900.0
#: the object store of a local Ray: tasks and outcomes are small (Ray's default takes 30 % of memory)
OBJECT_STORE_BYTES = 100 * 1024**2


class RayWorker:
    """One actor's state: the problem built from the spec, or why it could not be built."""

    def __init__(self, spec: WorkerSpec) -> None:
        from dse.run.pool import one_line

        self.problem: Any = None
        self.error = ""
        try:
            self.problem = build_problem(spec)
        except BaseException as e:  # noqa: BLE001 - reported to the driver as one line by ready()
            self.error = one_line(e)

    def ready(self) -> str:
        return self.error

    def run(self, task: Task) -> Outcome:
        return run_task(self.problem, task)

    def rss(self) -> int:
        import psutil

        return int(psutil.Process().memory_info().rss)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DseError(RAY_MISSING) from None
    return ray


def start_ray(execution: ExecutionSection, workers: int) -> bool:
    """Connect to `execution.address`, or start a local Ray big enough for `workers` actors; True
    where this call started it (and so should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": True}
    if execution.address:
        try:
            ray.init(address=execution.address, **common)
        except (ConnectionError, RuntimeError, ValueError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DseError(
                f"execution.address: cannot join the Ray cluster {execution.address!r}: {why}"
            ) from None
    else:
        cpus = max(os.cpu_count() or 1, workers * (execution.threads or 1))
        ray.init(num_cpus=cpus, object_store_memory=OBJECT_STORE_BYTES, **common)
    return True


def _wants_gpu(ray: Any, device: str) -> bool:
    """A CUDA device, or `auto` on a cluster that has GPUs (an actor sees only the GPU Ray gives it)."""
    return device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)


class RayPool:
    """`workers` Ray actors; `run(tasks)` returns their outcomes in task order."""

    def __init__(self, spec: WorkerSpec, workers: int, execution: ExecutionSection) -> None:
        ray = _ray()
        from ray.util import ActorPool

        self.workers = workers
        self._ray = ray
        self._started = start_ray(execution, workers)
        self._closed = False
        gpus = 1 if _wants_gpu(ray, execution.device) else 0
        actor = ray.remote(num_cpus=execution.threads or 1, num_gpus=gpus)(RayWorker)
        self._actors = [actor.remote(spec) for _ in range(workers)]
        try:
            errors = ray.get([a.ready.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except BaseException as e:
            self.close()
            if isinstance(e, ray.exceptions.GetTimeoutError):
                raise DseError(
                    f"execution: {workers} Ray workers did not start within {START_TIMEOUT_S:.0f}s "
                    f"(each needs {execution.threads or 1} CPU{' and 1 GPU' if gpus else ''})"
                ) from None
            raise
        if any(errors):
            self.close()
            raise DseError(f"a worker could not build the problem: {next(e for e in errors if e)}")
        self._pool = ActorPool(self._actors)

    def run(self, tasks: Sequence[Task]) -> list[Outcome]:
        if self._closed:
            raise DseError("the worker pool is closed")
        try:  # ActorPool.map: each task to the next idle actor, results in task order
            return list(self._pool.map(lambda a, t: a.run.remote(t), list(tasks)))
        except BaseException as e:
            self.close()
            if isinstance(e, self._ray.exceptions.RayActorError):
                why = (str(e).strip().splitlines() or [""])[0][:200]
                raise DseError(f"a Ray worker died mid-evaluation ({why}); the run can be resumed") from None
            raise

    def worker_rss(self) -> list[int]:
        """Resident memory of each actor process, in bytes."""
        return list(self._ray.get([a.rss.remote() for a in self._actors]))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for a in self._actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - an actor already gone
                pass
        if self._started:
            self._ray.shutdown()
