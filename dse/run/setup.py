"""What a search needs that does not depend on the algorithm, built once and shared by compared runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.algorithms.base import Algorithm, CheckContext
from dse.core.config import ExperimentConfig
from dse.core.errors import ConfigError
from dse.core.evaluation import Evaluation
from dse.core.objectives import Constraint, Objectives
from dse.core.problem import Problem
from dse.core.registry import ALGORITHMS, PROBLEMS
from dse.core.space import SearchSpace
from dse.indicators.normalization import Normalization, normalization_for


@dataclass
class Setup:
    """Everything a search needs that does not depend on the algorithm: shared by compared runs."""

    cfg: ExperimentConfig
    problem: Problem
    space: SearchSpace
    objectives: Objectives
    constraint: Constraint
    norm: Normalization
    #: evaluation memo shared by every run given this setup (`dse compare`): no configuration runs twice
    memo: dict[tuple[int, ...], Evaluation] = field(default_factory=dict)


def build_setup(cfg: ExperimentConfig, progress: bool = True) -> Setup:
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    problem_cls.check_config(cfg)  # cheap checks first: nothing built, trained or written
    problem = problem_cls.from_config(cfg, progress=progress)
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, cfg.objectives)
    constraint = Constraint.of(cfg.constraints, problem)
    return Setup(
        cfg, problem, space, objectives, constraint, normalization_for(problem, space, objectives, constraint)
    )


def algorithm_class(name: str, field: str = "algorithm.name") -> type[Algorithm]:
    """A registered algorithm, or an out-of-tree one given as 'package.module:Class'."""
    try:
        cls = ALGORITHMS.get(name)
    except KeyError as e:
        raise ConfigError(f"{field}: {e.args[0]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ConfigError(
            f"{field}: {name!r} is not a search algorithm (a subclass of dse.algorithms.base.Algorithm)"
        )
    return cls


def get_algorithm(cfg: ExperimentConfig) -> Any:
    cls = algorithm_class(cfg.algorithm.name)
    if getattr(cls, "multi_objective", False) and len(cfg.objectives) < 2:
        raise ConfigError(
            f"objectives: {cfg.algorithm.name} is multi-objective and needs at least 2 objectives, "
            f"got {cfg.objectives}"
        )
    algorithm = cls(cfg.algorithm.options)
    # what the algorithm can refuse from the config alone, before a problem is built (a model
    # trained and cached): a refused run writes nothing
    algorithm.check(CheckContext.of(cfg, PROBLEMS.problem_class(cfg.experiment.problem)))
    return algorithm
