"""Objectives and the accuracy constraint, in the minimisation form the algorithms use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dse.core.config import ConstraintsSection
from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.core.problem import Problem, Sense

#: Objective value given to failed evaluations: far worse than any real one, yet finite for the sorters.
PENALTY = 1e30


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
        """The evaluation's objectives, negated where maximised; the penalty where it failed."""
        if not ev.ok:
            return np.full(len(self.names), PENALTY)
        return np.array([ev.metrics[n] for n in self.names]) * self.signs

    def matrix(self, evals: Sequence[Evaluation]) -> np.ndarray:
        return np.array([self.minimised(e) for e in evals]).reshape(len(evals), len(self.names))


@dataclass(frozen=True)
class AccuracyConstraint:
    """accuracy >= threshold, from `min_accuracy` and/or `max_accuracy_drop` below the float reference."""

    threshold: float | None

    @classmethod
    def of(cls, section: ConstraintsSection, problem: Problem) -> AccuracyConstraint:
        limits = []
        if section.min_accuracy is not None:
            limits.append(section.min_accuracy)
        if section.max_accuracy_drop is not None:
            base = problem.reference().get("accuracy")
            if base is None:
                raise DseError("constraints.max_accuracy_drop: the problem reports no reference accuracy")
            limits.append(base - section.max_accuracy_drop)
        if limits and "accuracy" not in problem.METRICS:
            raise DseError("constraints: the problem has no 'accuracy' metric to constrain")
        return cls(max(limits) if limits else None)

    @property
    def metrics(self) -> list[str]:
        return [] if self.threshold is None else ["accuracy"]

    def violation(self, metrics: dict[str, float]) -> float:
        """How far below the threshold (<= 0 means satisfied)."""
        if self.threshold is None:
            return 0.0
        return self.threshold - metrics["accuracy"]

    def feasible(self, metrics: dict[str, float]) -> bool:
        return self.violation(metrics) <= 1e-9
