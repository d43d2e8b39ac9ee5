"""The search space: an integer genome whose i-th gene indexes free variable i's choices.

A space may pin some of the problem's variables at one value (e.g. those that change no cost
objective, at their highest choice): genomes cover the free variables only, and every
configuration the space produces (`decode`, `complete`) holds every variable of the problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dse.core.problem import Problem, Variable

Genome = tuple[int, ...]


class SearchSpace:
    """`variables` and `names` are the free (searched) variables, in genome order; `all_names` every
    variable of the problem, in its order; `pinned` {name: value} the variables held at one value."""

    def __init__(self, variables: Sequence[Variable], pinned: Mapping[str, int] | None = None) -> None:
        if not variables:
            raise ValueError("empty search space: the problem has no variables")
        pinned = dict(pinned or {})
        every = {v.name: v for v in variables}
        unknown = [n for n in pinned if n not in every]
        if unknown:
            raise ValueError(f"pinned variable {unknown[0]!r} is not a variable of the problem")
        off = [n for n, value in pinned.items() if value not in every[n].choices]
        if off:
            raise ValueError(f"pinned {off[0]}={pinned[off[0]]} is not one of {list(every[off[0]].choices)}")
        self.all_names = list(every)
        self.pinned = {n: int(pinned[n]) for n in self.all_names if n in pinned}
        self.variables = [v for v in variables if v.name not in self.pinned]
        if not self.variables:
            raise ValueError("empty search space: every variable is pinned")
        self.names = [v.name for v in self.variables]

    @property
    def n_var(self) -> int:
        return len(self.variables)

    @property
    def upper(self) -> np.ndarray:
        """Largest gene of each variable (genes run from 0)."""
        return np.array([len(v.choices) - 1 for v in self.variables], dtype=int)

    def size(self) -> int:
        return math.prod(len(v.choices) for v in self.variables)

    def decode(self, genome: Sequence[int]) -> dict[str, int]:
        """Every variable's value: the free ones from the genome, the pinned ones at their value."""
        if len(genome) != self.n_var:
            raise ValueError(f"genome has {len(genome)} genes, the space has {self.n_var} variables")
        free = {v.name: v.choices[int(g)] for v, g in zip(self.variables, genome, strict=True)}
        return self.complete(free)

    def complete(self, values: Mapping[str, int]) -> dict[str, int]:
        """`values` of (at least) the free variables as a configuration of every variable, in the
        problem's order: pinned variables take their pinned value whatever `values` says."""
        return {n: self.pinned[n] if n in self.pinned else int(values[n]) for n in self.all_names}

    def encode(self, values: Mapping[str, int]) -> Genome:
        return tuple(v.choices.index(int(values[v.name])) for v in self.variables)

    def clip(self, genome: Sequence[int]) -> Genome:
        return tuple(int(min(max(int(round(g)), 0), u)) for g, u in zip(genome, self.upper, strict=True))

    def lowest(self) -> Genome:
        return (0,) * self.n_var

    def highest(self) -> Genome:
        return tuple(int(u) for u in self.upper)

    def uniform(self, value: int) -> Genome | None:
        """Every variable at `value`; None where some variable lacks that choice."""
        if all(value in v.choices for v in self.variables):
            return tuple(v.choices.index(value) for v in self.variables)
        return None

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.upper + 1, size=(n, self.n_var))


def cost_free(
    problem: Problem, metrics: Sequence[str], variables: Sequence[Variable] | None = None
) -> list[str]:
    """Names of the variables whose value changes none of the cost `metrics` (cheap: no model run).

    Each variable is moved through all its choices, one at a time, from the all-highest and from the
    all-lowest configuration of every variable of the problem; one that never moves a metric is
    cost-free. Only the given `variables` (default: all of the problem's) are tried.
    """
    every = problem.variables
    bases = [{v.name: v.choices[-1] for v in every}, {v.name: v.choices[0] for v in every}]
    measured = [problem.evaluate(base, list(metrics)) for base in bases]
    free = []
    for var in variables if variables is not None else every:
        if all(
            problem.evaluate({**base, var.name: c}, list(metrics)) == before
            for base, before in zip(bases, measured, strict=True)
            for c in var.choices
        ):
            free.append(var.name)
    return free
