"""Greedy layer-wise lowering (the seed's "quantizer compiler"), over any problem's choices.

Coarse: each variable alone (others at their start) is lowered choice by choice while accuracy
stays within `coarse_threshold` of the float reference, read from the sensitivity table measured
from the start (one batch, every lower choice; from the all-highest start, the very table ilp and
the MOEAs' seeding use, so `dse compare` runs it once); all coarse values are then applied
together and, while the combination misses the accuracy limit, the variable whose coarse drop
cost the most accuracy is put back to its start. Fine: keep for each variable the accuracy lost
by lowering it one more choice per unit of size saved; repeatedly lower the cheapest, skip (and
drop) a move that would miss the limit, re-measure the moved variable's entry. Every accepted
configuration is a point of the trajectory, which therefore only ever shrinks in size. Variables
whose lowering saves nothing of the size objective (activations against weight_bits) stay put.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from dse.algorithms.base import Algorithm, CheckContext, SearchContext
from dse.algorithms.scoring import at_or_above, cost_metric, cost_of, require_metric
from dse.algorithms.sensitivity import measure, moving
from dse.core.errors import ConfigError
from dse.core.evaluation import Evaluation
from dse.core.files import write_csv
from dse.core.registry import ALGORITHMS


class GreedyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coarse_threshold: float = Field(1.0, ge=0, description="accuracy points below float, one variable alone")
    fine_threshold: float | None = Field(
        None, ge=0, description="accuracy points below float for the combination; None: the constraint"
    )
    start: Literal["initial", "highest"] = Field(
        "initial", description="initial: the problem's initial_values() where it has them"
    )


@ALGORITHMS.register("greedy")
class Greedy(Algorithm):
    Options = GreedyOptions

    def check(self, ctx: CheckContext) -> None:
        require_metric(ctx, "accuracy", "algorithm.name")
        cost_metric(ctx, "greedy")

    def _run(self, ctx: SearchContext) -> None:
        if "accuracy" not in ctx.problem.METRICS:
            raise ConfigError("algorithm.name: greedy needs an 'accuracy' metric, which the problem lacks")
        reference = ctx.problem.reference().get("accuracy")
        if reference is None:
            raise ConfigError("algorithm.name: greedy needs the problem's float reference accuracy")
        require_metric(ctx, "accuracy", "algorithm.name")
        run = _Run(ctx, self.options, reference, cost_metric(ctx, "greedy"))
        try:
            run.search()
        finally:
            write_csv(ctx.run_dir / "greedy_trajectory.csv", pd.DataFrame(run.trajectory))


class _Run:
    def __init__(self, ctx: SearchContext, o: GreedyOptions, reference: float, cost: str) -> None:
        self.ctx, self.o, self.cost = ctx, o, cost
        self.coarse_floor = reference - o.coarse_threshold
        floors = [] if o.fine_threshold is None else [reference - o.fine_threshold]
        if ctx.constraint.threshold is not None:
            floors.append(ctx.constraint.threshold)
        self.floor = max(floors) if floors else self.coarse_floor  # the limit every accepted point meets
        self.vars = {v.name: v for v in ctx.space.variables}
        self.trajectory: list[dict[str, Any]] = []

    def size(self, values: dict[str, int]) -> float:
        return cost_of(self.ctx, values, self.cost)

    def evaluate(self, values: dict[str, int], phase: str, *, exact: bool = False, **info: Any) -> Evaluation:
        """Not exact unless asked: every later decision compares accuracy with `floor`, which is at
        least the constraint's threshold, so an evaluation rejected early decides as a full one would."""
        return self.evaluate_many([values], phase, [info], exact=exact)[0]

    def evaluate_many(
        self, batch: list[dict[str, int]], phase: str, infos: list[dict[str, Any]], *, exact: bool = False
    ) -> list[Evaluation]:
        """One batch (a pool of workers runs it at once), answered as one-by-one requests would be."""
        return self.ctx.evaluator.evaluate_batch(
            batch,
            exact=exact,
            label=f"greedy:{phase}",
            infos=[{"size": self.size(v), **x} for v, x in zip(batch, infos, strict=True)],
            phase=phase,
            step=len(self.trajectory),
        )

    @staticmethod
    def accuracy(ev: Evaluation) -> float:
        acc = ev.metrics.get("accuracy", math.nan) if ev.ok else math.nan
        return acc if math.isfinite(acc) else -math.inf

    def accept(self, values: dict[str, int], ev: Evaluation, phase: str, variable: str = "") -> bool:
        """Add a trajectory point where it is smaller than the last one (it always meets the limit)."""
        size = self.size(values)
        if self.trajectory and size >= self.trajectory[-1][self.cost]:
            return False
        self.trajectory.append(
            {
                "step": len(self.trajectory),
                "phase": phase,
                "variable": variable,
                "value": values[variable] if variable else "",
                self.cost: size,
                "accuracy": self.accuracy(ev),
                "eval_id": ev.eval_id,
                **values,
            }
        )
        return True

    def lower(self, values: dict[str, int], name: str) -> dict[str, int] | None:
        choices = self.vars[name].choices
        i = choices.index(values[name])
        return None if i == 0 else {**values, name: choices[i - 1]}

    # -- the search ----------------------------------------------------------------------------
    def start(self) -> dict[str, int]:
        initial = self.ctx.problem.initial_values() if self.o.start == "initial" else None
        if initial is None:
            return self.ctx.space.decode(self.ctx.space.highest())
        return self.ctx.space.complete(
            {n: at_or_above(v, initial.get(n, v.choices[-1])) for n, v in self.vars.items()}
        )

    def search(self) -> None:
        start = self.start()
        base = self.evaluate(start, "start", exact=True)  # its accuracy is logged where it misses
        if self.accuracy(base) < self.floor:
            self.ctx.log(
                f"greedy: the start configuration reaches accuracy {self.accuracy(base):.2f}, below the "
                f"limit {self.floor:.2f}; nothing to lower (try start: highest)"
            )
            return
        self.accept(start, base, "start")
        current, ev = self.coarse(start, self.accuracy(base))
        self.accept(current, ev, "coarse")
        self.fine(current, ev)

    def coarse(self, start: dict[str, int], base_acc: float) -> tuple[dict[str, int], Evaluation]:
        # each variable alone at each lower choice: the sensitivity table, measured from the start
        # (from the all-highest start, the table ilp and the MOEAs' seeding share)
        variables = moving(self.ctx, self.cost)
        table = measure(self.ctx, "accuracy", who="greedy", variables=variables, base=start, cost=self.cost)
        combined, drop = dict(start), {}
        for name in self.vars:
            acc, values = base_acc, start
            while (lower := self.lower(values, name)) is not None:
                if self.size(lower) >= self.size(values):  # saves nothing (e.g. activations vs weight_bits)
                    break
                ev = table.evaluations[name, lower[name]]
                if self.accuracy(ev) < self.coarse_floor:
                    break
                values, acc = lower, self.accuracy(ev)
            combined[name], drop[name] = values[name], base_acc - acc
        ev = self.evaluate(combined, "combine")
        while self.accuracy(ev) < self.floor:  # raise back the costliest coarse drop
            lowered = [n for n in self.vars if combined[n] != start[n]]
            worst = max(lowered, key=lambda n: drop[n])  # non-empty: the start meets the limit
            combined[worst] = start[worst]
            ev = self.evaluate(combined, "repair", variable=worst)
        return combined, ev

    def fine(self, current: dict[str, int], ev: Evaluation) -> None:
        entries: dict[str, float] = {}  # variable -> accuracy lost per unit of size saved

        def measure(*names: str) -> None:
            """Probe each variable one step lower than now (one batch): its accuracy lost per size saved."""
            probes: dict[str, tuple[dict[str, int], float]] = {}  # name -> (configuration, size saved)
            for name in names:
                entries.pop(name, None)
                lower = self.lower(current, name)
                saved = self.size(current) - self.size(lower) if lower is not None else 0.0
                if saved > 0:  # else: saves nothing
                    probes[name] = (lower, saved)
            batch = [lower for lower, _ in probes.values()]
            evaluated = self.evaluate_many(batch, "fine-probe", [{"variable": n} for n in probes])
            for (name, (_, saved)), probe in zip(probes.items(), evaluated, strict=True):
                if self.accuracy(probe) >= self.floor:
                    entries[name] = (self.accuracy(ev) - self.accuracy(probe)) / saved

        measure(*self.vars)
        while entries:
            name = min(entries, key=lambda n: (entries[n], n))
            lower = self.lower(current, name)
            moved = self.evaluate(lower, "fine", variable=name) if lower is not None else None
            if moved is None or self.accuracy(moved) < self.floor or self.size(lower) >= self.size(current):
                entries.pop(name)  # would break the limit now: never try it again
                continue
            current, ev = lower, moved
            self.accept(current, ev, "fine", name)
            measure(name)
