"""Choose one configuration from a run's front by a rule a deployment can state, and write it down.

`--max-drop D`: the smallest Pareto configuration within D points of the float accuracy (on
validation, where the search measured it). `--max-size N` alone: the most accurate one of size <= N
(the smallest one would be a poor reading of "fits in N"). Both: the smallest meeting both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.core.files import write_json
from dse.results.heldout import HELD_OUT_CSV, load_held_out, validation_columns
from dse.results.rundata import RunData

MPQ_NAME = "mpq.json"
MPQ_FALLBACK = "mpq-pick.json"  # where an algorithm (bisection) already wrote its own mpq.json
MPQ_FORMAT = (
    "dse-mpq/1: 'bits' maps each searched variable of the run to its bit width. In the layer-wise "
    "quantization problem a variable is 'w:<module>' (weight quantizer of that module), 'a:<module>' "
    "(activation quantizer) or the name of a tie (search_space.ties) that sets all its members; "
    "quantizers not searched keep the config's quantization.weight_bits / activation_bits. 'layers' "
    "lists the same as [{name, bits}]."
)


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


def default_path(run: RunData) -> Path:
    """RUN_DIR/mpq.json, unless an algorithm wrote its own answer there (kept: then mpq-pick.json)."""
    path = run.run_dir / MPQ_NAME
    if path.exists():
        try:
            ours = str(json.loads(path.read_text()).get("format", "")).startswith("dse-mpq/")
        except (ValueError, AttributeError):
            ours = False
        if not ours:
            return run.run_dir / MPQ_FALLBACK
    return path


def write_mpq(run: RunData, choice: Pick, path: Path | None = None) -> Path:
    path = Path(path) if path is not None else default_path(run)
    ev = choice.evaluation
    data: dict[str, Any] = {
        "format": MPQ_FORMAT,
        "bits": dict(ev.values),
        "layers": [{"name": k, "bits": v} for k, v in ev.values.items()],
        "rule": choice.rule,
        "validation": {k: v for k, v in ev.metrics.items() if math.isfinite(v)},
        "held_out": choice.held_out or None,
        "baseline": run.baseline,
        "source": {
            "run_dir": str(run.run_dir),
            "experiment": run.summary.get("experiment"),
            "algorithm": run.algorithm,
            "seed": run.seed,
            "eval_id": ev.eval_id,
        },
    }
    write_json(path, data)
    return path


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
