"""pymoo's duplicate elimination, extended to the run's whole history.

pymoo eliminates duplicates within a generation and against the current population only. A genome
evaluated generations ago and since dropped from the population can be bred again; the evaluator
answers it from memory (no budget spent), but it takes a place in the generation, so a generation of
16 may try far fewer than 16 new configurations and the evolution advances on stale information.
`ArchiveDuplicateElimination` also refuses every genome the run has evaluated, so that each
generation's offspring are all new configurations (pymoo's mating draws again until it has enough
or gives up after its usual number of tries).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pymoo.core.duplicate import DefaultDuplicateElimination


class ArchiveDuplicateElimination(DefaultDuplicateElimination):
    """pymoo's duplicate elimination, and also every genome in `seen` (what the run has evaluated).

    `seen` is filled by the caller after each evaluation, so the first population (which may hold
    configurations evaluated before it, e.g. the uniform ones the sensitivity table shares) is left
    as it is: those are good parents and cost nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, ...]] = set()

    def add(self, genomes: Iterable[Iterable[int]]) -> None:
        self.seen.update(tuple(int(g) for g in genome) for genome in genomes)

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        is_duplicate = super()._do(pop, other, is_duplicate)
        if other is None and self.seen:  # pymoo compares a population with itself once per call
            X = np.asarray(self.func(pop), dtype=float).round().astype(int)
            is_duplicate |= np.array([tuple(x) in self.seen for x in X], dtype=bool)
        return is_duplicate
