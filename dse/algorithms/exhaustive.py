"""Every configuration of a small space, in a fixed order: the true front others are measured against."""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field

from dse.algorithms.base import Algorithm, SearchContext
from dse.core.errors import ConfigError
from dse.core.registry import ALGORITHMS

BATCH = 256  # genomes handed to the evaluator at a time (order is unchanged)


class ExhaustiveOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_configurations: int = Field(20_000, ge=1, description="refuse spaces larger than this")


@ALGORITHMS.register("exhaustive")
class Exhaustive(Algorithm):
    Options = ExhaustiveOptions

    def _run(self, ctx: SearchContext) -> None:
        size, limit = ctx.space.size(), self.options.max_configurations
        if size > limit:
            raise ConfigError(
                f"algorithm.options.max_configurations: the space has {size:,} configurations, more "
                f"than the limit of {limit:,}; raise the limit or narrow search_space"
            )
        if ctx.evaluator.budget < size:
            ctx.log(
                f"exhaustive: the budget of {ctx.evaluator.budget} evaluations covers only part of the "
                f"{size} configurations, so the front found is not the true one (raise --budget)"
            )
        genomes = itertools.product(*(range(len(v.choices)) for v in ctx.space.variables))
        while batch := list(itertools.islice(genomes, BATCH)):
            ctx.evaluator.evaluate(batch, label="exhaustive")
