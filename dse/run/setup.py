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
from dse.core.space import SearchSpace, cost_free
from dse.indicators.normalization import Normalization, normalization_for
from dse.run.executor import Executor
from dse.run.workers import make_executor, oversubscription_note


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
    #: where evaluations run (`execution`): made on first use, shared by the runs, closed by the owner
    executor: Executor | None = None

    def ensure_executor(self) -> Executor:
        """The executor `cfg.execution` asks for; a pool starts its workers here, once per setup."""
        if self.executor is None:
            self.executor = make_executor(self.cfg, self.problem)
        return self.executor

    def close_executor(self) -> None:
        """Stop the workers (also after Ctrl-C or an error); a later run starts new ones."""
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.close()


def build_setup(cfg: ExperimentConfig, progress: bool = True) -> Setup:
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    problem_cls.check_config(cfg)  # cheap checks first: nothing built, trained or written
    problem = problem_cls.from_config(cfg, progress=progress)
    objectives = Objectives.of(problem, cfg.objectives)
    constraint = Constraint.of(cfg.constraints, problem)
    pinned = pin_cost_free(problem, objectives, constraint) if cfg.search_space.pin_cost_free else {}
    space = SearchSpace(problem.variables, pinned)
    return Setup(
        cfg, problem, space, objectives, constraint, normalization_for(problem, space, objectives, constraint)
    )


def cost_metrics(problem: Problem, objectives: Objectives, constraint: Constraint) -> list[str]:
    """The cost metrics a run trades against quality: cost objectives and a constrained cost."""
    wanted = [*objectives.names, *constraint.metrics]
    return [m for m in dict.fromkeys(wanted) if m in problem.COST_METRICS]


def pin_cost_free(problem: Problem, objectives: Objectives, constraint: Constraint) -> dict[str, int]:
    """{name: highest choice} of each variable that changes no cost metric of the run.

    By the contract's ordering, lowering such a variable can only lose quality, so searching it
    wastes evaluations; a categorical variable has no such ordering and stays searched. Nothing is
    pinned where the run has no cost metric. A run whose every variable is cost-free has nothing to
    trade: refused, naming both ways out.
    """
    costs = cost_metrics(problem, objectives, constraint)
    if not costs:
        return {}
    free = set(cost_free(problem, costs)) - {v.name for v in problem.variables if v.categorical}
    if len(free) == len(problem.variables):
        raise ConfigError(
            f"search_space: no searched variable changes {', '.join(costs)}, so the search has nothing "
            "to trade; add a cost objective they change or set search_space.pin_cost_free: false"
        )
    return {v.name: v.choices[-1] for v in problem.variables if v.name in free}


def start_notes(setup: Setup, cfg: ExperimentConfig) -> list[str]:
    """The lines a run or a comparison starts with: the problem's own notes, the pinned variables,
    and an oversubscribed machine."""
    notes = (*setup.problem.notes(), pin_note(setup.space), oversubscription_note(cfg))
    return [n for n in notes if n]


def pin_note(space: SearchSpace, shown: int = 4) -> str | None:
    """The one line a run starts with where variables are pinned (None where none is)."""
    if not space.pinned:
        return None
    names = list(space.pinned)
    listed = ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
    n = len(names)
    return (
        f"pinned {n} variable{'s' * (n != 1)} that change{'s' * (n == 1)} no cost objective at "
        f"{'their' if n != 1 else 'its'} highest choice: {listed} "
        "(search_space.pin_cost_free: false keeps them searched)"
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
