"""The one path from a configuration to its metrics: memory, journal, budget, failures.

Every algorithm evaluates through an `Evaluator`. A configuration seen before (in this process or in
the journal of an interrupted run) is answered from memory; a new one runs the problem, is
appended to the journal before it is returned, and counts against the budget. Resume therefore
is replay: the algorithm reruns with the same seed and the journal answers what it already knows.

Exact early rejection (`constraints.early_reject`): where the problem can stop an evaluation once
the constrained metric is proven to miss the constraint (`Problem.EARLY_REJECT`), a search
evaluation is given the constraint's limit and may come back `rejected`: infeasible exactly when a
full evaluation would be, the metric unknown, its bound recorded. `exact=True` (an algorithm that
reads scores of infeasible configurations, `Algorithm.exact_scores`) asks for the full evaluation;
a configuration rejected before is then evaluated again and its exact record journaled under the
same eval_id (it counts once against the budget). Requests that are not exact keep getting the
record first handed out, so replay hands out what the interrupted run did.
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
from dse.core.problem import Problem, Rejected
from dse.core.space import SearchSpace
from dse.run.journal import Journal


class EvaluationTimeout(Exception):
    pass


#: the memo holds a rejected evaluation under its key plus this (a key one longer: never a real one)
REJECTED_KEY = -1


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
        early_reject: bool = True,
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
        # {metric: limit} given to every evaluation that need not be exact; empty: none is rejected
        self.limits = constraint.reject_limits(problem, early_reject)
        self._search: dict[tuple[int, ...], Evaluation] = {}
        self._first_rejected: dict[tuple[int, ...], Evaluation] = {}  # a rejected record handed out first
        self._reference: dict[tuple[int, ...], Evaluation] = {}
        self._known = 0  # search evaluations handed out in this process (replayed or new)
        self._next_id = {"search": 0, "reference": 0}  # each kind numbers its evaluations from 0
        self.replayed = 0
        for ev in journal.evaluations():
            key = self._key(ev.values)
            (self._search if ev.kind == "search" else self._reference)[key] = ev
            if ev.rejected and ev.kind == "search":
                self._first_rejected.setdefault(key, ev)
            self._next_id[ev.kind] = max(self._next_id[ev.kind], ev.eval_id + 1)
            self._share(key, ev)
        self._handed: set[tuple[int, ...]] = set()

    def _key(self, values: dict[str, int]) -> tuple[int, ...]:
        return tuple(values[n] for n in self.space.all_names)  # pinned variables too (references vary them)

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

    def evaluate(
        self, genomes: Iterable[Sequence[int]], label: str = "", *, exact: bool = False, **info: Any
    ) -> list[Evaluation]:
        """Search evaluations, in order; BudgetExhausted (after recording what fit) when over budget.

        `exact`: never rejected early (the algorithm reads the scores of infeasible configurations).
        """
        out = []
        for g in genomes:
            values = self.space.decode(self.space.clip(g))
            out.append(self.evaluate_values(values, label=label, exact=exact, **info))
        return out

    def evaluate_values(
        self, values: dict[str, int], label: str = "", *, exact: bool = False, **info: Any
    ) -> Evaluation:
        values = self.space.complete(values)  # the free variables suffice: pinned ones are added
        key = self._key(values)
        if key in self._handed:
            return self._answer(key, exact)
        if self._known >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} evaluations spent")
        if key in self._search:  # recorded by an earlier, interrupted process
            self.replayed += 1
        else:
            self._search[key] = ev = self._run(values, "search", label, info, exact=exact)
            if ev.rejected:
                self._first_rejected[key] = ev
        self._handed.add(key)
        self._known += 1
        ev = self._answer(key, exact)
        if self.on_result is not None:
            self.on_result(ev)
        return ev

    def _answer(self, key: tuple[int, ...], exact: bool) -> Evaluation:
        """A known search configuration: the record first handed out, unless an exact one is asked
        for where that was rejected (then computed once, journaled under the same eval_id)."""
        ev = self._search[key]
        if not exact:
            return self._first_rejected.get(key, ev)
        if ev.rejected:  # its seconds: the rejected and the exact evaluation together
            info = {**{k: v for k, v in ev.info.items() if k != "memo"}, "rejected_first": True}
            ev = self._run(
                ev.values, "search", ev.label, info, exact=True, eval_id=ev.eval_id, earlier=ev.seconds
            )
            self._search[key] = ev
        return ev

    def reference(self, values: dict[str, int], label: str) -> Evaluation:
        """A configuration evaluated for comparison (uniform precision); free, may lie outside the space.
        Always exact: reference points are drawn and tabled with their metrics."""
        key = self._key(values)
        if key not in self._reference:
            self._reference[key] = self._run(values, "reference", label, {}, exact=True)
        return self._reference[key]

    def _share(self, key: tuple[int, ...], ev: Evaluation) -> None:
        if self.memo is not None and (ev.ok or ev.rejected):
            self.memo.setdefault((*key, REJECTED_KEY) if ev.rejected else key, ev)

    def _shared(self, key: tuple[int, ...], limits: dict[str, float]) -> Evaluation | None:
        """What was computed before (a reference point, another run of a comparison) that this request
        may take as its own: an exact record, else a rejected one. A request that may be rejected takes
        an infeasible exact record only from a reference point (every run evaluates those first), so
        that a run hands out the same records whatever other runs did before it."""
        if self.memo is None:
            return None
        found = self.memo.get(key)
        if found is not None and limits and not found.feasible and found.kind != "reference":
            found = None
        if found is None and limits:
            found = self.memo.get((*key, REJECTED_KEY))
        return found if found is not None and all(m in found.metrics for m in self.metrics) else None

    def _run(
        self,
        values: dict[str, int],
        kind: Kind,
        label: str,
        info: dict[str, Any],
        *,
        exact: bool,
        eval_id: int | None = None,
        earlier: float = 0.0,
    ) -> Evaluation:
        """Evaluate (or take from the memo) one configuration and journal it; `eval_id` and `earlier`
        (seconds spent on it before) where it replaces a rejected record."""
        start = time.perf_counter()
        status, reason, bounds = "ok", "", {}
        limits = {} if exact else self.limits
        shared = self._shared(self._key(values), limits)
        try:
            if shared is not None:
                # Computed before (by another run of a comparison, or as a reference point): no model
                # run, yet this run's own record; its `seconds` are what computing it took.
                metrics = {m: shared.metrics[m] for m in self.metrics}
                status, reason, bounds = shared.status, shared.reason, dict(shared.bounds)
                info = {**info, "memo": True}
            else:
                rejecting = {"reject_worse_than": limits} if limits else {}
                with _time_limit(self.timeout):
                    metrics = self.problem.evaluate(
                        values, self.metrics, within_space=kind == "search", **rejecting
                    )
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            if bad and status == "ok":
                status, reason = "failed", f"non-finite {bad[0]}={metrics[bad[0]]}"
        except Rejected as r:
            metrics = {m: r.metrics.get(m, math.nan) for m in self.metrics}
            metrics[r.metric] = math.nan
            status, reason, bounds = "rejected", f"rejected early: {r}", {r.metric: r.bound}
        except EvaluationTimeout:
            metrics, status, reason = {}, "failed", f"timed out after {self.timeout}s"
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a failing configuration must not end the search
            metrics, status, reason = {}, "failed", f"{type(e).__name__}: {e}".splitlines()[0][:300]
        if status == "failed":
            metrics = {m: math.nan for m in self.metrics}
        ev = Evaluation(
            eval_id=self._next_id[kind] if eval_id is None else eval_id,
            kind=kind,
            values=dict(values),
            metrics={k: float(v) for k, v in metrics.items()},
            feasible=status == "ok" and self.constraint.feasible(metrics),
            status=status,  # type: ignore[arg-type]
            reason=reason,
            seconds=round(
                earlier + (shared.seconds if shared is not None else time.perf_counter() - start), 6
            ),
            label=label,
            info=info,
            bounds=bounds,
        )
        if eval_id is None:
            self._next_id[kind] += 1
        self.journal.append_evaluation(ev)
        self._share(self._key(values), ev)
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
