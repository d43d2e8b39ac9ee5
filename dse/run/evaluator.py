"""The one path from a configuration to its metrics: memory, journal, budget, failures.

Every algorithm evaluates through an `Evaluator`. A configuration seen before (in this process or in
the journal of an interrupted run) is answered from memory; a new one runs the problem, is
appended to the journal before it is returned, and counts against the budget. Resume therefore
is replay: the algorithm reruns with the same seed and the journal answers what it already knows.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from typing import Any

from dse.core.errors import BudgetExhausted
from dse.core.evaluation import Evaluation, Kind
from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem
from dse.core.space import SearchSpace
from dse.run.journal import Journal


class EvaluationTimeout(Exception):
    pass


class Evaluator:
    def __init__(
        self,
        problem: Problem,
        space: SearchSpace,
        objectives: Objectives,
        constraint: Constraint,
        journal: Journal,
        budget: int,
        timeout: float | None = None,
        on_result: Callable[[Evaluation], None] | None = None,
        memo: dict[tuple[int, ...], Evaluation] | None = None,
    ) -> None:
        self.problem = problem
        self.space = space
        self.objectives = objectives
        self.constraint = constraint
        self.journal = journal
        self.budget = budget
        self.timeout = timeout
        self.on_result = on_result
        # Shared across the runs of one comparison: key -> the first successful evaluation of that config.
        self.memo = memo
        cost = set(problem.COST_METRICS)
        self.metrics = list(dict.fromkeys([*objectives.names, *constraint.metrics, *sorted(cost)]))
        self._search: dict[tuple[int, ...], Evaluation] = {}
        self._reference: dict[tuple[int, ...], Evaluation] = {}
        self._known = 0  # search evaluations handed out in this process (replayed or new)
        self._next_id = {"search": 0, "reference": 0}  # each kind numbers its evaluations from 0
        self.replayed = 0
        for ev in journal.evaluations():
            key = self._key(ev.values)
            (self._search if ev.kind == "search" else self._reference)[key] = ev
            self._next_id[ev.kind] = max(self._next_id[ev.kind], ev.eval_id + 1)
            if memo is not None and ev.ok:
                memo.setdefault(key, ev)
        self._handed: set[tuple[int, ...]] = set()

    def _key(self, values: dict[str, int]) -> tuple[int, ...]:
        return tuple(values[n] for n in self.space.names)

    @property
    def used(self) -> int:
        return self._known

    @property
    def remaining(self) -> int:
        return max(self.budget - self._known, 0)

    def evaluations(self) -> list[Evaluation]:
        return sorted(self._search.values(), key=lambda e: e.eval_id)

    def references(self) -> list[Evaluation]:
        return sorted(self._reference.values(), key=lambda e: e.eval_id)

    def require(self, metrics: Iterable[str]) -> None:
        """Also compute `metrics` from now on: an algorithm's score that is no objective (e.g. qerror)."""
        for m in metrics:
            if m not in self.metrics:
                self.metrics.append(m)

    def evaluate(self, genomes: Iterable[Sequence[int]], label: str = "", **info: Any) -> list[Evaluation]:
        """Search evaluations, in order; BudgetExhausted (after recording what fit) when over budget."""
        out = []
        for g in genomes:
            out.append(self.evaluate_values(self.space.decode(self.space.clip(g)), label=label, **info))
        return out

    def evaluate_values(self, values: dict[str, int], label: str = "", **info: Any) -> Evaluation:
        key = self._key(values)
        if key in self._handed:
            return self._search[key]
        if self._known >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} evaluations spent")
        if key in self._search:  # recorded by an earlier, interrupted process
            ev = self._search[key]
            self.replayed += 1
        else:
            ev = self._run(values, "search", label, info)
            self._search[key] = ev
        self._handed.add(key)
        self._known += 1
        if self.on_result is not None:
            self.on_result(ev)
        return ev

    def reference(self, values: dict[str, int], label: str) -> Evaluation:
        """A configuration evaluated for comparison (uniform precision); free, may lie outside the space."""
        key = self._key(values)
        if key not in self._reference:
            self._reference[key] = self._run(values, "reference", label, {})
        return self._reference[key]

    def _run(self, values: dict[str, int], kind: Kind, label: str, info: dict[str, Any]) -> Evaluation:
        start = time.perf_counter()
        status, reason = "ok", ""
        shared = self.memo.get(self._key(values)) if self.memo is not None else None
        if shared is not None and not all(m in shared.metrics for m in self.metrics):
            shared = None
        try:
            if shared is not None:
                # Computed before (by another run of a comparison, or as a reference point): no model
                # run, yet this run's own record; its `seconds` are what computing it took.
                metrics = {m: shared.metrics[m] for m in self.metrics}
                info = {**info, "memo": True}
            else:
                with _time_limit(self.timeout):
                    metrics = self.problem.evaluate(values, self.metrics, within_space=kind == "search")
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            if bad:
                status, reason = "failed", f"non-finite {bad[0]}={metrics[bad[0]]}"
        except EvaluationTimeout:
            metrics, status, reason = {}, "failed", f"timed out after {self.timeout}s"
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a failing configuration must not end the search
            metrics, status, reason = {}, "failed", f"{type(e).__name__}: {e}".splitlines()[0][:300]
        if status != "ok":
            metrics = {m: math.nan for m in self.metrics}
        ev = Evaluation(
            eval_id=self._next_id[kind],
            kind=kind,
            values=dict(values),
            metrics={k: float(v) for k, v in metrics.items()},
            feasible=status == "ok" and self.constraint.feasible(metrics),
            status=status,  # type: ignore[arg-type]
            reason=reason,
            seconds=shared.seconds if shared is not None else round(time.perf_counter() - start, 6),
            label=label,
            info=info,
        )
        self._next_id[kind] += 1
        self.journal.append_evaluation(ev)
        if self.memo is not None and ev.ok:
            self.memo.setdefault(self._key(values), ev)
        return ev


@contextmanager
def _time_limit(seconds: float | None):
    """SIGALRM-based limit: interrupts Python between operations (main thread, POSIX only)."""
    if not seconds or not hasattr(signal, "setitimer"):
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
