"""Bisection on the model's depth (Samsung ONE's circle-mpqsolver), generic over any problem.

Two precisions, high and low. Layers on one side of a cut depth get high, the rest low; which
side gets high is fixed (`front`/`back`) or chosen (`auto`) by comparing the summed per-layer
errors of the two halves at the middle depth. The target score lies between all-high and all-low
(`qerror_ratio`); a binary search over the cut finds the fewest high layers that still meet it.
Searching over the distinct depths (not every integer up to the deepest) needs at most
ceil(log2(levels)) cut evaluations; the result always meets the target since only measured
configurations that meet it are kept.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from dse.algorithms.base import Algorithm, CheckContext, SearchContext
from dse.algorithms.scoring import from_loss, loss, require_metric
from dse.algorithms.sensitivity import measure
from dse.core.errors import BudgetExhausted, ConfigError, DseError
from dse.core.evaluation import Evaluation
from dse.core.files import write_csv
from dse.core.registry import ALGORITHMS
from dse.core.space import SearchSpace
from dse.results.mpq import MPQ_NAME, mpq_document, write_mpq


class BisectionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    high: int | None = Field(None, ge=1, description="None: the largest choice every variable offers")
    low: int | None = Field(None, ge=1, description="None: the largest common choice <= high / 2")
    mode: Literal["front", "back", "auto"] = "auto"
    qerror_ratio: float = Field(0.5, ge=0, le=1)
    score: Literal["qerror", "accuracy"] = "qerror"


def precisions(space: SearchSpace, high: int | None, low: int | None) -> tuple[int, int]:
    """(high, low), both choices of every variable, since every configuration tried is in the space."""
    common = sorted(set.intersection(*(set(v.choices) for v in space.variables)))
    hint = f"common choices: {common}; give search_space choices that include it"
    if high is None:
        if not common:
            raise ConfigError("algorithm.options.high: the variables share no choice to use as high and low")
        high = common[-1]
    elif high not in common:
        raise ConfigError(f"algorithm.options.high: {high} is not a choice of every variable ({hint})")
    if low is None:
        below = [c for c in common if c <= high / 2]
        if not below:
            raise ConfigError(f"algorithm.options.low: no common choice is <= high/2 = {high / 2:g} ({hint})")
        low = below[-1]
    elif low not in common:
        raise ConfigError(f"algorithm.options.low: {low} is not a choice of every variable ({hint})")
    if low >= high:
        raise ConfigError(f"algorithm.options.low: {low} must be below high ({high})")
    return high, low


@ALGORITHMS.register("bisection")
class Bisection(Algorithm):
    Options = BisectionOptions
    exact_scores = True  # its score (qerror, or accuracy below the constraint) of every step

    def check(self, ctx: CheckContext) -> None:
        require_metric(ctx, self.options.score, "algorithm.options.score")

    def _run(self, ctx: SearchContext) -> None:
        o = self.options
        high, low = precisions(ctx.space, o.high, o.low)
        require_metric(ctx, o.score, "algorithm.options.score")
        depths, source = ctx.problem.depths(), ctx.problem.depth_source()
        if depths is None:
            raise ConfigError(
                f"algorithm.name: bisection needs layer depths, and {type(ctx.problem).__name__} "
                f"reports none (depth source: {source})"
            )
        missing = [n for n in ctx.space.names if n not in depths]
        if missing:
            raise DseError(f"bisection: the problem gives no depth for variable {missing[0]!r}")
        ctx.log(f"bisection: layer depths from {source}; high {high}, low {low}, score {o.score}")
        run = _Run(ctx, o, high, low, {n: depths[n] for n in ctx.space.names}, source)
        try:
            run.search()
        finally:
            run.write()


class _Run:
    """One bisection: its state, its steps (bisection.csv) and its answer (mpq.json)."""

    def __init__(
        self,
        ctx: SearchContext,
        o: BisectionOptions,
        high: int,
        low: int,
        depths: dict[str, int],
        source: str,
    ) -> None:
        self.ctx, self.o, self.high, self.low = ctx, o, high, low
        self.depths, self.source = depths, source
        self.levels = sorted(set(depths.values()))
        self.rows: list[dict[str, Any]] = []
        self.target: float | None = None  # as a loss (lower is better)
        self.front_high: bool | None = {"front": True, "back": False}.get(o.mode)
        self.best: tuple[dict[str, int], float, str] | None = None  # values, loss, why
        self.reasons: list[str] = []  # why each step's evaluation failed ("" where it did not)

    # -- configurations ------------------------------------------------------------------------
    def uniform(self, bits: int) -> dict[str, int]:
        """Every searched variable at `bits` (pinned ones at their value: mpq.json lists them)."""
        return self.ctx.space.complete(dict.fromkeys(self.ctx.space.names, bits))

    def with_high(self, n_high: int) -> dict[str, int]:
        """High precision on the `n_high` shallowest (front) or deepest (back) depth levels."""
        chosen = set(self.levels[:n_high] if self.front_high else self.levels[len(self.levels) - n_high :])
        high = {n: self.high if d in chosen else self.low for n, d in self.depths.items()}
        return self.ctx.space.complete(high)

    def cut(self, n_high: int) -> int:
        """The cut depth: front: depth <= cut is high; back: depth > cut is high."""
        k = n_high if self.front_high else len(self.levels) - n_high
        return self.levels[k - 1] if k > 0 else self.levels[0] - 1

    def measure(self, values: dict[str, int], phase: str, **info: Any) -> float:
        ev = self.ctx.evaluator.evaluate_values(
            values, label=f"bisection:{phase}", phase=phase, step=len(self.rows), **info
        )
        return self.record(values, ev, phase, **info)

    def record(self, values: dict[str, int], ev: Evaluation, phase: str, **info: Any) -> float:
        """One step of bisection.csv: its score as a loss."""
        step = len(self.rows)
        value = loss(ev, self.o.score)
        self.reasons.append(ev.reason)
        self.rows.append(
            {
                "step": step,
                "phase": phase,
                **{k: info.get(k, "") for k in ("variable", "cut", "n_high")},
                "high_side": "" if self.front_high is None else ("front" if self.front_high else "back"),
                "score": from_loss(value, self.o.score),
                "target": "" if self.target is None else from_loss(self.target, self.o.score),
                "meets": "" if self.target is None else value <= self.target,
                "eval_id": ev.eval_id,
                **values,
            }
        )
        return value

    # -- the search ----------------------------------------------------------------------------
    def search(self) -> None:
        o, score = self.o, self.o.score
        top = self.measure(self.uniform(self.high), "all-high")
        bottom = self.measure(self.uniform(self.low), "all-low")
        if not math.isfinite(top):
            self.best = (
                self.uniform(self.high),
                top,
                f"all-high misses the target: it failed ({self.reasons[0]})",
            )
            return
        if not math.isfinite(bottom):
            raise DseError(f"bisection: the all-{self.low} configuration failed; choose a higher low")
        self.target = top + o.qerror_ratio * abs(bottom - top)
        for row in self.rows:
            row["target"] = from_loss(self.target, score)
            row["meets"] = from_loss(row["score"], score) <= self.target
        self.ctx.log(f"bisection: target {score} {from_loss(self.target, score):.6g}")
        if bottom <= self.target:
            self.best = (self.uniform(self.low), bottom, "all-low meets the target")
            return
        if top > self.target:
            self.best = (self.uniform(self.high), top, "all-high misses the target")
            return
        self.best = (self.uniform(self.high), top, "all-high (the search was cut short)")
        if self.front_high is None:
            self.front_high = self.choose_side(top)
        lo, hi = 0, len(self.levels)  # invariant: lo high levels miss the target, hi meet it
        while hi - lo > 1:
            n_high = (lo + hi) // 2
            value = self.measure(self.with_high(n_high), "cut", cut=self.cut(n_high), n_high=n_high)
            if value <= self.target:
                hi = n_high
                self.best = (self.with_high(hi), value, f"cut at depth {self.cut(hi)} (search cut short)")
            else:
                lo = n_high
        self.best = (self.with_high(hi), self.best[1], f"cut at depth {self.cut(hi)}")

    def choose_side(self, top: float) -> bool:
        """auto: high precision goes to the half whose layers, each alone at low, lose more."""
        middle = (self.levels[0] + self.levels[-1]) // 2
        front = back = 0.0
        # the sensitivity table at `low` (with the default high, every variable's top choice, these
        # are the shared table's configurations): one batch
        high = self.uniform(self.high)
        table = measure(self.ctx, self.o.score, who="bisection", base=high, only=self.low, partial=True)
        for name, depth in self.depths.items():
            ev = table.evaluations.get((name, self.low))
            if ev is None:  # the budget ended the table
                raise BudgetExhausted("budget spent within the per-layer errors")
            err = self.record({**high, name: self.low}, ev, "layer-error", variable=name) - top
            if depth <= middle:
                front += err
            else:
                back += err
        side = front >= back
        self.ctx.log(
            f"bisection: per-layer errors sum to {front:.6g} in front, {back:.6g} behind: "
            f"high precision at the {'front' if side else 'back'}"
        )
        return side

    # -- outputs -------------------------------------------------------------------------------
    def write(self) -> None:
        run_dir = self.ctx.run_dir
        write_csv(run_dir / "bisection.csv", pd.DataFrame(self.rows))
        if self.best is None:
            return
        values, value, why = self.best
        eval_id = next((r["eval_id"] for r in self.rows if all(r[k] == v for k, v in values.items())), None)
        source = {
            "run_dir": str(run_dir),
            "algorithm": "bisection",
            "seed": self.ctx.seed,
            "eval_id": eval_id,
        }
        details = {
            "depth_source": self.source,
            "high": self.high,
            "low": self.low,
            "mode": self.o.mode,
            "high_side": None if self.front_high is None else ("front" if self.front_high else "back"),
            "score": self.o.score,
            "final_score": from_loss(value, self.o.score) if math.isfinite(value) else None,
            "target": None if self.target is None else from_loss(self.target, self.o.score),
            "qerror_ratio": self.o.qerror_ratio,
            "result": why,
            "cut_evaluations": sum(r["phase"] == "cut" for r in self.rows),
        }
        try:
            doc = mpq_document(self.ctx.problem, values, source, "bisection", details)
        except DseError as e:  # a problem without quantizers (pruning): the answer is in bisection.csv
            self.ctx.log(f"bisection: no mpq.json ({e})")
            return
        write_mpq(run_dir / MPQ_NAME, doc)
