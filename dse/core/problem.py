"""The problem protocol: what a search needs to know and nothing about how it is computed.

Like pymoo's `Problem`, the public `evaluate` validates and a subclass fills the private
`_evaluate`. A problem owns its variables (each a list of integer choices, e.g. bit widths) and
the metrics it can compute; the experiment picks which metrics are objectives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from dse.core.errors import DseError

Sense = Literal["min", "max"]


@dataclass(frozen=True)
class Variable:
    name: str
    choices: tuple[int, ...]
    members: tuple[str, ...] = ()  # the problem's own units this variable drives (e.g. tied layers)

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"variable {self.name!r} has no choices")
        if list(self.choices) != sorted(set(self.choices)):
            raise ValueError(f"variable {self.name!r}: choices must be increasing and distinct")


class Problem(ABC):
    #: every metric the problem can compute, with its direction; subclasses override.
    METRICS: ClassVar[dict[str, Sense]] = {}
    #: metrics computed without running the model (cheap); algorithms may ask for these alone.
    COST_METRICS: ClassVar[frozenset[str]] = frozenset()

    variables: list[Variable]

    def evaluate(
        self, values: Mapping[str, int], metrics: Sequence[str] | None = None, *, within_space: bool = True
    ) -> dict[str, float]:
        """Compute `metrics` (default: all) for one configuration given as {variable: value}.

        `within_space=False` admits values outside the choices (reference points such as uniform 16 bits).
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
        return self._evaluate({n: int(values[n]) for n in names}, wanted)

    @abstractmethod
    def _evaluate(self, values: dict[str, int], metrics: list[str]) -> dict[str, float]: ...

    def reference(self) -> dict[str, float]:
        """Metrics of the unconstrained reference (the float model): constraints and plots use it."""
        return {}

    def bounds(self, metric: str) -> tuple[float, float] | None:
        """(best, worst) of a metric for normalisation where the problem knows them; None otherwise."""
        return None

    def depths(self) -> dict[str, int] | None:
        """Each variable's depth (longest path from the model input; a tie: max over its members).

        Bisection splits the model at a depth; None where the problem cannot tell.
        """
        return None

    def depth_source(self) -> str:
        """How `depths()` was found ("torch.fx", "module call order", "unknown"): runs report it."""
        return "unknown"

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

    def close(self) -> None:
        """Release resources (threads, files); called once when a run ends."""
