"""Non-dominated sets: the front is what no other feasible, successful evaluation dominates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a minimisation matrix (ties all kept)."""
    if len(F) == 0:
        return np.array([], dtype=int)
    return np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=int)


def pareto_front(
    evals: Sequence[Evaluation], objectives: Objectives, distinct: bool = True
) -> list[Evaluation]:
    """Feasible, successful evaluations that no other such evaluation dominates, by eval_id.

    Configurations with identical objectives (e.g. differing only in bits that no objective sees)
    are one point of the front: the first evaluated stands for them (`distinct=False`: all kept).
    """
    pool = [e for e in evals if e.ok and e.feasible]
    front = sorted((pool[i] for i in non_dominated(objectives.matrix(pool))), key=lambda e: e.eval_id)
    if not distinct:
        return front
    seen: set[tuple[float, ...]] = set()
    distinct = []
    for e in front:
        key = tuple(objectives.minimised(e))
        if key not in seen:
            seen.add(key)
            distinct.append(e)
    return distinct
