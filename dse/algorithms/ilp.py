"""Sensitivity + integer programming (HAWQ-V3 / ModelOpt style): a front from a handful of evaluations.

The sensitivity table (`sensitivity.py`: each variable that moves the size, measured at each of its
choices with every other variable at its highest; L x |choices| evaluations) predicts the loss.
Assuming the losses add up, the configuration with the least predicted loss under a size budget
is a multiple-choice knapsack, solved exactly for a sweep of budgets; each distinct answer is then
evaluated for real, so ilp.csv holds the predicted and the measured score side by side.
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
from dse.algorithms.scoring import cost_metric, cost_of, from_loss, require_metric
from dse.algorithms.sensitivity import DEFAULT_SCORE, cost_deltas, measure, moving
from dse.core.errors import BudgetExhausted, ConfigError, DseError
from dse.core.files import write_csv
from dse.core.registry import ALGORITHMS

TIE_SECONDS = 2.0  # for breaking ties between equally good answers, per budget


class IlpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_budgets: int = Field(10, ge=1, description="size budgets, evenly spaced from all-lowest to all-highest")
    score: Literal["accuracy", "qerror"] = DEFAULT_SCORE


@ALGORITHMS.register("ilp")
class Ilp(Algorithm):
    Options = IlpOptions
    exact_scores = True  # sensitivities and ilp.csv's measured scores: never rejected early

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
        delta = cost_deltas(ctx, cost, top)  # the size change of each variable at each choice
        _check_additive(ctx, cost, top_cost, delta)
        table = measure(ctx, score, who="ilp", variables=moving(ctx, cost), cost=cost)
        base_loss = table.base_loss
        if not math.isfinite(base_loss):
            raise DseError(f"ilp: the all-highest configuration failed ({table.base_evaluation.reason})")
        sens = {v.name: table.monotone().get(v.name, np.zeros(len(v.choices))) for v in space.variables}

        low_cost = cost_of(ctx, space.decode(space.lowest()), cost)
        solutions, infos = [], []
        for budget in np.linspace(low_cost, top_cost, self.options.n_budgets):
            picks = solve(sens, delta, float(budget) - top_cost)
            if picks is None:
                ctx.log(f"ilp: no configuration fits the budget {budget:.6g}")
                continue
            solutions.append({v.name: v.choices[picks[v.name]] for v in space.variables})
            size = top_cost + sum(float(delta[n][i]) for n, i in picks.items())
            predicted = from_loss(base_loss + sum(float(sens[n][i]) for n, i in picks.items()), score)
            infos.append(
                {"budget": float(budget), f"predicted_{cost}": size, f"predicted_{score}": predicted}
            )
        # the solutions as one batch (a pool of workers evaluates them at once); where the budget ends
        # within it, the ones that fit still get their rows in ilp.csv
        evaluated = ctx.evaluator.evaluate_batch(
            solutions, label="ilp:solution", infos=infos, phase="solution", partial=True
        )
        for values, info, ev in zip(solutions, infos, evaluated):  # evaluated: a prefix
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
        if len(evaluated) < len(solutions):
            raise BudgetExhausted(f"budget of {ctx.evaluator.budget} evaluations spent")


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
    one_hot = _one_hot([len(sens[n]) for n in names])
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


def smallest(sens: dict[str, np.ndarray], delta: dict[str, np.ndarray], max_loss: float) -> float | None:
    """The least summed delta of a configuration whose summed sensitivity is <= max_loss; None if none is.

    The other way round of `solve`: where the table predicts the constraint, the smallest size it
    predicts to meet it (the low end of the sizes worth seeding a search with).
    """
    names = list(sens)
    loss_vec = np.concatenate([sens[n] for n in names])
    finite = np.isfinite(loss_vec)
    loss_vec = np.where(finite, loss_vec, 0.0)
    size_vec = np.concatenate([delta[n] for n in names])
    one_hot = _one_hot([len(sens[n]) for n in names])
    limits = [LinearConstraint(one_hot, 1, 1), LinearConstraint(loss_vec[None, :], -np.inf, max_loss)]
    with _quiet_stdout():
        res = milp(
            size_vec,
            constraints=limits,
            integrality=np.ones(len(size_vec)),
            bounds=Bounds(0, finite.astype(float)),
            options={"mip_rel_gap": 0.0},
        )
    return None if res.status != 0 else float(size_vec @ np.round(res.x))


def _one_hot(lengths: list[int]) -> np.ndarray:
    """Rows that pick exactly one choice per variable, over the concatenated choices."""
    out = np.zeros((len(lengths), sum(lengths)))
    start = 0
    for i, n in enumerate(lengths):
        out[i, start : start + n] = 1
        start += n
    return out


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
