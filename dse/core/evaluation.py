"""One evaluated configuration: the unit the journal stores and every output is derived from."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["search", "reference"]


@dataclass
class Evaluation:
    eval_id: int
    kind: Kind
    values: dict[str, int]  # variable -> chosen value (e.g. bits)
    metrics: dict[str, float]
    feasible: bool
    status: Literal["ok", "failed"] = "ok"
    reason: str = ""
    seconds: float = 0.0
    label: str = ""  # reference name ("uniform-4") or the algorithm's note on this point
    info: dict[str, Any] = field(default_factory=dict)  # algorithm extras (predicted accuracy, step, ...)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        # JSON has no NaN/inf: failed metrics are stored as null.
        d["metrics"] = {
            k: (v if v is not None and math.isfinite(v) else None) for k, v in self.metrics.items()
        }
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Evaluation:
        d = dict(d)
        d.pop("event", None)
        d["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in d["metrics"].items()}
        d["values"] = {k: int(v) for k, v in d["values"].items()}
        return cls(**d)
