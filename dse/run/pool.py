"""`execution.backend: local`: a pool of spawned worker processes, each with its own problem.

Each worker builds the problem once (`dse.run.workers.build_problem`) and then runs one task at a
time with `run_task` in its main thread, where the SIGALRM per-evaluation timeout works. Tasks go
out one at a time to whichever worker is idle (evaluations rejected early cost a fraction of full
ones, so fixed shares would leave workers waiting) and come back in submission order.

Stopping: the driver alone decides. Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole
process group; the driver stops them after writing what finished) and end when told, when their pipe
to the driver breaks, or when the driver has gone (a SIGKILLed driver leaves no worker behind). A
worker that dies mid-task is reported as such, never waited for.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from dse.core.errors import DseError
from dse.run.executor import Outcome, Task, run_task
from dse.run.workers import WorkerSpec, build_problem

#: seconds a worker checks that its driver is still alive
PARENT_CHECK_S = 0.5
#: seconds an idle worker gets to exit when the pool closes, before it is terminated
EXIT_GRACE_S = 5.0


def one_line(e: BaseException) -> str:
    text = str(e) if isinstance(e, DseError) else f"{type(e).__name__}: {e}"
    return (text.strip().splitlines() or [type(e).__name__])[0][:300]


class ProcessPool:
    """`workers` spawned processes; `run(tasks)` returns their outcomes in task order."""

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        ctx = mp.get_context("spawn")  # fork would copy the driver's torch threads and state
        self.workers = workers
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        self._ready = [False] * workers
        self._busy: dict[int, int] = {}  # worker -> index of the task it runs
        self._closed = False
        try:
            for i in range(workers):
                ours, theirs = ctx.Pipe(duplex=True)
                p = ctx.Process(
                    target=_serve, args=(theirs, spec, os.getpid()), name=f"dse-worker-{i}", daemon=True
                )
                p.start()
                theirs.close()  # the worker's end lives in the worker only: its exit reads as EOF here
                self._procs.append(p)
                self._conns.append(ours)
        except BaseException:
            self.close()
            raise

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def worker_rss(self) -> list[int]:
        """Resident memory of each worker process, in bytes (once every worker has started)."""
        import psutil

        return [psutil.Process(pid).memory_info().rss for pid in self.pids()]

    def run(self, tasks: Sequence[Task]) -> list[Outcome]:
        if self._closed:
            raise DseError("the worker pool is closed")
        results: list[Outcome | None] = [None] * len(tasks)
        queue = deque(enumerate(tasks))
        try:
            while queue or self._busy:
                for w in range(self.workers):
                    if queue and self._ready[w] and w not in self._busy:
                        i, task = queue.popleft()
                        self._busy[w] = i
                        self._send(w, task, tasks)
                for w in self._readable():
                    self._receive(w, tasks, results)
        except BaseException:
            self.close()  # Ctrl-C or a dead worker mid-batch: results nobody will read are in flight
            raise
        return results  # type: ignore[return-value]

    def _readable(self) -> list[int]:
        """Workers with a message or gone (their pipe or process sentinel is ready)."""
        objs: dict[Any, int] = {}
        for w, (c, p) in enumerate(zip(self._conns, self._procs)):
            objs[c] = w
            objs[p.sentinel] = w
        return sorted({objs[o] for o in wait(list(objs))})

    def _send(self, w: int, task: Task, tasks: Sequence[Task]) -> None:
        try:
            self._conns[w].send(task)
        except OSError:
            self._died(w, tasks)

    def _receive(self, w: int, tasks: Sequence[Task], results: list[Outcome | None]) -> None:
        conn = self._conns[w]
        if not conn.poll():  # woken by the process sentinel alone: it exited without a word
            self._died(w, tasks)
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            self._died(w, tasks)
        if kind == "ready":
            self._ready[w] = True
        elif kind == "done" and w in self._busy:
            results[self._busy.pop(w)] = payload
        elif kind == "error":
            raise DseError(f"a worker could not build the problem: {payload}")
        else:
            raise DseError(f"worker {w} failed: {payload}")

    def _died(self, w: int, tasks: Sequence[Task]) -> None:
        p = self._procs[w]
        p.join(1.0)
        code = p.exitcode
        how = (
            "is still running"
            if code is None
            else f"was killed by {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )
        doing = (
            f" while evaluating {dict(tasks[self._busy[w]].values)}"
            if w in self._busy
            else " before it was ready"
        )
        raise DseError(f"worker {w} (pid {p.pid}) {how}{doing}; the run can be resumed")

    def close(self) -> None:
        """Stop every worker: idle ones are told and given a moment, busy or stuck ones terminated."""
        if self._closed:
            return
        self._closed = True
        for w, conn in enumerate(self._conns):
            if w not in self._busy:
                try:
                    conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + EXIT_GRACE_S
        for w, p in enumerate(self._procs):
            if w not in self._busy:
                p.join(max(deadline - time.monotonic(), 0.0))
        for p in self._procs:
            if p.is_alive():
                p.terminate()
        for p in self._procs:
            p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in self._conns:
            conn.close()
        self._busy.clear()


def _serve(conn: Connection, spec: WorkerSpec, parent: int) -> None:
    """A worker's life: build the problem, say so, then answer tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops its workers after a Ctrl-C
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        problem = build_problem(spec)
    except BaseException as e:  # noqa: BLE001 - reported to the driver as one line
        _reply(conn, "error", one_line(e))
        return
    if not _reply(conn, "ready", os.getpid()):
        return
    try:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                return  # the driver is gone
            if task is None or not _reply(conn, "done", run_task(problem, task)):
                return
    except BaseException as e:  # noqa: BLE001 - e.g. MemoryError: say what, then end
        _reply(conn, "crash", one_line(e))
    finally:
        problem.close()


def _reply(conn: Connection, kind: str, payload: Any) -> bool:
    try:
        conn.send((kind, payload))
        return True
    except OSError:  # the driver is gone
        return False


def _watch_parent(parent: int) -> None:
    """End this worker once its driver is gone (a SIGKILLed driver closes no pipe politely, and an
    evaluation in progress would otherwise run to its end first)."""
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            os._exit(1)
