"""What the layer-wise heuristics (bisection, greedy, ilp) share: a score to minimise, a cost to save.

A score is "qerror" (lower is better) or "accuracy" (higher is better); `loss` turns either into a
number to minimise, infinite for a failed evaluation so that it never meets a target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dse.algorithms.base import SearchContext
from dse.core.errors import ConfigError
from dse.core.evaluation import Evaluation
from dse.core.problem import Variable


def require_metric(ctx: SearchContext, metric: str, field: str) -> None:
    """Make the evaluator compute `metric` (an algorithm's score need not be an objective)."""
    if metric not in ctx.problem.METRICS:
        raise ConfigError(
            f"{field}: the problem computes no {metric!r} metric; known: {', '.join(ctx.problem.METRICS)}"
        )
    ctx.evaluator.require([metric])


def loss(ev: Evaluation, score: str) -> float:
    """The score as a number to minimise: qerror as is, accuracy negated; +inf where it failed."""
    value = ev.metrics.get(score, math.nan) if ev.ok else math.nan
    if not math.isfinite(value):
        return math.inf
    return -value if score == "accuracy" else value


def from_loss(value: float, score: str) -> float:
    return -value if score == "accuracy" else value


def cost_metric(ctx: SearchContext, who: str) -> str:
    """The first objective the problem computes without running the model (e.g. weight_bits)."""
    for name in ctx.objectives.names:
        if name in ctx.problem.COST_METRICS:
            return name
    raise ConfigError(
        f"objectives: {who} needs a size objective among {', '.join(sorted(ctx.problem.COST_METRICS))}"
    )


def cost_of(ctx: SearchContext, values: Mapping[str, int], cost: str) -> float:
    """A cost metric straight from the problem: cheap, and no evaluation is spent. `values` of the
    free variables suffice (the space adds the pinned ones)."""
    return float(ctx.problem.evaluate(ctx.space.complete(values), [cost])[cost])


def at_or_above(var: Variable, value: int) -> int:
    """The smallest choice of `var` at or above `value` (its largest where none is)."""
    return next((c for c in var.choices if c >= value), var.choices[-1])
