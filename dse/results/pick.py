"""Choose one configuration from a run's front by a rule a deployment can state, and write it down.

`--max-drop D`: the smallest Pareto configuration within D points of the float accuracy (on
validation, where the search measured it). `--max-size N` alone: the most accurate one of size <= N
(the smallest one would be a poor reading of "fits in N"). Both: the smallest meeting both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.core.problem import Problem
from dse.results.heldout import HELD_OUT_CSV, load_held_out, validation_columns
from dse.results.mpq import MPQ_NAME, mpq_document, write_mpq
from dse.results.rundata import RunData


@dataclass
class Pick:
    evaluation: Evaluation
    rule: dict[str, float | None]
    held_out: dict[str, float]


def pick(run: RunData, max_drop: float | None = None, max_size: float | None = None) -> Pick:
    if max_drop is None and max_size is None:
        raise DseError("give --max-drop (accuracy points below the float model) or --max-size")
    size, acc = run.axes
    candidates = list(run.front)
    if max_drop is not None:
        base = run.baseline.get(acc)
        if base is None:
            raise DseError(f"{run.run_dir / 'summary.json'}: no float baseline {acc} to measure a drop from")
        candidates = [e for e in candidates if e.metrics[acc] >= base - max_drop - 1e-9]
    if max_size is not None:
        candidates = [e for e in candidates if e.metrics[size] <= max_size]
    if not candidates:
        raise DseError(
            f"no Pareto configuration of {run.run_dir} meets {_rule_text(max_drop, max_size, size)}"
        )
    if max_drop is not None:
        chosen = min(candidates, key=lambda e: (e.metrics[size], -e.metrics[acc], e.eval_id))
    else:
        chosen = min(candidates, key=lambda e: (-e.metrics[acc], e.metrics[size], e.eval_id))
    return Pick(chosen, {"max_accuracy_drop": max_drop, "max_size": max_size}, _held_out(run, chosen))


def by_eval_id(run: RunData, eval_id: int) -> Evaluation:
    """The run's search evaluation `eval_id`; it must have finished (status ok)."""
    ev = next((e for e in run.evaluations if e.eval_id == eval_id), None)
    if ev is None:
        last = run.evaluations[-1].eval_id if run.evaluations else None
        known = f"0..{last}" if last is not None else "none"
        raise DseError(f"--eval-id: {run.run_dir} has no evaluation {eval_id} (eval ids: {known})")
    if ev.status != "ok":
        raise DseError(f"--eval-id: evaluation {eval_id} of {run.run_dir} did not finish ({ev.status})")
    return ev


def by_reference(run: RunData, label: str) -> Evaluation:
    """The run's reference configuration `label` (references.csv, e.g. "2-bit")."""
    ev = next((e for e in run.references if e.label == label), None)
    if ev is None:
        known = ", ".join(e.label for e in run.references) or "none"
        raise DseError(f"--reference: {run.run_dir} has no reference {label!r} (known: {known})")
    return ev


def point_key(ev: Evaluation) -> str:
    """A chosen configuration's folder name: its eval_id, or a reference's label (ids of search and
    reference evaluations overlap)."""
    return str(ev.eval_id) if ev.kind == "search" else ev.label


def point_name(ev: Evaluation) -> str:
    return f"eval {ev.eval_id}" if ev.kind == "search" else f"reference {ev.label}"


def run_source(run: RunData, ev: Evaluation) -> dict[str, Any]:
    """Where a configuration came from: mpq.json's and finetune.json's `source`."""
    out = {
        "run_dir": str(run.run_dir),
        "experiment": run.summary.get("experiment"),
        "algorithm": run.algorithm,
        "seed": run.seed,
        "eval_id": ev.eval_id if ev.kind == "search" else None,
    }
    if ev.kind != "search":
        out["reference"] = ev.label
    return out


def write_pick(run: RunData, choice: Pick, problem: Problem, path: Path | None = None) -> Path:
    """The chosen configuration as mpq.json (default RUN_DIR/mpq.json; it replaces an algorithm's)."""
    ev = choice.evaluation
    details = {
        "rule": choice.rule,
        "validation": {k: v for k, v in ev.metrics.items() if math.isfinite(v)},
        "held_out": choice.held_out or None,
        "baseline": run.baseline,
    }
    doc = mpq_document(problem, ev.values, run_source(run, ev), "pick", details)
    return write_mpq(Path(path) if path is not None else run.run_dir / MPQ_NAME, doc)


def _held_out(run: RunData, ev: Evaluation) -> dict[str, float]:
    held = load_held_out(run.run_dir)
    if held is None:
        return {}
    frame, _ = held
    rows = frame[frame["eval_id"] == ev.eval_id]
    if rows.empty:
        return {}
    skip = {"eval_id", *run.variables, *validation_columns(run)}
    try:
        return {c: float(rows.iloc[0][c]) for c in frame.columns if c not in skip}
    except (TypeError, ValueError):
        raise DseError(f"{run.run_dir / HELD_OUT_CSV}: corrupt (a non-numeric held-out value)") from None


def _rule_text(max_drop: float | None, max_size: float | None, size: str) -> str:
    parts = []
    if max_drop is not None:
        parts.append(f"an accuracy drop <= {max_drop:g}")
    if max_size is not None:
        parts.append(f"{size} <= {max_size:g}")
    return " and ".join(parts)


def chosen(
    run: RunData,
    eval_id: int | None = None,
    max_drop: float | None = None,
    max_size: float | None = None,
    front: bool = False,
    reference: str | None = None,
) -> list[Evaluation]:
    """The configurations `finetune` / `export` act on: one by id, reference label or rule, or the
    whole feasible front."""
    for flag, value in (("--max-drop", max_drop), ("--max-size", max_size)):
        if value is not None and value < 0:
            raise DseError(f"{flag}: must be >= 0, got {value:g}")
    if eval_id is not None:
        return [by_eval_id(run, eval_id)]
    if reference is not None:
        return [by_reference(run, reference)]
    if front:
        size = run.axes[0]
        if not run.front:
            raise DseError(f"{run.run_dir}: the run has no feasible Pareto configuration")
        return sorted(run.front, key=lambda e: (e.metrics[size], e.eval_id))
    return [pick(run, max_drop, max_size).evaluation]
