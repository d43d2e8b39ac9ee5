"""Initial populations that start from the uniform-precision configurations and the knapsack answers.

A random integer genome over dozens of layers almost never puts every layer at few bits, so a MOEA
that starts from random genomes spends most of a small budget walking toward the low-size end of
the front. Users judge a mixed-precision front against the uniform configurations anyway; putting
those in the first population gives the search the whole size range from generation one.

`initial: sensitivity` (the default; HAWQ-V3 / ModelOpt style, then evolution) adds what ilp would
answer: the sensitivity table (`sensitivity.py`, real evaluations of the run's budget) predicts each
configuration's loss, and the multiple-choice knapsack (`ilp.solve`) gives the least predicted loss
at size budgets spread over the range where the prediction trades size for score: from the smallest
size predicted to meet the constraint to the smallest size predicted to lose nothing (above it every
answer only spends the budget). The rest of the first population stays pymoo's integer random
sampling. On the MNIST-1D ground truth (benchmarks/groundtruth.py) this takes nsga2 at 5 % of the
space from 0.90 to 0.94 of the exhaustive front's hypervolume, and to the front's smallest feasible
size in 32 evaluations, where random sampling needs 480 on average.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from dse.algorithms.base import SearchContext
from dse.algorithms.ilp import smallest, solve
from dse.algorithms.scoring import cost_of, from_loss
from dse.algorithms.sensitivity import Sensitivity, cost_deltas, measure, moving
from dse.core.space import cost_free


def uniform_genomes(ctx: SearchContext) -> np.ndarray:
    """For each value any variable can take: every variable at its choice nearest that value; and the
    same with the variables that do not move the first cost objective (e.g. activations against
    weight size) left at their highest choice."""
    space, problem = ctx.space, ctx.problem
    values = sorted({c for v in space.variables for c in v.choices})
    cost = next((n for n in ctx.objectives.names if n in problem.COST_METRICS), None)
    free = _cost_free(ctx, cost) if cost else set()
    rows: list[tuple[int, ...]] = []
    for value in values:
        nearest = tuple(int(np.argmin([abs(c - value) for c in v.choices])) for v in space.variables)
        rows.append(nearest)
        if free:
            rows.append(tuple(u if i in free else g for i, (g, u) in enumerate(zip(nearest, space.upper))))
    unique = list(dict.fromkeys(rows))
    return np.array(unique, dtype=int).reshape(len(unique), space.n_var)


def sensitivity_genomes(ctx: SearchContext, score: str, who: str, pop_size: int) -> np.ndarray:
    """The uniform genomes, then the knapsack answers at about pop_size / 2 size budgets (duplicates
    dropped); measures the sensitivity table first (and writes sensitivity.csv). Without a size
    objective there is no knapsack: the uniform genomes alone."""
    uniform = uniform_genomes(ctx)
    cost = next((n for n in ctx.objectives.names if n in ctx.problem.COST_METRICS), None)
    if cost is None:
        ctx.log(f"{who}: no size objective to spread a knapsack over; seeding with uniform genomes only")
        return uniform
    table = measure(ctx, score, who=who, variables=moving(ctx, cost), cost=cost)
    n = max(0, min(pop_size // 2, pop_size - len(uniform)))
    rows = [tuple(g) for g in uniform] + knapsack_genomes(ctx, table, cost, n)
    unique = list(dict.fromkeys(rows))
    return np.array(unique, dtype=int).reshape(len(unique), ctx.space.n_var)


def knapsack_genomes(ctx: SearchContext, table: Sensitivity, cost: str, n: int) -> list[tuple[int, ...]]:
    """`ilp.solve` over the table at `n` size budgets, evenly spaced from the smallest size predicted
    to meet the constraint (where the table's score is the constrained metric; else the all-lowest
    size) to the smallest size predicted to lose nothing (else the all-highest size)."""
    if n <= 0 or not np.isfinite(table.base_loss):
        return []
    space = ctx.space
    top = space.decode(space.highest())
    top_cost = cost_of(ctx, top, cost)
    delta = cost_deltas(ctx, cost, top)
    sens = {v.name: table.monotone().get(v.name, np.zeros(len(v.choices))) for v in space.variables}
    low = cost_of(ctx, space.decode(space.lowest()), cost) - top_cost
    threshold = ctx.constraint.threshold
    if ctx.constraint.metric == table.score and threshold is not None:
        least = smallest(sens, delta, from_loss(threshold, table.score) - table.base_loss)
        low = least if least is not None else low
    flat = smallest(sens, delta, 1e-9 * max(1.0, abs(table.base_loss)))
    high = flat if flat is not None and flat > low else 0.0
    out = []
    for room in np.linspace(low, high, n):
        picks = solve(sens, delta, float(room))
        if picks is not None:
            out.append(tuple(picks[name] for name in space.names))
    return out


def _cost_free(ctx: SearchContext, cost: str) -> set[int]:
    """Genome indices of the searched variables whose value does not change `cost` (cheap: no model
    run). None are left where the space pins them (search_space.pin_cost_free, the default)."""
    free = set(cost_free(ctx.problem, [cost], ctx.space.variables))
    return {i for i, name in enumerate(ctx.space.names) if name in free}


class SeededIntegerSampling(Sampling):
    """The given genomes first, then pymoo's integer random sampling for the rest."""

    def __init__(self, seeds: np.ndarray) -> None:
        super().__init__()
        self.seeds = seeds

    def _do(
        self, problem: Any, n_samples: int, *args: Any, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        X = IntegerRandomSampling()._do(problem, n_samples, random_state=random_state)
        k = min(len(self.seeds), n_samples)
        X[:k] = self.seeds[:k]
        return X
