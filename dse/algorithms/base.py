"""What every search algorithm gets, and the one method it fills."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from dse.core.config import ExperimentConfig
from dse.core.errors import BudgetExhausted, ConfigError
from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem
from dse.core.space import SearchSpace
from dse.run.evaluator import Evaluator


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class SearchContext:
    problem: Problem
    space: SearchSpace
    evaluator: Evaluator
    objectives: Objectives
    constraint: Constraint
    seed: int
    pop_size: int
    run_dir: Path
    log: Callable[[str], None] = print

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator private to the algorithm, derived from the run seed."""
        return np.random.default_rng([self.seed, 0xA160, salt])


class _Requests:
    """Stands in for the evaluator of a `CheckContext`: records the metrics an algorithm asks for."""

    def __init__(self) -> None:
        self.metrics: list[str] = []

    def require(self, metrics: list[str]) -> None:
        self.metrics.extend(metrics)


@dataclass
class CheckContext:
    """What a search knows from its config alone, before its problem is built (no model, no data).

    `Algorithm.check` refuses bad options with it, so that a refused run trains and writes nothing.
    `problem` is the problem class (its METRICS, COST_METRICS); `constraint.threshold` is a stand-in
    (0.0) where the config sets a limit, None where it sets none.
    """

    problem: type[Problem]
    objectives: Objectives
    constraint: Constraint
    seed: int
    pop_size: int
    log: Callable[[str], None] = lambda message: None
    evaluator: _Requests = field(default_factory=_Requests)

    @classmethod
    def of(cls, cfg: ExperimentConfig, problem: type[Problem]) -> CheckContext:
        section = cfg.constraints
        limited = bool(section.limits or section.drops)
        sense = problem.METRICS.get(section.metric, "max")
        constraint = Constraint(section.metric, sense, 0.0 if limited else None)
        objectives = Objectives.of(problem, cfg.objectives)  # type: ignore[arg-type] - reads METRICS only
        return cls(problem, objectives, constraint, cfg.experiment.seed, cfg.algorithm.pop_size)


class Algorithm(ABC):
    #: pydantic model of `algorithm.options` (extra keys forbidden); None = passed through unchecked.
    Options: ClassVar[type[BaseModel] | None] = NoOptions
    #: True where the algorithm needs two or more objectives.
    multi_objective: ClassVar[bool] = False
    #: True where it reads the scores of infeasible configurations (a sensitivity, a per-layer error):
    #: its evaluations are never rejected early (constraints.early_reject). Otherwise a rejected
    #: evaluation is infeasible with its constrained metric unknown (NaN; `Evaluation.bounds` holds
    #: what it could at best have reached); pass `exact=True` to `evaluate` for single exceptions.
    exact_scores: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        if self.Options is None:
            self.options: Any = options
            return
        try:
            self.options = self.Options.model_validate(options)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            msg = "unknown option" if first["type"] == "extra_forbidden" else first["msg"]
            raise ConfigError(f"algorithm.options.{loc}: {msg}") from None

    def check(self, ctx: CheckContext) -> None:
        """Refuse from the config alone what `_run` would refuse (option values, missing metrics):
        `dse run` and `dse validate` call it before the problem is built. Checks that need the
        problem itself (its variables, its reference) stay in `_run`."""

    def run(self, ctx: SearchContext) -> None:
        if self.multi_objective and len(ctx.objectives.names) < 2:
            raise ConfigError(f"objectives: {type(self).__name__} needs at least 2 objectives")
        try:
            self._run(ctx)
        except BudgetExhausted:
            pass

    @abstractmethod
    def _run(self, ctx: SearchContext) -> None:
        """Search by calling ctx.evaluator; stop when done or when BudgetExhausted is raised."""
