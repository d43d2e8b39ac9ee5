"""One evaluated configuration: the unit the journal stores and every output is derived from."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["search", "reference"]
#: ok: every metric computed; failed: the evaluation raised or gave a non-finite metric; rejected:
#: stopped early once the constrained metric was proven worse than the constraint (exact early
#: rejection): infeasible, that metric unknown (NaN), `bounds` holds what it could at best have reached
Status = Literal["ok", "failed", "rejected"]


@dataclass
class Evaluation:
    eval_id: int
    kind: Kind
    values: dict[str, int]  # variable -> chosen value (e.g. bits)
    metrics: dict[str, float]
    feasible: bool
    status: Status = "ok"
    reason: str = ""
    seconds: float = 0.0
    label: str = ""  # reference name ("uniform-4") or the algorithm's note on this point
    info: dict[str, Any] = field(default_factory=dict)  # algorithm extras (predicted accuracy, step, ...)
    bounds: dict[str, float] = field(default_factory=dict)  # rejected: metric -> the best it could reach

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        # JSON has no NaN/inf: failed metrics are stored as null.
        d["metrics"] = {
            k: (v if v is not None and math.isfinite(v) else None) for k, v in self.metrics.items()
        }
        if not self.bounds:  # only rejected evaluations carry bounds: other lines stay as they were
            del d["bounds"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Evaluation:
        d = dict(d)
        d.pop("event", None)
        d["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in d["metrics"].items()}
        d["values"] = {k: int(v) for k, v in d["values"].items()}
        d["bounds"] = {k: float(v) for k, v in d.get("bounds", {}).items()}
        return cls(**d)


def latest(evals: Iterable[Evaluation]) -> list[Evaluation]:
    """The journal's records less the superseded ones, in the order first seen.

    A configuration first rejected early and later evaluated exactly keeps its eval_id: its exact
    record, journaled after the rejected one, stands for it in every table.
    """
    out: dict[tuple[str, int], Evaluation] = {}
    for e in evals:
        out[(e.kind, e.eval_id)] = e
    return list(out.values())
