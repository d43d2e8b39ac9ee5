"""Journal records -> the run folder's tables (pandas frames)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dse.core.evaluation import Evaluation


def evaluations_frame(
    evals: Sequence[Evaluation], variables: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """One row per evaluation: id, each variable's value, each metric, feasibility, status, extras.

    A rejected evaluation (stopped early) has its constrained metric NaN and `<metric>_bound`: the best
    value it could have reached.
    """
    rows = []
    for e in evals:
        row: dict[str, object] = {"eval_id": e.eval_id}
        row.update({v: e.values[v] for v in variables})
        row.update({m: e.metrics.get(m, float("nan")) for m in metrics})
        row.update(feasible=e.feasible, status=e.status, reason=e.reason, label=e.label, seconds=e.seconds)
        row.update({f"{m}_bound": b for m, b in e.bounds.items()})
        row.update({k: v for k, v in e.info.items() if isinstance(v, (int, float, str, bool))})
        rows.append(row)
    columns = ["eval_id", *variables, *metrics, "feasible", "status", "reason", "label", "seconds"]
    frame = pd.DataFrame(rows)
    return frame if rows else pd.DataFrame(columns=columns)
