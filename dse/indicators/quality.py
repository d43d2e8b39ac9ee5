"""Comparison metrics on one normalisation: pymoo's HV, IGD and IGD+, evaluations-to-target, anytime HV.

Every function takes objective matrices already in minimised, normalised form (0 = best, 1 = worst,
see `Normalization.scale`) or evaluations plus that normalisation, so runs of one problem are
measured on the same scale and against the same reference point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd import IGD
from pymoo.indicators.igd_plus import IGDPlus

from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives
from dse.indicators.normalization import REFERENCE_MARGIN, Normalization
from dse.indicators.pareto import non_dominated, pareto_front


def scaled_front(evals: Sequence[Evaluation], objectives: Objectives, norm: Normalization) -> np.ndarray:
    """The feasible front of `evals`, minimised and normalised (rows sorted for stable output)."""
    front = pareto_front(evals, objectives)
    F = norm.scale(objectives.matrix(front), objectives).reshape(len(front), len(objectives.names))
    return F[np.lexsort(F.T[::-1])] if len(F) else F


def hypervolume_of(F: np.ndarray) -> float:
    """HV of normalised points against the common reference point (margin in every objective)."""
    F = np.asarray(F, dtype=float)
    if F.size == 0:
        return 0.0
    F = F[np.all(F < REFERENCE_MARGIN, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], REFERENCE_MARGIN))(F))


def hypervolume(evals: Sequence[Evaluation], objectives: Objectives, norm: Normalization) -> float:
    """Normalised hypervolume of the feasible front of `evals` (0 when nothing beats the reference)."""
    return hypervolume_of(scaled_front(evals, objectives, norm))


def igd(F: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance from each reference point to the nearest point of F; NaN when F is empty."""
    if np.asarray(F).size == 0 or np.asarray(reference).size == 0:
        return math.nan
    return float(IGD(np.asarray(reference, dtype=float))(np.asarray(F, dtype=float)))


def igd_plus(F: np.ndarray, reference: np.ndarray) -> float:
    """IGD+ (Ishibuchi et al.): only the part of the distance where F is worse counts (Pareto compliant)."""
    if np.asarray(F).size == 0 or np.asarray(reference).size == 0:
        return math.nan
    return float(IGDPlus(np.asarray(reference, dtype=float))(np.asarray(F, dtype=float)))


def union_front(fronts: Sequence[np.ndarray]) -> np.ndarray:
    """Non-dominated rows of the union of several fronts, duplicates dropped."""
    rows = [np.asarray(f, dtype=float) for f in fronts if np.asarray(f).size]
    if not rows:
        return np.zeros((0, 0))
    F = np.unique(np.vstack(rows), axis=0)
    return F[np.sort(non_dominated(F))]


def hv_curve(evals: Sequence[Evaluation], objectives: Objectives, norm: Normalization) -> np.ndarray:
    """HV of the feasible front of the first k evaluations, for k = 1..len(evals), in eval_id order.

    Non-decreasing by construction: the front only changes when a new point is not weakly dominated,
    and the running maximum guards against round-off in the indicator.
    """
    ordered = sorted(evals, key=lambda e: e.eval_id)
    out = np.zeros(len(ordered))
    front = np.zeros((0, len(objectives.names)))
    current = 0.0
    for k, ev in enumerate(ordered):
        if ev.ok and ev.feasible:
            p = norm.scale(objectives.minimised(ev)[None, :], objectives)[0]
            if np.all(p < REFERENCE_MARGIN) and not np.any(np.all(front <= p, axis=1)):
                front = np.vstack([front[~np.all(p <= front, axis=1)], p])
                current = hypervolume_of(front)
        out[k] = current
    return np.maximum.accumulate(out) if len(out) else out


def best_value(evals: Sequence[Evaluation], metric: str, sense: str = "min") -> float:
    """Best value of `metric` over feasible, successful evaluations; NaN when there is none."""
    values = [e.metrics[metric] for e in evals if e.ok and e.feasible and metric in e.metrics]
    if not values:
        return math.nan
    return float(min(values) if sense == "min" else max(values))


def default_target(best_sizes: Sequence[float], factor: float = 1.05) -> float:
    """The best size any run found, loosened by `factor`; NaN when no run found a feasible point."""
    finite = [b for b in best_sizes if b is not None and math.isfinite(b)]
    return min(finite) * factor if finite else math.nan


def evals_to_target(evals: Sequence[Evaluation], metric: str, target: float) -> float:
    """eval_id + 1 of the first feasible evaluation with `metric` <= target; NaN if none gets there."""
    if not math.isfinite(target):
        return math.nan
    for ev in sorted(evals, key=lambda e: e.eval_id):
        if ev.ok and ev.feasible and ev.metrics.get(metric, math.inf) <= target:
            return float(ev.eval_id + 1)
    return math.nan
