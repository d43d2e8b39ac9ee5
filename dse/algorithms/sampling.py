"""Initial populations that start from the uniform-precision configurations.

A random integer genome over dozens of layers almost never puts every layer at few bits, so a MOEA
that starts from random genomes spends most of a small budget walking toward the low-size end of
the front. Users judge a mixed-precision front against the uniform configurations anyway; putting
those in the first population (the rest stays pymoo's integer random sampling) gives the search
the whole size range from generation one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from dse.algorithms.base import SearchContext


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


def _cost_free(ctx: SearchContext, cost: str) -> set[int]:
    """Indices of variables whose value does not change `cost` (cheap: no model run)."""
    space = ctx.space
    high = space.decode(space.highest())
    base = ctx.problem.evaluate(high, [cost])[cost]
    free = set()
    for i, var in enumerate(space.variables):
        low = dict(high, **{var.name: var.choices[0]})
        if ctx.problem.evaluate(low, [cost])[cost] == base:
            free.add(i)
    return free


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
