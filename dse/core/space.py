"""The search space: an integer genome whose i-th gene indexes variable i's choices."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dse.core.problem import Variable

Genome = tuple[int, ...]


class SearchSpace:
    def __init__(self, variables: Sequence[Variable]) -> None:
        if not variables:
            raise ValueError("empty search space: the problem has no variables")
        self.variables = list(variables)
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
        if len(genome) != self.n_var:
            raise ValueError(f"genome has {len(genome)} genes, the space has {self.n_var} variables")
        return {v.name: v.choices[int(g)] for v, g in zip(self.variables, genome, strict=True)}

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
