"""Runs of one problem measured side by side: the check that they are comparable, then one table.

Every number is computed from the run folders alone, on the normalisation the problem fixed (each
run's summary.json carries it; they must agree), so a comparison can be rebuilt at any time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dse.compare.target import Target, resolve_target
from dse.core.errors import DseError
from dse.core.objectives import Objectives
from dse.indicators.normalization import REFERENCE_MARGIN, Normalization
from dse.indicators.quality import (
    best_value,
    evals_to_target,
    hv_curve,
    hypervolume_of,
    igd,
    igd_plus,
    scaled_front,
    union_front,
)
from dse.results.rundata import RunData

COLUMNS = [
    "algorithm",
    "seed",
    "evaluations",
    "hypervolume",
    "igd",
    "evals_to_target",
    "target",
    "best_feasible_size",
    "wall_seconds",
    "igd_plus",
    "pareto_size",
    "feasible_evaluations",
    "failed_evaluations",
    "evals_per_second",
    "measured_wall_seconds",
    "shared_evaluations",
    "run",
    "run_dir",
]
SUMMARISED = [
    "hypervolume",
    "igd",
    "igd_plus",
    "evals_to_target",
    "best_feasible_size",
    "evaluations",
    "wall_seconds",
    "evals_per_second",
]


@dataclass
class Comparison:
    runs: list[RunData]
    objectives: Objectives
    norm: Normalization
    size_name: str
    target: float
    target_rule: str
    target_metric: str
    reference_front: np.ndarray  # normalised, minimised
    reference_source: str
    table: pd.DataFrame  # comparison.csv
    curves: dict[str, np.ndarray]  # run name -> HV after each evaluation

    def summary(self) -> pd.DataFrame:
        return summarise(self.table)

    def reference_json(self) -> dict[str, Any]:
        best, worst = np.array(self.norm.best), np.array(self.norm.worst)
        own = (best + self.reference_front * (worst - best)) if self.reference_front.size else []
        return {
            "objectives": dict(zip(self.objectives.names, self.objectives.senses, strict=True)),
            "normalization": self.norm.to_json(),
            "reference_point_normalised": [REFERENCE_MARGIN] * len(self.objectives.names),
            "reference_front": {
                "source": self.reference_source,
                "normalised": np.asarray(self.reference_front).tolist(),
                "points": [dict(zip(self.objectives.names, map(float, row), strict=True)) for row in own],
            },
            "target": {"metric": self.target_metric, "value": _num(self.target), "rule": self.target_rule},
            "runs": [str(r.run_dir) for r in self.runs],
        }


def check_comparable(runs: Sequence[RunData], may_differ: Sequence[str] = ()) -> None:
    """Refuse runs of different problems, naming the first field that differs; `may_differ`: top-level
    fingerprint keys that variants of one problem change (compare.variants), e.g. "quantization"."""
    if not runs:
        raise DseError("no runs to compare")
    first = runs[0]

    def part(run: RunData, key: str) -> Any:
        value = run.summary.get(key)
        if key == "fingerprint" and isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in may_differ}
        return value

    for run in runs[1:]:
        for key in ("fingerprint", "objectives", "constraint", "normalization"):
            path = first_difference(part(first, key), part(run, key), key)
            if path is not None:
                a, b = _lookup(first.summary, path), _lookup(run.summary, path)
                raise DseError(
                    f"runs are not comparable: {path} differs ({first.run_dir}: {_short(a)}; "
                    f"{run.run_dir}: {_short(b)})"
                )


def compare(
    runs: Sequence[RunData], target: Target = None, factor: float = 1.05, may_differ: Sequence[str] = ()
) -> Comparison:
    """The comparison table; `target`: a size, a `compare.target` section, or None (best found x factor);
    `may_differ`: see `check_comparable`."""
    check_comparable(runs, may_differ)
    runs = list(runs)
    objectives, norm = runs[0].objectives, runs[0].norm
    size = runs[0].axes[0]
    sense = dict(zip(objectives.names, objectives.senses, strict=True)).get(size, "min")
    fronts = {r.name: scaled_front(r.evaluations, objectives, norm) for r in runs}
    reference, source = _reference_front(runs, fronts)
    bests = {r.name: best_value(r.evaluations, size, sense) for r in runs}
    metric, value, rule = resolve_target(runs, size, list(bests.values()), target, factor)
    rows, curves = [], {}
    for r in runs:
        curves[r.name] = hv_curve(r.evaluations, objectives, norm)
        F = fronts[r.name]
        shared = [e for e in (*r.evaluations, *r.references) if e.info.get("memo")]
        measured = float(r.summary.get("wall_seconds") or 0.0)
        wall = measured + sum(e.seconds for e in shared)  # as if the run had computed them itself
        n = len(r.evaluations)
        rows.append(
            {
                "algorithm": r.label,
                "seed": r.seed,
                "evaluations": n,
                "hypervolume": hypervolume_of(F),
                "igd": igd(F, reference),
                "evals_to_target": evals_to_target(r.evaluations, metric, value),
                "target": value,
                "best_feasible_size": bests[r.name],
                "wall_seconds": round(wall, 3),
                "igd_plus": igd_plus(F, reference),
                "pareto_size": len(F),
                "feasible_evaluations": sum(e.feasible for e in r.evaluations),
                "failed_evaluations": sum(e.status == "failed" for e in r.evaluations),
                "evals_per_second": n / wall if wall > 0 else math.nan,
                "measured_wall_seconds": measured,
                "shared_evaluations": len(shared),
                "run": r.name,
                "run_dir": str(r.run_dir),
            }
        )
    return Comparison(
        runs=runs,
        objectives=objectives,
        norm=norm,
        size_name=size,
        target=value,
        target_rule=rule,
        target_metric=metric,
        reference_front=reference,
        reference_source=source,
        table=pd.DataFrame(rows, columns=COLUMNS),
        curves=curves,
    )


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm (in order of appearance): runs, mean and sample std of each metric, target reached."""
    out = []
    for algorithm, group in table.groupby("algorithm", sort=False):
        row: dict[str, Any] = {"algorithm": algorithm, "runs": len(group)}
        for col in SUMMARISED:
            values = pd.to_numeric(group[col], errors="coerce")
            row[f"{col}_mean"] = values.mean()
            row[f"{col}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else 0.0
        row["target_reached"] = int(group["evals_to_target"].notna().sum())
        out.append(row)
    return pd.DataFrame(out)


def _reference_front(runs: Sequence[RunData], fronts: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The complete exhaustive run's front where there is one, else the union of every run's front."""
    for r in runs:
        space = r.summary.get("space_size")
        if r.algorithm == "exhaustive" and space is not None and len(r.evaluations) >= int(space):
            return fronts[r.name], f"exhaustive run {r.run_dir}"
    union = union_front(list(fronts.values()))
    if union.size == 0:
        return np.zeros((0, len(runs[0].objectives.names))), "none (no run found a feasible point)"
    return union, f"union of the fronts of {len(runs)} runs (non-dominated)"


def first_difference(a: Any, b: Any, path: str, ignore_added: bool = False) -> str | None:
    """Dotted path of the first difference; `ignore_added`: keys only `b` has (a newer schema) don't count."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a and not ignore_added]:
            if k not in a or k not in b:
                return f"{path}.{k}"
            sub = first_difference(a[k], b[k], f"{path}.{k}", ignore_added)
            if sub is not None:
                return sub
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            sub = first_difference(x, y, f"{path}[{i}]", ignore_added)
            if sub is not None:
                return sub
        return None
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, int):
        return None if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else path
    return None if a == b else path


def _lookup(data: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            data = data[int(part[1:-1])] if isinstance(data, (list, tuple)) else None
        else:
            data = data.get(part, "<absent>") if isinstance(data, dict) else None
    return data


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def formatted_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """comparison_summary.csv as 'mean ± std' strings, for the terminal and the report."""

    def pm(row: pd.Series, col: str, fmt: str) -> str:
        m, s = row[f"{col}_mean"], row[f"{col}_std"]
        if not isinstance(m, (int, float)) or not math.isfinite(m):
            return "–"
        return f"{m:{fmt}} ± {s:{fmt}}" if isinstance(s, (int, float)) and math.isfinite(s) else f"{m:{fmt}}"

    rows = []
    for _, r in summary.iterrows():
        rows.append(
            {
                "algorithm": r["algorithm"],
                "runs": int(r["runs"]),
                "hypervolume": pm(r, "hypervolume", ".4f"),
                "IGD": pm(r, "igd", ".4f"),
                "IGD+": pm(r, "igd_plus", ".4f"),
                "evals to target": pm(r, "evals_to_target", ".1f")
                + f" ({int(r['target_reached'])}/{int(r['runs'])})",
                "best feasible size": pm(r, "best_feasible_size", ".4g"),
                "wall s": pm(r, "wall_seconds", ".1f"),
                "evals/s": pm(r, "evals_per_second", ".2f"),
            }
        )
    return pd.DataFrame(rows)
