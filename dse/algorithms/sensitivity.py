"""The sensitivity table: how much the score drops when one variable alone goes down (HAWQ-V3 / ModelOpt).

Each variable is lowered from its top choice to each lower choice, every other variable staying at
its top (one change at a time: 1 + sum(|choices| - 1) configurations). The same configurations
serve ilp (the knapsack), the MOEAs' first population (`initial: sensitivity`), greedy's coarse
phase and bisection's per-layer errors: they are evaluated as one batch through the evaluator, so
they are journaled and counted against the run's budget like any other evaluation, and within
`dse compare` the shared memo answers every run after the first (the model runs once per setup).
Every run that uses the table writes it as `sensitivity.csv`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dse.algorithms.base import SearchContext
from dse.algorithms.scoring import cost_of, loss
from dse.core.errors import BudgetExhausted
from dse.core.evaluation import Evaluation
from dse.core.files import write_csv

#: the score a table is measured in unless an algorithm's `score` option says otherwise
DEFAULT_SCORE = "accuracy"
SCORES = ("accuracy", "qerror")
LABEL = "sensitivity"
CSV = "sensitivity.csv"


@dataclass
class Sensitivity:
    """drops[name][i]: the loss added by `name` at its i-th choice (NaN: not measured, +inf: failed)."""

    score: str
    base: dict[str, int]  # the configuration each variable is lowered from (default every top choice)
    base_evaluation: Evaluation
    drops: dict[str, np.ndarray]
    evaluations: dict[tuple[str, int], Evaluation] = field(default_factory=dict)
    spent: int = 0  # evaluations of this run's budget the table took (configurations new to the run)
    complete: bool = True  # False: the budget ended it (drops not measured are NaN)

    @property
    def base_loss(self) -> float:
        """The base configuration's score as a loss (accuracy negated; +inf where it failed)."""
        return loss(self.base_evaluation, self.score)

    def monotone(self) -> dict[str, np.ndarray]:
        return {name: monotone(d) for name, d in self.drops.items()}

    def rows(self, ctx: SearchContext, cost: str | None = None) -> list[dict[str, Any]]:
        sens = self.monotone()
        deltas = cost_deltas(ctx, cost, self.base) if cost is not None else None
        out = []
        for var in ctx.space.variables:
            if var.name not in self.drops:
                continue
            for i, c in enumerate(var.choices):
                ev = self.evaluations.get((var.name, c))
                row: dict[str, Any] = {
                    "variable": var.name,
                    "value": c,
                    "score": self.score,
                    "measured": self.drops[var.name][i],
                    "sensitivity": sens[var.name][i],
                    "eval_id": ev.eval_id if ev is not None else "",
                }
                if deltas is not None:
                    row[cost] = deltas[var.name][i]
                out.append(row)
        return out

    def write(self, ctx: SearchContext, cost: str | None = None) -> None:
        write_csv(ctx.run_dir / CSV, pd.DataFrame(self.rows(ctx, cost)))


def measure(
    ctx: SearchContext,
    score: str,
    *,
    who: str,
    variables: Sequence[str] | None = None,
    base: dict[str, int] | None = None,
    only: int | None = None,
    cost: str | None = None,
    partial: bool = False,
) -> Sensitivity:
    """The table for `variables` (default all), lowered from `base` (default every top choice) to
    every lower choice or `only` that value, written as sensitivity.csv (with each choice's change
    of `cost` where given). The base comes first, then variable by variable from the lowest choice
    up. Where the budget ends within it: BudgetExhausted, or with `partial` the part that fit."""
    space = ctx.space
    base = dict(base) if base is not None else space.decode(space.highest())
    names = list(variables) if variables is not None else list(space.names)
    pairs = [
        (v.name, c)
        for v in space.variables
        if v.name in names
        for c in v.choices
        if c < base[v.name] and (only is None or c == only)
    ]
    configs = [base, *({**base, n: c} for n, c in pairs)]
    ctx.log(f"{who}: the sensitivity table ({score}) takes up to {len(configs)} evaluations")
    before = ctx.evaluator.used
    evals = evaluate(ctx, configs)
    if not evals:
        raise BudgetExhausted(f"budget of {ctx.evaluator.budget} evaluations spent")
    drops = {n: np.full(len(space.variables[space.names.index(n)].choices), math.nan) for n in names}
    measured = {(n, base[n]): evals[0] for n in names} | dict(zip(pairs, evals[1:], strict=False))
    table = Sensitivity(score, base, evals[0], drops, measured, ctx.evaluator.used - before)
    table.complete = len(evals) == len(configs)
    for (name, c), ev in measured.items():
        drops[name][space.variables[space.names.index(name)].choices.index(c)] = (
            loss(ev, score) - table.base_loss
        )
    table.write(ctx, cost)
    ctx.log(
        f"{who}: the sensitivity table took {table.spent} of the run's {ctx.evaluator.budget} evaluations"
        + ("" if table.complete else " (all that was left of the budget)")
    )
    if not (table.complete or partial):
        raise BudgetExhausted(f"budget of {ctx.evaluator.budget} evaluations spent")
    return table


def evaluate(ctx: SearchContext, configs: list[dict[str, int]]) -> list[Evaluation]:
    """The table's configurations as one batch: the one place its evaluation goes through.

    Where the budget ends within the batch, the evaluations that fit (a prefix) are returned, so
    that the caller can record them; its next evaluation then ends the run.
    """
    # exact: the drops of infeasible configurations too
    return ctx.evaluator.evaluate_batch(configs, label=LABEL, exact=True, partial=True)


def moving(ctx: SearchContext, cost: str) -> list[str]:
    """The variables whose lowering changes `cost` (cheap: no model run). A knapsack never lowers
    the others (it keeps their highest equally good choice), so their rows would change nothing."""
    space = ctx.space
    high = space.decode(space.highest())
    top = cost_of(ctx, high, cost)
    return [v.name for v in space.variables if cost_of(ctx, {**high, v.name: v.choices[0]}, cost) != top]


def cost_deltas(ctx: SearchContext, cost: str, base: dict[str, int]) -> dict[str, np.ndarray]:
    """delta[v][i]: how `cost` changes when variable v alone takes its i-th choice (cheap: no model run)."""
    at_base = cost_of(ctx, base, cost)
    return {
        v.name: np.array([cost_of(ctx, {**base, v.name: c}, cost) - at_base for c in v.choices])
        for v in ctx.space.variables
    }


def monotone(drops: np.ndarray) -> np.ndarray:
    """Sensitivities (index 0 = fewest bits) that never favour fewer bits.

    A measured drop below zero is noise (one validation sample is a fraction of a point); summed
    over dozens of variables such drops would predict more accuracy than the float model has.
    So drops are clipped at zero and made non-increasing in bits; failed choices stay +inf, choices
    not measured (NaN) count as free.
    """
    drops = np.where(np.isnan(drops), 0.0, drops)
    finite = np.isfinite(drops)
    clipped = np.where(finite, np.maximum(drops, 0.0), 0.0)
    out = np.maximum.accumulate(clipped[::-1])[::-1]
    return np.where(finite, out, np.inf)
