"""The problem contract: everything the framework relies on, declared in one place.

Like pymoo's `Problem`, the public `evaluate` validates and a subclass fills the private
`_evaluate`. A problem owns its variables (each a list of integer choices, e.g. bit widths or
percent of weights kept) and the metrics it can compute; the experiment picks which metrics are
objectives and which one is constrained. Life cycle: `check_config` (cheap, before anything is
built, trained or written) -> `from_config` (builds the problem once) -> `reference_configurations`
(evaluated for free by every run) -> `evaluate` / `evaluate_many` (the search) -> `close`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dse.core.errors import DseError

if TYPE_CHECKING:
    from dse.core.config import ExperimentConfig

Sense = Literal["min", "max"]


class Rejected(Exception):  # noqa: N818 - an outcome, not an error
    """Raised by `Problem.evaluate` given `reject_worse_than`: `metric` is proven worse than its limit.

    `bound` is what the metric could at best still have reached (for a maximised metric, an upper
    bound of its value), itself worse than the limit; `metrics` holds what was computed anyway
    (e.g. the cost metrics); `detail` says how far the evaluation got ("64 of 629 samples").
    """

    def __init__(
        self, metric: str, bound: float, metrics: dict[str, float] | None = None, detail: str = ""
    ) -> None:
        super().__init__(f"{metric} at best {bound:.6g}" + (f" ({detail})" if detail else ""))
        self.metric, self.bound, self.detail = metric, float(bound), detail
        self.metrics = dict(metrics or {})


def worse(sense: Sense, value: float, limit: float) -> bool:
    """Whether `value` is strictly worse than `limit` for a metric of this sense."""
    return value < limit if sense == "max" else value > limit


@dataclass(frozen=True)
class Variable:
    """One searched integer. Its choices are ordered from the cheapest, least accurate to the
    costliest, most accurate (more bits, more weights kept): greedy lowers from the highest, ilp
    measures each choice against the all-highest configuration, bisection splits into high/low."""

    name: str
    choices: tuple[int, ...]
    members: tuple[str, ...] = ()  # the problem's own units this variable drives (e.g. tied layers)
    #: choices are labels, not an order (e.g. which number format): no "highest is most accurate",
    #: so such a variable is never pinned as cost-free; searches still treat its genes as integers
    categorical: bool = False

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"variable {self.name!r} has no choices")
        if list(self.choices) != sorted(set(self.choices)):
            raise ValueError(f"variable {self.name!r}: choices must be increasing and distinct")


class Problem(ABC):
    """Variables, metrics and their evaluation. Every variable's choices are ordered from the cheapest,
    least accurate to the costliest, most accurate; the all-highest configuration is the problem's
    most accurate one (a run whose all-highest configuration misses the constraint is refused)."""

    #: every metric the problem can compute, with its direction; subclasses override.
    METRICS: ClassVar[dict[str, Sense]] = {}
    #: metrics computed without running the model (cheap); algorithms may ask for these alone.
    COST_METRICS: ClassVar[frozenset[str]] = frozenset()
    #: metrics that are sizes, with their unit: "bits" or "bytes" (shown as KiB/MiB) or a count such
    #: as "weights" (shown as a number); `dse.results.sizes` formats them with compression ratios.
    SIZE_METRICS: ClassVar[dict[str, str]] = {}
    #: metrics whose evaluation can stop early once they are proven worse than a limit (exact early
    #: rejection: `evaluate(..., reject_worse_than=...)` raises `Rejected`); `_evaluate` then takes
    #: `reject_worse_than` as a keyword. Empty: the problem always computes everything.
    EARLY_REJECT: ClassVar[frozenset[str]] = frozenset()

    variables: list[Variable]

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: ExperimentConfig) -> None:
        """Cheap checks (names that must exist, files that must be there) before anything is built.

        `dse validate` and every run call it before `from_config`, so a refused run trains and
        writes nothing. Raise `DseError("field.path: message")`.
        """

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: ExperimentConfig, progress: bool = True) -> Problem:
        """Build the problem once (data, model, calibration); every evaluation reuses it."""

    def reference_configurations(self) -> dict[str, dict[str, int]]:
        """Labelled configurations every run evaluates for free: what a search must beat.

        Values may lie outside the choices. Default: every variable at each value all of them offer.
        """
        common = sorted(set.intersection(*(set(v.choices) for v in self.variables)))
        return {f"uniform-{c}": {v.name: c for v in self.variables} for c in common}

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self,
        values: Mapping[str, int],
        metrics: Sequence[str] | None = None,
        *,
        within_space: bool = True,
        reject_worse_than: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Compute `metrics` (default: all) for one configuration given as {variable: value}.

        `within_space=False` admits values outside the choices (reference points such as uniform 16 bits).
        `reject_worse_than` ({metric: limit}): where the problem can (`EARLY_REJECT`), it may stop as
        soon as the metric is proven strictly worse than its limit and raise `Rejected`; otherwise the
        metrics are exactly those of a full evaluation. Limits of other metrics are ignored.
        """
        names = [v.name for v in self.variables]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"configuration lacks variable {missing[0]!r}")
        for var in self.variables if within_space else ():
            if values[var.name] not in var.choices:
                raise ValueError(f"{var.name}={values[var.name]} is not one of {list(var.choices)}")
        wanted = list(self.METRICS) if metrics is None else list(metrics)
        unknown = [m for m in wanted if m not in self.METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(self.METRICS)}")
        chosen = {n: int(values[n]) for n in names}
        limits = {m: float(v) for m, v in (reject_worse_than or {}).items() if m in self.EARLY_REJECT}
        limits = {m: v for m, v in limits.items() if m in wanted}
        if not limits:
            return self._evaluate(chosen, wanted)
        try:
            return self._evaluate(chosen, wanted, reject_worse_than=limits)  # type: ignore[call-arg]
        except Rejected as r:  # a problem may only reject what it has proven
            if r.metric not in limits or not worse(self.METRICS[r.metric], r.bound, limits[r.metric]):
                raise RuntimeError(
                    f"{type(self).__name__} rejected {r.metric} at bound {r.bound!r}, which is not "
                    f"worse than its limit {limits.get(r.metric)!r}"
                ) from None
            raise

    def evaluate_many(
        self,
        configurations: Sequence[Mapping[str, int]],
        metrics: Sequence[str] | None = None,
        *,
        within_space: bool = True,
    ) -> list[dict[str, float]]:
        """`evaluate` for a batch, results in order. Override where a batch is cheaper than a loop."""
        return [self.evaluate(c, metrics, within_space=within_space) for c in configurations]

    @abstractmethod
    def _evaluate(self, values: dict[str, int], metrics: list[str]) -> dict[str, float]: ...

    def benchmark(
        self,
        candidates: list[dict[str, int]],
        repeats: int = 3,
        reject_worse_than: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Seconds of one evaluation against the problem's own unit of work, side by side (`dse bench`);
        with `reject_worse_than`, also what an early-rejected evaluation costs beside a full one."""
        raise DseError(f"{type(self).__name__} has no benchmark")

    def reference(self) -> dict[str, float]:
        """Metrics of the unconstrained reference (the float model): constraints and plots use it."""
        return {}

    def size_baselines(self, metric: str) -> dict[str, float]:
        """Sizes (in the metric's unit) that a size metric's compression ratios are taken against.

        E.g. {"float": every weight at 32 bits, "8-bit": every searched weight at 8 bits}: a value v
        is shown as "baseline / v" times smaller. Recorded in summary.json; empty = no ratios.
        """
        return {}

    def bounds(self, metric: str) -> tuple[float, float] | None:
        """(best, worst) of a metric for normalisation where the problem knows them; None otherwise.

        Cost metrics need none (the all-lowest and all-highest configurations give them); for the
        constrained metric the constraint's threshold replaces the worst.
        """
        return None

    def depths(self) -> dict[str, int] | None:
        """Each variable's depth (longest path from the model input; a tie: max over its members).

        Bisection splits the model at a depth; None where the problem cannot tell.
        """
        return None

    def depth_source(self) -> str:
        """How `depths()` was found ("torch.fx", "module call order", "unknown"): runs report it."""
        return "unknown"

    def notes(self) -> list[str]:
        """One-line notes a run prints as it starts (e.g. what the problem leaves out); none by default."""
        return []

    def initial_values(self) -> dict[str, int] | None:
        """A good start for greedy searches where the problem knows one; None = every variable highest.

        Values need not be choices: the caller clips them to the nearest choice at or above them.
        """
        return None

    def evaluate_held_out(self, values: dict[str, int]) -> dict[str, float]:
        """Metrics on data the search never saw ({"test_accuracy": ...}): the front is fit to validation."""
        raise DseError("problem has no held-out split")

    def fingerprint(self) -> dict[str, Any]:
        """Plain data that identifies the problem; runs with different fingerprints are not comparable."""
        return {"variables": {v.name: list(v.choices) for v in self.variables}}

    # -- from a front point to deployment (dse pick / finetune / export): optional ------------------
    @classmethod
    def check_rebuild(cls, cfg: ExperimentConfig) -> None:
        """Cheap checks before a finished run's problem is rebuilt (pick, finetune, export): what the
        run relied on (a trained baseline) must still be there, since rebuilding must not silently
        train a different one. Raise `DseError` naming what is gone."""

    def describe_quantizers(
        self, values: Mapping[str, int], checkpoint: Path | None = None
    ) -> dict[str, Any]:
        """The problem's part of `mpq.json` for one configuration: `default_quantization_dtype`,
        `default_granularity`, `layers` [{name, dtype, granularity, bits, ...}], `model`, `checkpoint`
        (docs/mpq.schema.json); `checkpoint`: fine-tuned weights whose quantizers to describe. Default:
        each variable one per-tensor integer quantizer at its value; a problem whose values are not bit
        widths raises `DseError`."""
        layers = [
            {"name": v.name, "dtype": f"int{values[v.name]}", "granularity": "layer", "bits": values[v.name]}
            for v in self.variables
        ]
        return {
            "default_quantization_dtype": "int8",
            "default_granularity": "layer",
            "layers": layers,
            "model": {"problem": type(self).__name__},
            "checkpoint": None,
        }

    def finetune(
        self, values: Mapping[str, int], out_dir: Path, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Train the configuration (quantization-aware), write its weights under `out_dir`, return the
        record `finetune.json` holds. `options`: command-line overrides (epochs, lr, progress)."""
        raise DseError(f"{type(self).__name__} cannot fine-tune a configuration")

    def export_onnx(
        self, values: Mapping[str, int], path: Path, checkpoint: Path | None = None
    ) -> dict[str, Any]:
        """Write the configuration as an ONNX file (`checkpoint`: fine-tuned weights to use instead of
        the run's) and return how it was checked (agreement with the problem's own model)."""
        raise DseError(f"{type(self).__name__} cannot export ONNX")

    def close(self) -> None:
        """Release resources (threads, files); called once when a run ends."""
