"""Uniform random genomes: the baseline every comparison needs. Drawn in batches (a pool of workers
evaluates one at once); a genome drawn twice costs nothing and is drawn for again."""

from __future__ import annotations

from dse.algorithms.base import Algorithm, SearchContext
from dse.core.registry import ALGORITHMS

BATCH = 64


@ALGORITHMS.register("random")
class RandomSearch(Algorithm):
    def _run(self, ctx: SearchContext) -> None:
        rng = ctx.rng()
        size = ctx.space.size()
        stale = 0
        while ctx.evaluator.remaining > 0 and stale < 1000:
            before = ctx.evaluator.used
            ctx.evaluator.evaluate(ctx.space.random(rng, min(ctx.evaluator.remaining, BATCH)))
            stale = stale + 1 if ctx.evaluator.used == before else 0
            if ctx.evaluator.used >= size:  # every configuration seen
                return
