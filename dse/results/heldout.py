"""Held-out re-evaluation: the search picked its front on validation data, so that front is biased
toward it; re-measuring each Pareto configuration on data the search never saw shows by how much.

Writes `pareto_test.csv` (one row per Pareto configuration: its values, its validation objectives,
its held-out metrics) and `heldout.json` (the split and the float baseline on it). Both are derived
files: `dse evaluate RUN_DIR` rebuilds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dse.core.errors import DseError
from dse.core.files import write_csv, write_json
from dse.core.problem import Problem
from dse.results.rundata import RunData, read_csv, read_json

HELD_OUT_CSV = "pareto_test.csv"
HELD_OUT_JSON = "heldout.json"
SPLITS = ("test",)


def has_held_out(problem: Problem) -> bool:
    return type(problem).evaluate_held_out is not Problem.evaluate_held_out


def validation_columns(run: RunData) -> list[str]:
    """The validation metrics pareto_test.csv repeats beside the held-out ones: objectives and plot axes."""
    return list(dict.fromkeys([*run.objectives.names, *run.axes]))


def held_out_frame(run: RunData, problem: Problem) -> pd.DataFrame:
    rows = []
    for ev in sorted(run.front, key=lambda e: (e.metrics[run.axes[0]], e.eval_id)):
        held = problem.evaluate_held_out(dict(ev.values))
        row: dict[str, Any] = {"eval_id": ev.eval_id, **ev.values}
        row.update({m: ev.metrics.get(m) for m in validation_columns(run)})
        row.update({k: float(v) for k, v in held.items()})
        rows.append(row)
    columns = ["eval_id", *run.variables, *validation_columns(run)]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def write_held_out(run: RunData, problem: Problem, split: str = "test") -> pd.DataFrame:
    """Re-evaluate the run's front on the held-out split; write pareto_test.csv and heldout.json."""
    if split not in SPLITS:
        raise DseError(f"--split: unknown split {split!r}; known: {', '.join(SPLITS)}")
    frame = held_out_frame(run, problem)
    fixed = {"eval_id", *run.variables, *validation_columns(run)}
    metrics = [c for c in frame.columns if c not in fixed]
    reference = problem.reference()
    write_csv(run.run_dir / HELD_OUT_CSV, frame)
    write_json(
        run.run_dir / HELD_OUT_JSON,
        {
            "split": split,
            "metrics": metrics,
            "baseline": {m: reference[m] for m in metrics if m in reference},
            "validation_baseline": {m: reference[m] for m in validation_columns(run) if m in reference},
            "configurations": len(frame),
        },
    )
    return frame


def load_held_out(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """(pareto_test.csv, heldout.json) of a run folder; None where it has not been re-evaluated."""
    run_dir = Path(run_dir)
    if not (run_dir / HELD_OUT_CSV).exists():
        return None
    frame = read_csv(run_dir / HELD_OUT_CSV, required=("eval_id",))
    meta = read_json(run_dir / HELD_OUT_JSON) if (run_dir / HELD_OUT_JSON).exists() else {}
    if not isinstance(meta, dict):
        raise DseError(f"{run_dir / HELD_OUT_JSON}: corrupt (not a JSON object)")
    return frame, meta


def held_out_pairs(metrics: list[str], split: str = "test") -> dict[str, str]:
    """held-out metric -> the validation metric it re-measures ("test_accuracy" -> "accuracy")."""
    prefix = f"{split}_"
    return {m: m[len(prefix) :] for m in metrics if m.startswith(prefix)}
