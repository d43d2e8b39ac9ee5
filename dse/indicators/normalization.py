"""A normalisation fixed by the problem, not by the run, so hypervolumes of one problem compare.

Best and worst of each objective come from the problem: the float reference, the constraint
threshold, the cost of the all-lowest and all-highest configurations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem
from dse.core.space import SearchSpace

REFERENCE_MARGIN = 1.1  # reference point in normalised units, as is usual for HV comparisons


@dataclass(frozen=True)
class Normalization:
    names: tuple[str, ...]
    best: tuple[float, ...]  # in the objective's own units
    worst: tuple[float, ...]

    def scale(self, F_min: np.ndarray, objectives: Objectives) -> np.ndarray:
        """Minimised objective matrix -> 0 at best, 1 at worst."""
        best = np.array(self.best) * objectives.signs
        worst = np.array(self.worst) * objectives.signs
        span = np.where(worst - best == 0, 1.0, worst - best)
        return (np.asarray(F_min, dtype=float) - best) / span

    def reference_point(self) -> dict[str, float]:
        """The HV reference point in the objectives' own units."""
        return {
            n: b + REFERENCE_MARGIN * (w - b)
            for n, b, w in zip(self.names, self.best, self.worst, strict=True)
        }

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "margin": REFERENCE_MARGIN, "reference_point": self.reference_point()}


def normalization_for(
    problem: Problem, space: SearchSpace, objectives: Objectives, constraint: Constraint
) -> Normalization:
    costs = [n for n in objectives.names if n in problem.COST_METRICS]
    lo = problem.evaluate(space.decode(space.lowest()), costs) if costs else {}
    hi = problem.evaluate(space.decode(space.highest()), costs) if costs else {}
    best, worst = [], []
    for name, sense in zip(objectives.names, objectives.senses, strict=True):
        bounds = problem.bounds(name)
        if name in costs:
            low, high = sorted((lo[name], hi[name]))  # a maximised cost (sparsity) falls as choices rise
            b, w = (low, high) if sense == "min" else (high, low)
        elif bounds is not None:
            b, w = bounds
            if name == constraint.metric and constraint.threshold is not None:
                w = constraint.threshold  # nothing beyond the threshold counts, so HV stays comparable
        else:
            raise ValueError(f"no normalisation bounds for objective {name!r}: problem.bounds() gives none")
        best.append(float(b))
        worst.append(float(w))
    return Normalization(tuple(objectives.names), tuple(best), tuple(worst))
