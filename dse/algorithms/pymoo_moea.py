"""Any pymoo MOEA, driven by ask/tell so every evaluation goes through our evaluator.

Integer genes are handled the way pymoo recommends (integer sampling, SBX and polynomial mutation
with rounding repair, duplicate elimination) rather than with operators of our own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.problem import Problem as PymooProblem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.problems.static import StaticProblem

from dse.algorithms.base import Algorithm, SearchContext
from dse.errors import ConfigError
from dse.evaluation import Evaluation
from dse.objectives import PENALTY
from dse.registry import ALGORITHMS, import_object


class PymooMOEA(Algorithm):
    """Subclasses name the pymoo class; `algorithm.options` are passed to its constructor."""

    Options = None
    multi_objective = True
    pymoo_class: str = ""

    def build(self, ctx: SearchContext, n_obj: int) -> Any:
        kwargs: dict[str, Any] = {
            "pop_size": ctx.pop_size,
            "sampling": IntegerRandomSampling(),
            "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
            "eliminate_duplicates": True,
        }
        kwargs.update(self.extra_kwargs(ctx, n_obj))
        kwargs.update(self.options)
        cls = import_object(self.pymoo_class)
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"algorithm.options: {cls.__name__} rejected the options: {e}") from None

    def extra_kwargs(self, ctx: SearchContext, n_obj: int) -> dict[str, Any]:
        return {}

    def _run(self, ctx: SearchContext) -> None:
        space, n_obj = ctx.space, len(ctx.objectives.names)
        n_constr = 0 if ctx.constraint.threshold is None else 1
        problem = PymooProblem(
            n_var=space.n_var, n_obj=n_obj, n_ieq_constr=n_constr, xl=0, xu=space.upper, vtype=int
        )
        algorithm = self.build(ctx, n_obj)
        # Termination is our budget (BudgetExhausted); pymoo's own counter is only a backstop.
        algorithm.setup(problem, termination=("n_eval", 10**12), seed=ctx.seed, verbose=False)
        stale = 0
        while algorithm.has_next() and stale < 50:
            pop = algorithm.ask()
            if pop is None or len(pop) == 0:
                break
            before = ctx.evaluator.used
            evals = ctx.evaluator.evaluate(np.asarray(pop.get("X")).round().astype(int))
            stale = stale + 1 if ctx.evaluator.used == before else 0  # converged: nothing new proposed
            out: dict[str, np.ndarray] = {"F": ctx.objectives.matrix(evals)}
            if n_constr:
                out["G"] = np.array([[_violation(ctx, e)] for e in evals])
            PymooEvaluator().eval(StaticProblem(problem, **out), pop)
            algorithm.tell(infills=pop)


def _violation(ctx: SearchContext, ev: Evaluation) -> float:
    return ctx.constraint.violation(ev.metrics) if ev.ok else PENALTY


@ALGORITHMS.register("nsga2")
class NSGA2(PymooMOEA):
    pymoo_class = "pymoo.algorithms.moo.nsga2:NSGA2"
