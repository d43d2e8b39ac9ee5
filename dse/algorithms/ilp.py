"""Sensitivity + integer programming (HAWQ-V3 / ModelOpt style): a front from a handful of evaluations.

Each variable is measured at each of its choices with every other variable at its highest choice
(one change at a time; L x |choices| evaluations). Assuming the losses add up, the configuration
with the least predicted loss under a size budget is a multiple-choice knapsack, solved exactly
for a sweep of budgets; each distinct answer is then evaluated for real, so ilp.csv holds the
predicted and the measured score side by side.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import Bounds, LinearConstraint, milp

from dse.algorithms.base import Algorithm, CheckContext, SearchContext
from dse.algorithms.scoring import cost_metric, cost_of, from_loss, loss, require_metric
from dse.core.errors import ConfigError, DseError
from dse.core.files import write_csv
from dse.core.registry import ALGORITHMS

TIE_SECONDS = 2.0  # for breaking ties between equally good answers, per budget


class IlpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_budgets: int = Field(10, ge=1, description="size budgets, evenly spaced from all-lowest to all-highest")
    score: Literal["accuracy", "qerror"] = "accuracy"


@ALGORITHMS.register("ilp")
class Ilp(Algorithm):
    Options = IlpOptions

    def check(self, ctx: CheckContext) -> None:
        require_metric(ctx, self.options.score, "algorithm.options.score")
        cost_metric(ctx, "ilp")

    def _run(self, ctx: SearchContext) -> None:
        score = self.options.score
        require_metric(ctx, score, "algorithm.options.score")
        cost = cost_metric(ctx, "ilp")
        rows: list[dict[str, Any]] = []
        try:
            self.search(ctx, score, cost, rows)
        finally:
            columns = ["budget", f"predicted_{cost}", f"predicted_{score}", f"measured_{score}"]
            write_csv(ctx.run_dir / "ilp.csv", pd.DataFrame(rows, columns=_columns(rows, columns)))

    def search(self, ctx: SearchContext, score: str, cost: str, rows: list[dict[str, Any]]) -> None:
        space = ctx.space
        top = space.decode(space.highest())
        top_cost = cost_of(ctx, top, cost)
        # delta[v][c]: the size change of variable v at choice c, all others highest
        delta = {
            v.name: np.array([cost_of(ctx, {**top, v.name: c}, cost) - top_cost for c in v.choices])
            for v in space.variables
        }
        _check_additive(ctx, cost, top_cost, delta)
        needed = 1 + sum(len(v.choices) - 1 for v in space.variables)
        if ctx.evaluator.budget < needed + 1:
            ctx.log(f"ilp: the sensitivities take {needed} evaluations, the budget is {ctx.evaluator.budget}")
        base = ctx.evaluator.evaluate_values(top, label="ilp:sensitivity", phase="sensitivity")
        base_loss = loss(base, score)
        if not math.isfinite(base_loss):
            raise DseError(f"ilp: the all-highest configuration failed ({base.reason})")
        sens, table = {}, []
        for v in space.variables:
            row = []
            for c in v.choices:
                ev = ctx.evaluator.evaluate_values(
                    {**top, v.name: c}, label="ilp:sensitivity", phase="sensitivity", variable=v.name, value=c
                )
                row.append(loss(ev, score) - base_loss)  # +inf where it failed: never chosen
            sens[v.name] = monotone(np.array(row))
            for c, d, m, size in zip(v.choices, row, sens[v.name], delta[v.name], strict=True):
                table.append({"variable": v.name, "value": c, "measured": d, "sensitivity": m, cost: size})
        write_csv(ctx.run_dir / "ilp_sensitivity.csv", pd.DataFrame(table))

        low_cost = cost_of(ctx, space.decode(space.lowest()), cost)
        for budget in np.linspace(low_cost, top_cost, self.options.n_budgets):
            picks = solve(sens, delta, float(budget) - top_cost)
            if picks is None:
                ctx.log(f"ilp: no configuration fits the budget {budget:.6g}")
                continue
            values = {v.name: v.choices[picks[v.name]] for v in space.variables}
            size = top_cost + sum(float(delta[n][i]) for n, i in picks.items())
            predicted = from_loss(base_loss + sum(float(sens[n][i]) for n, i in picks.items()), score)
            info = {"budget": float(budget), f"predicted_{cost}": size, f"predicted_{score}": predicted}
            ev = ctx.evaluator.evaluate_values(values, label="ilp:solution", phase="solution", **info)
            measured = {
                m: ev.metrics.get(m, math.nan) if ev.ok else math.nan
                for m in dict.fromkeys([score, "accuracy"])
            }
            rows.append(
                {
                    **info,
                    **{f"measured_{m}": v for m, v in measured.items()},
                    "feasible": ev.feasible,
                    "eval_id": ev.eval_id,
                    **values,
                }
            )


def monotone(drops: np.ndarray) -> np.ndarray:
    """Sensitivities (index 0 = fewest bits) that never favour fewer bits.

    A measured drop below zero is noise (one validation sample is a fraction of a point); summed
    over dozens of variables such drops would predict more accuracy than the float model has.
    So drops are clipped at zero and made non-increasing in bits; failed choices stay +inf.
    """
    finite = np.isfinite(drops)
    clipped = np.where(finite, np.maximum(drops, 0.0), 0.0)
    out = np.maximum.accumulate(clipped[::-1])[::-1]
    return np.where(finite, out, np.inf)


def solve(sens: dict[str, np.ndarray], delta: dict[str, np.ndarray], room: float) -> dict[str, int] | None:
    """Choice index per variable minimising the summed sensitivity with summed delta <= room.

    A multiple-choice knapsack: binary one-hot x per (variable, choice), one choice per variable.
    scipy's milp (HiGHS branch and bound, run to a zero gap) solves it exactly whatever the size
    of the costs; a dynamic program over budgets would need integer costs and a table as wide as
    the budget in bits (millions for a ResNet). Ties in predicted loss (choices whose drop is below
    what the score resolves) spend the budget, by a second solve that maximises size among the
    optimal answers: more bits are never predicted to hurt. That second solve is a subset sum
    (hard to prove optimal), so it gets `TIE_SECONDS` and its best answer so far. Solver
    tolerances can let the size exceed the budget by a hair: such an answer is re-solved with the
    excess taken off.
    """
    names = list(sens)
    allowed = np.concatenate([_useful(sens[n], delta[n]) for n in names])
    loss_vec = np.where(allowed, np.concatenate([sens[n] for n in names]), 0.0)
    size_vec = np.concatenate([delta[n] for n in names])
    one_hot = np.zeros((len(names), len(size_vec)))
    start = 0
    for i, n in enumerate(names):
        one_hot[i, start : start + len(sens[n])] = 1
        start += len(sens[n])
    bounds = Bounds(0, allowed.astype(float))  # a failed choice is fixed at 0
    integrality = np.ones(len(size_vec))
    exact, tie_break = {"mip_rel_gap": 0.0}, {"mip_rel_gap": 0.0, "time_limit": TIE_SECONDS}
    limit = room
    for _ in range(5):
        base = [LinearConstraint(one_hot, 1, 1), LinearConstraint(size_vec[None, :], -np.inf, limit)]
        with _quiet_stdout():
            res = milp(loss_vec, constraints=base, integrality=integrality, bounds=bounds, options=exact)
        if res.status != 0:
            return None
        x = np.round(res.x)
        best = float(loss_vec @ x)
        slack = 1e-9 * max(1.0, abs(best))
        tie = LinearConstraint(loss_vec[None, :], -np.inf, best + slack)
        with _quiet_stdout():
            res2 = milp(
                -size_vec, constraints=[*base, tie], integrality=integrality, bounds=bounds, options=tie_break
            )
        if res2.x is not None and float(loss_vec @ np.round(res2.x)) <= best + slack:
            x = np.round(res2.x)
        excess = float(size_vec @ x) - room
        if excess <= 0:
            picks, start = {}, 0
            for n in names:
                picks[n] = int(np.argmax(x[start : start + len(sens[n])]))
                start += len(sens[n])
            return picks
        limit -= excess + 1e-9 * max(1.0, abs(room))
    return None


def _useful(sens: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Choices worth offering: not failed, and the best (then the highest) of those of equal size.

    Without this, a variable the size ignores (activations against weight_bits) could take any
    of its equally good choices, fewer bits included.
    """
    keep = np.isfinite(sens)
    for j in range(len(sens)):
        same = [k for k in range(len(sens)) if k != j and delta[k] == delta[j] and np.isfinite(sens[k])]
        if any(sens[k] < sens[j] or (sens[k] == sens[j] and k > j) for k in same):
            keep[j] = False
    return keep


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS (as bundled with scipy) prints debugging lines straight to file descriptor 1."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _check_additive(ctx: SearchContext, cost: str, top_cost: float, delta: dict[str, np.ndarray]) -> None:
    """Budgets hold exactly only for a size that is a sum over variables (weight_bits is, bops is not)."""
    genomes = [ctx.space.lowest(), *map(tuple, ctx.space.random(ctx.rng(7), 16))]
    for g in genomes:
        values = ctx.space.decode(g)
        predicted = top_cost + sum(float(delta[n][i]) for n, i in zip(ctx.space.names, g))
        actual = cost_of(ctx, values, cost)
        if abs(predicted - actual) > 1e-9 * max(1.0, abs(actual)):
            raise ConfigError(
                f"objectives: ilp needs a size objective that adds up over variables; {cost} does not "
                f"({actual:.6g} vs {predicted:.6g} summed)"
            )


def _columns(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    """The table's columns: `first`, then the rest in the order the rows give them."""
    rest = dict.fromkeys(k for r in rows for k in r if k not in first)
    return first + list(rest)
