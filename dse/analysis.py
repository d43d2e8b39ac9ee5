"""Non-dominated sets and hypervolume on a normalisation fixed by the problem, not by the run.

Runs of one problem share the normalisation (best/worst of each objective come from the problem:
the float reference, the constraint threshold, the cost of the all-lowest and all-highest
configurations), so their hypervolumes are comparable without re-reading each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from dse.evaluation import Evaluation
from dse.objectives import AccuracyConstraint, Objectives
from dse.problem import Problem
from dse.space import SearchSpace

REFERENCE_MARGIN = 1.1  # reference point in normalised units, as is usual for HV comparisons


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a minimisation matrix (ties all kept)."""
    if len(F) == 0:
        return np.array([], dtype=int)
    return np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=int)


def pareto_front(evals: Sequence[Evaluation], objectives: Objectives) -> list[Evaluation]:
    """Feasible, successful evaluations that no other such evaluation dominates, by eval_id.

    Configurations with identical objectives (e.g. differing only in bits that no objective sees)
    are one point of the front: the first evaluated stands for them.
    """
    pool = [e for e in evals if e.ok and e.feasible]
    front = sorted((pool[i] for i in non_dominated(objectives.matrix(pool))), key=lambda e: e.eval_id)
    seen: set[tuple[float, ...]] = set()
    distinct = []
    for e in front:
        key = tuple(objectives.minimised(e))
        if key not in seen:
            seen.add(key)
            distinct.append(e)
    return distinct


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
    problem: Problem, space: SearchSpace, objectives: Objectives, constraint: AccuracyConstraint
) -> Normalization:
    costs = [n for n in objectives.names if n in problem.COST_METRICS]
    lo = problem.evaluate(space.decode(space.lowest()), costs) if costs else {}
    hi = problem.evaluate(space.decode(space.highest()), costs) if costs else {}
    best, worst = [], []
    for name, sense in zip(objectives.names, objectives.senses, strict=True):
        bounds = problem.bounds(name)
        if name in costs:
            b, w = (lo[name], hi[name]) if sense == "min" else (hi[name], lo[name])
        elif bounds is not None:
            b, w = bounds
        elif name == "accuracy":  # best is a perfect score, so no run can pass it (HV stays bounded)
            b = 100.0
            w = constraint.threshold if constraint.threshold is not None else 0.0
        else:
            raise ValueError(f"no normalisation bounds for objective {name!r}")
        best.append(float(b))
        worst.append(float(w))
    return Normalization(tuple(objectives.names), tuple(best), tuple(worst))


def hypervolume(evals: Sequence[Evaluation], objectives: Objectives, norm: Normalization) -> float:
    """Normalised hypervolume of the feasible front (0 when nothing feasible beats the reference)."""
    front = pareto_front(evals, objectives)
    if not front:
        return 0.0
    F = norm.scale(objectives.matrix(front), objectives)
    F = F[np.all(F < REFERENCE_MARGIN, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], REFERENCE_MARGIN))(F))
