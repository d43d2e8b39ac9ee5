"""In-memory run folders (RunData) with hand-made evaluations, for comparison and plot tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives
from dse.indicators.normalization import Normalization
from dse.results.rundata import RunData

OBJ = Objectives(("accuracy", "weight_bits"), ("max", "min"))
# normalised = ((100 - accuracy) / 10, weight_bits / 100)
NORM = Normalization(("accuracy", "weight_bits"), (100.0, 0.0), (90.0, 100.0))


def E(
    i: int, acc: float, size: float, feasible: bool = True, values: dict[str, int] | None = None, **info: Any
):
    return Evaluation(
        i, "search", values or {"a": 2, "b": 4}, {"accuracy": acc, "weight_bits": size}, feasible, info=info
    )


def run_data(name: str, algorithm: str, seed: int, evals: list[Evaluation], **summary: Any) -> RunData:
    base: dict[str, Any] = {
        "experiment": "hand",
        "algorithm": algorithm,
        "seed": seed,
        "objectives": {"accuracy": "max", "weight_bits": "min"},
        "normalization": NORM.to_json(),
        "evaluations": len(evals),
        "fingerprint": {"variables": {"a": [2, 4, 8], "b": [2, 4, 8]}},
        "constraint": {"metric": "accuracy", "sense": "max", "threshold": 90.0},
        "baseline": {"accuracy": 100.0},
        "space_size": 9,
        "wall_seconds": 2.0,
    }
    base.update(summary)
    return RunData(Path(name), "", {}, base, evals, [], OBJ, NORM)
