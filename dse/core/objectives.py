"""Objectives and the accuracy constraint, in the minimisation form the algorithms use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.core.config import ConstraintsSection
from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.core.problem import Problem, Sense

#: Objective value given to failed evaluations: far worse than any real one, yet finite for the sorters.
PENALTY = 1e30
#: How far past its threshold a metric may be and still meet the constraint (float noise).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Objectives:
    names: tuple[str, ...]
    senses: tuple[Sense, ...]

    @classmethod
    def of(cls, problem: Problem, names: Sequence[str]) -> Objectives:
        unknown = [n for n in names if n not in problem.METRICS]
        if unknown:
            raise DseError(
                f"objectives: unknown objective {unknown[0]!r}; known: {', '.join(problem.METRICS)}"
            )
        return cls(tuple(names), tuple(problem.METRICS[n] for n in names))

    @property
    def signs(self) -> np.ndarray:
        """+1 for minimised objectives, -1 for maximised: multiplying by it gives the minimised form."""
        return np.array([1.0 if s == "min" else -1.0 for s in self.senses])

    def minimised(self, ev: Evaluation) -> np.ndarray:
        """The evaluation's objectives, negated where maximised; the penalty where it failed.

        A rejected evaluation (stopped early, infeasible) shows a rejected metric at its bound, the best
        it could have reached: an optimistic yet finite value; what it did not compute gets the penalty.
        Algorithms rank infeasible points by their constraint violation first anyway (`violation_of`).
        """
        if ev.rejected:
            known = {**ev.metrics, **ev.bounds}
            row = np.array([known.get(n, math.nan) for n in self.names]) * self.signs
            return np.where(np.isfinite(row), row, PENALTY)
        if not ev.ok:
            return np.full(len(self.names), PENALTY)
        return np.array([ev.metrics[n] for n in self.names]) * self.signs

    def axes(self, others: Sequence[str] = ()) -> tuple[str, str]:
        """(x, y) of every front plot and the size column of every table.

        y is the first maximised objective (the quality, e.g. accuracy), else the second objective;
        x is the first other objective (the size). A single objective is paired with the first of
        `others` (e.g. the constrained metric, then what the evaluations carry).
        """
        names = list(self.names)
        maxed = [n for n, s in zip(names, self.senses, strict=True) if s == "max"]
        if len(names) == 1:
            other = next((o for o in others if o != names[0]), names[0])
            return (other, names[0]) if maxed else (names[0], other)
        y = maxed[0] if maxed else names[1]
        return next(n for n in names if n != y), y

    def matrix(self, evals: Sequence[Evaluation]) -> np.ndarray:
        return np.array([self.minimised(e) for e in evals]).reshape(len(evals), len(self.names))


@dataclass(frozen=True)
class Constraint:
    """`metric` no worse than `threshold` (>= for a maximised metric, <= for a minimised one)."""

    metric: str = "accuracy"
    sense: Sense = "max"
    threshold: float | None = None

    @classmethod
    def of(cls, section: ConstraintsSection, problem: Problem) -> Constraint:
        metric = section.metric
        if not section.limits and not section.drops:
            return cls(metric, problem.METRICS.get(metric, "max"), None)
        if metric not in problem.METRICS:
            raise DseError(
                f"constraints.metric: the problem has no metric {metric!r}; "
                f"known: {', '.join(problem.METRICS)}"
            )
        sense = problem.METRICS[metric]
        wrong = "max" if sense == "max" else "min"
        if getattr(section, wrong) is not None or (sense == "min" and section.min_accuracy is not None):
            right = "min" if sense == "max" else "max"
            raise DseError(
                f"constraints.{wrong}: {metric} is {sense}imised, so its limit is constraints.{right}"
            )
        limits = list(section.limits)
        if section.drops:
            base = problem.reference().get(metric)
            if base is None:
                raise DseError(f"constraints.max_drop: the problem reports no reference {metric}")
            limits += [base - d if sense == "max" else base + d for d in section.drops]
        return cls(metric, sense, max(limits) if sense == "max" else min(limits))

    @property
    def metrics(self) -> list[str]:
        return [] if self.threshold is None else [self.metric]

    def violation(self, metrics: dict[str, float]) -> float:
        """How far the metric is on the wrong side of the threshold (<= 0 means satisfied)."""
        if self.threshold is None:
            return 0.0
        value = metrics[self.metric]
        return self.threshold - value if self.sense == "max" else value - self.threshold

    def feasible(self, metrics: dict[str, float]) -> bool:
        return self.violation(metrics) <= TOLERANCE

    def violation_of(self, ev: Evaluation) -> float:
        """The violation an algorithm sees: a rejected evaluation's is that of its bound, a lower
        bound of the true violation (so still > 0: infeasible, and by at least that much); a failed
        one gets the penalty."""
        if ev.ok:
            return self.violation(ev.metrics)
        if ev.rejected and self.metric in ev.bounds:
            return self.violation({self.metric: ev.bounds[self.metric]})
        return PENALTY

    @property
    def worst_feasible(self) -> float | None:
        """The worst value of the metric that still meets the constraint, exactly as `feasible` decides
        in floating point (the threshold loosened by TOLERANCE, to the last bit): a value is infeasible
        if and only if it is strictly worse than this one. None without a threshold."""
        if self.threshold is None or not math.isfinite(self.threshold):
            return None
        better, worse_ = (math.inf, -math.inf) if self.sense == "max" else (-math.inf, math.inf)
        value = self.threshold - TOLERANCE if self.sense == "max" else self.threshold + TOLERANCE
        while not self.feasible({self.metric: value}):
            value = math.nextafter(value, better)
        while self.feasible({self.metric: math.nextafter(value, worse_)}):
            value = math.nextafter(value, worse_)
        return value

    def reject_limits(self, problem: Problem | type[Problem], early_reject: bool = True) -> dict[str, float]:
        """{metric: worst feasible value}: what an evaluation may stop early on (`Problem.evaluate`'s
        `reject_worse_than`); empty where rejection is off, there is no threshold or the problem
        cannot reject its metric early."""
        limit = self.worst_feasible
        if not early_reject or limit is None or self.metric not in problem.EARLY_REJECT:
            return {}
        return {self.metric: limit}

    def describe(self) -> str:
        """'accuracy >= 97.60', or 'none'."""
        if self.threshold is None:
            return "none"
        return f"{self.metric} {'>=' if self.sense == 'max' else '<='} {self.threshold:.2f}"

    def to_json(self) -> dict[str, object]:
        return {"metric": self.metric, "sense": self.sense, "threshold": self.threshold}
