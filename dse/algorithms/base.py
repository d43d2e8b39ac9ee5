"""What every search algorithm gets, and the one method it fills."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from dse.core.errors import BudgetExhausted, ConfigError
from dse.core.objectives import AccuracyConstraint, Objectives
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
    constraint: AccuracyConstraint
    seed: int
    pop_size: int
    run_dir: Path
    log: Callable[[str], None] = print
    extras: dict[str, Any] = field(default_factory=dict)

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator private to the algorithm, derived from the run seed."""
        return np.random.default_rng([self.seed, 0xA160, salt])


class Algorithm(ABC):
    #: pydantic model of `algorithm.options` (extra keys forbidden); None = passed through unchecked.
    Options: ClassVar[type[BaseModel] | None] = NoOptions
    #: True where the algorithm needs two or more objectives.
    multi_objective: ClassVar[bool] = False

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
