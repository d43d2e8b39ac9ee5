"""Pareto local search interleaved with a MOEA: each generation also tries neighbours of the front.

Under a small budget an evolutionary search leaves most points of its front without their nearest
neighbours tried: one gene one choice down (less size for, perhaps, no loss) or one choice up (a
little more size for, perhaps, more accuracy). Trying exactly those is Pareto local search
(Paquete, Chiarandini and Stützle 2004): not-yet-evaluated neighbours of the non-dominated feasible
configurations found so far. `PymooMOEA` adds a share of them to every generation after the first
and tells them to pymoo with the offspring (a memetic MOEA), so that what they find also breeds.

Interleaved rather than kept for the end of the budget: the search is then the same whatever the
budget, and a smaller budget only ends it sooner (a finished run resumed with a larger
`algorithm.budget` continues the same search). Neighbours are drawn from all the front's points at
once, in an order set by the run's seed, rather than one point's whole neighbourhood at a time: with
dozens of variables one point's neighbourhood would take many generations' share, while drawing
across the front keeps both of its ends moving.

The search reads only the evaluations the run has handed out so far (`handed`), never the whole
journal: a resumed run replays the interrupted one's records from the start, and seeing the later
ones early would make it take another path.
"""

from __future__ import annotations

import numpy as np

from dse.algorithms.base import SearchContext
from dse.core.evaluation import Evaluation
from dse.indicators.pareto import pareto_front

LABEL = "local_search"
Genome = tuple[int, ...]


def handed(ctx: SearchContext) -> list[Evaluation]:
    """The search evaluations this run has handed out so far, by eval_id.

    The evaluator numbers a run's configurations 0, 1, ... in the order it first hands them out
    (replayed ones keep the numbers they were journaled under, which is the same order), so those
    handed out so far are exactly the ones numbered below `used`.
    """
    used = ctx.evaluator.used
    return [e for e in ctx.evaluator.evaluations() if e.eval_id < used]


def genome(ctx: SearchContext, ev: Evaluation) -> Genome:
    """The evaluation's configuration as a genome (the free variables' choice indices): the form the
    neighbourhood and pymoo work in."""
    return tuple(int(g) for g in ctx.space.encode(ev.values))


def neighbours(point: Genome, upper: np.ndarray) -> list[Genome]:
    """The genomes one gene one choice away from `point`, within 0..upper."""
    out = []
    for i, g in enumerate(point):
        for step in (-1, 1):
            if 0 <= g + step <= upper[i]:
                out.append((*point[:i], g + step, *point[i + 1 :]))
    return out


def candidates(ctx: SearchContext) -> list[Genome]:
    """Neighbours of the run's current front that the run has not evaluated, each once, in order."""
    evals = handed(ctx)
    seen = {genome(ctx, e) for e in evals}
    found: dict[Genome, None] = {}
    # ties all kept: configurations with equal objectives are each a place to search from
    for point in (genome(ctx, e) for e in pareto_front(evals, ctx.objectives, distinct=False)):
        for n in neighbours(point, ctx.space.upper):
            if n not in seen:
                found.setdefault(n)
    return list(found)


def local_search_picks(ctx: SearchContext, n: int, rng: np.random.Generator) -> list[Genome]:
    """Up to `n` of the front's unevaluated neighbours, drawn in an order set by `rng`: from all the
    front's points at once, so that both of its ends move."""
    todo = candidates(ctx)
    return [todo[i] for i in rng.permutation(len(todo))[: max(n, 0)]]
