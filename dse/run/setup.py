"""What a search needs that does not depend on the algorithm, built once and shared by compared runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.core.config import ExperimentConfig
from dse.core.errors import ConfigError
from dse.core.evaluation import Evaluation
from dse.core.objectives import AccuracyConstraint, Objectives
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
    constraint: AccuracyConstraint
    norm: Normalization
    #: evaluation memo shared by every run given this setup (`dse compare`): no configuration runs twice
    memo: dict[tuple[int, ...], Evaluation] = field(default_factory=dict)


def build_setup(cfg: ExperimentConfig, progress: bool = True) -> Setup:
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    problem = problem_cls.from_config(cfg, progress=progress)
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, cfg.objectives)
    constraint = AccuracyConstraint.of(cfg.constraints, problem)
    return Setup(
        cfg, problem, space, objectives, constraint, normalization_for(problem, space, objectives, constraint)
    )


def get_algorithm(cfg: ExperimentConfig) -> Any:
    try:
        cls = ALGORITHMS.get(cfg.algorithm.name)
    except KeyError as e:
        raise ConfigError(f"algorithm.name: {e.args[0]}") from None
    if getattr(cls, "multi_objective", False) and len(cfg.objectives) < 2:
        raise ConfigError(
            f"objectives: {cfg.algorithm.name} is multi-objective and needs at least 2 objectives, "
            f"got {cfg.objectives}"
        )
    return cls(cfg.algorithm.options)
