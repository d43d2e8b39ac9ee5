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

Batches: `evaluate(genomes)` first works out which configurations of the batch need the model (new
ones within the budget, not in the memo) and hands them to the executor together (a pool of
workers runs them at once); then it answers the batch in submission order exactly as one-by-one
requests would be answered, journaling each new record in that order. Resume stays replay, and a run
writes the same records whatever the number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dse.core.errors import BudgetExhausted
from dse.core.evaluation import Evaluation, Kind
from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem
from dse.core.space import SearchSpace
from dse.run.executor import Executor, InProcess, Outcome, Task, run_metrics
from dse.run.journal import Journal
from dse.run.memo import Memo, share, shared

#: a batch's model runs go out in chunks of this many per worker
CHUNK = 4


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
        memo: Memo | None = None,
        early_reject: bool = True,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor if executor is not None else InProcess(problem)
        self.space = space
        self.objectives = objectives
        self.constraint = constraint
        self.journal = journal
        self.budget = budget
        self.timeout = timeout
        self.on_result = on_result
        # Shared across the runs of one comparison: key -> the first successful evaluation of that config.
        self.memo = memo
        self.metrics = run_metrics(problem, objectives, constraint)
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
            share(self.memo, key, ev)
        self._handed: set[tuple[int, ...]] = set()
        # the batch being answered: what it still needs from the model, in order, and what came back
        self._pending: list[tuple[dict[str, int], bool]] = []
        self._ready: dict[tuple[tuple[int, ...], bool], Outcome] = {}

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
        batch = [self.space.decode(self.space.clip(g)) for g in genomes]  # completed by decode
        return self.evaluate_batch(batch, label, exact=exact, **info)

    def evaluate_batch(
        self,
        batch: Sequence[dict[str, int]],
        label: str = "",
        *,
        exact: bool = False,
        infos: Sequence[dict[str, Any]] | None = None,
        partial: bool = False,
        **info: Any,
    ) -> list[Evaluation]:
        """`evaluate_values` for each configuration, in order (`infos`: each one's own info, added to
        the common `info`); their model runs go out together. Where the budget ends within the batch:
        BudgetExhausted, or with `partial` the evaluations that fit (a prefix)."""
        batch = [self.space.complete(v) for v in batch]
        extra = list(infos) if infos is not None else [{}] * len(batch)
        if len(extra) != len(batch):
            raise ValueError(f"{len(batch)} configurations but {len(extra)} infos")
        self._pending = self._needed(batch, exact)
        out: list[Evaluation] = []
        try:
            for v, x in zip(batch, extra, strict=True):
                out.append(self.evaluate_values(v, label=label, exact=exact, **{**info, **x}))
        except BudgetExhausted:
            if not partial:
                raise
        finally:
            self._pending, self._ready = [], {}
        return out

    def _needed(self, batch: Sequence[dict[str, int]], exact: bool) -> list[tuple[dict[str, int], bool]]:
        """The (configuration, may be rejected) pairs that answering `batch` one by one would run on
        the model: the same walk as `evaluate_values`, without running anything."""
        handed, known, out = set(self._handed), self._known, {}
        limits = {} if exact else self.limits
        for values in batch:
            key = self._key(values)
            if key not in handed:
                if known >= self.budget:
                    break
                handed.add(key)
                known += 1
                if key not in self._search and key not in out:
                    if shared(self.memo, key, limits, self.metrics) is None:
                        out[key] = (values, bool(limits))
                    continue
            record = self._search.get(key)
            if exact and record is not None and record.rejected and key not in out:
                if shared(self.memo, key, {}, self.metrics) is None:
                    out[key] = (values, False)  # a rejected record asked for exactly: evaluated again
        return list(out.values())

    def _outcome(self, values: dict[str, int], kind: Kind, rejecting: bool) -> Outcome:
        """The model's outcome for one configuration. Within a batch, the next `CHUNK` x workers
        configurations the batch needs run together from here on a pool (which runs them at once; a
        run killed meanwhile loses at most those); in this process, one at a time."""
        key = (self._key(values), rejecting)
        if (
            key not in self._ready
            and self._pending
            and (self._key(self._pending[0][0]), self._pending[0][1]) == key
        ):
            workers = self.executor.workers  # in this process (1): one at a time, nothing computed ahead
            chunk = self._pending[: CHUNK * workers if workers > 1 else 1]
            del self._pending[: len(chunk)]
            tasks = [self._task(v, "search", r) for v, r in chunk]
            for (v, r), outcome in zip(chunk, self.executor.run(tasks), strict=True):
                self._ready[(self._key(v), r)] = outcome
        if key in self._ready:
            return self._ready.pop(key)
        return self.executor.run([self._task(values, kind, rejecting)])[0]

    def _task(self, values: dict[str, int], kind: Kind, rejecting: bool) -> Task:
        return Task(
            values=dict(values),
            metrics=list(self.metrics),
            within_space=kind == "search",
            reject_worse_than=dict(self.limits) if rejecting else {},
            timeout=self.timeout,
        )

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
        limits = {} if exact else self.limits
        key = self._key(values)
        known = shared(self.memo, key, limits, self.metrics)
        if known is not None:
            # Computed before (by another run of a comparison, or as a reference point): no model
            # run, yet this run's own record; its `seconds` are what computing it took.
            metrics = {m: known.metrics[m] for m in self.metrics}
            status, reason, bounds = known.status, known.reason, dict(known.bounds)
            seconds = known.seconds
            info = {**info, "memo": True}
        else:
            outcome = self._outcome(values, kind, bool(limits))
            metrics, status, reason = outcome.metrics, outcome.status, outcome.reason
            bounds, seconds = outcome.bounds, outcome.seconds
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad and status == "ok":
            status, reason = "failed", f"non-finite {bad[0]}={metrics[bad[0]]}"
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
            seconds=round(earlier + seconds, 6),
            label=label,
            info=info,
            bounds=bounds,
        )
        if eval_id is None:
            self._next_id[kind] += 1
        self.journal.append_evaluation(ev)
        share(self.memo, self._key(values), ev)
        return ev
