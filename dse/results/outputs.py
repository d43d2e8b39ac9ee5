"""The run folder's derived tables: evaluations.csv, pareto.csv, references.csv, summary.json.

All of them are rebuilt from journal records and written atomically, so they can be regenerated at
any time and a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.core.evaluation import Evaluation
from dse.core.files import write_csv, write_json
from dse.indicators.pareto import pareto_front
from dse.indicators.quality import hypervolume
from dse.results.sizes import problem_sizes
from dse.results.tables import evaluations_frame

REFERENCES_CSV = "references.csv"
#: label of the all-highest configuration, evaluated first by every run
ALL_HIGH = "all-high"

if TYPE_CHECKING:
    from dse.core.config import ExperimentConfig
    from dse.run.setup import Setup


@dataclass
class RunInfo:
    cfg: ExperimentConfig
    setup: Setup
    run_dir: Path
    wall_seconds: float = 0.0
    replayed: int = 0
    status: str = "finished"  # budget_spent, finished, interrupted or error
    error: str = ""


def write_run_outputs(
    info: RunInfo, evals: Sequence[Evaluation], references: Sequence[Evaluation]
) -> dict[str, Any]:
    setup, cfg, run_dir = info.setup, info.cfg, info.run_dir
    objectives = setup.objectives
    names = setup.space.all_names  # a column for every variable, pinned ones at their value
    metrics = _metric_names(evals, references)
    front = pareto_front(evals, objectives)

    write_csv(run_dir / "evaluations.csv", evaluations_frame(evals, names, metrics))
    write_csv(run_dir / "pareto.csv", evaluations_frame(front, names, metrics))
    labels = list(setup.problem.reference_configurations())
    shown = reference_points(references, labels)
    table = evaluations_frame(shown, [], metrics)
    if len(table):
        table.insert(1, "reference", [e.label for e in shown])
    write_csv(run_dir / REFERENCES_CSV, table)

    baseline = setup.problem.reference()
    summary = {
        "status": info.status,
        **({"error": info.error} if info.error else {}),
        "experiment": cfg.experiment.name,
        "problem": cfg.experiment.problem,
        "algorithm": cfg.algorithm.name,
        **({"label": cfg.algorithm.label} if cfg.algorithm.label else {}),
        "seed": cfg.experiment.seed,
        "budget": cfg.algorithm.budget,
        "evaluations": len(evals),
        "failed_evaluations": sum(e.status == "failed" for e in evals),
        # stopped early, proven to miss the constraint (constraints.early_reject): infeasible, metric unknown
        "rejected_evaluations": sum(e.rejected for e in evals),
        "feasible_evaluations": sum(e.feasible for e in evals),
        "replayed_from_journal": info.replayed,
        # the sensitivity table's share of the budget (ilp, greedy, bisection, seeded MOEAs)
        "sensitivity_evaluations": sum(e.label == "sensitivity" for e in evals),
        "baseline": baseline,
        "sizes": {m: info.to_json() for m, info in problem_sizes(setup.problem).items()},
        "constraint": setup.constraint.to_json(),
        "references": labels,
        "objectives": {n: s for n, s in zip(objectives.names, objectives.senses, strict=True)},
        "pareto_size": len(front),
        "hypervolume": hypervolume(evals, objectives, setup.norm),
        "reference_point": setup.norm.reference_point(),
        "normalization": setup.norm.to_json(),
        "variables": len(names),
        "pinned": setup.space.pinned,  # variables held at one value (search_space.pin_cost_free)
        "space_size": setup.space.size(),
        "wall_seconds": round(info.wall_seconds, 3),
        "evaluation_seconds": round(sum(e.seconds for e in evals), 3),
        "fingerprint": setup.problem.fingerprint(),
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def reference_points(references: Sequence[Evaluation], labels: Sequence[str]) -> list[Evaluation]:
    """The problem's reference configurations (plotted and tabled beside the front), in its order.

    `labels` is the problem's `reference_configurations()` order; the all-highest check is one too.
    Other reference evaluations (an algorithm's probes, e.g. bisection's per-layer errors) are not.
    """
    order = {label: i for i, label in enumerate([*labels, ALL_HIGH])}
    return sorted((e for e in references if e.label in order), key=lambda e: order[e.label])


def _metric_names(*groups: Sequence[Evaluation]) -> list[str]:
    """Every metric, in the order the problem gives them: successful evaluations first (a rejected or
    failed one lists its metrics in another order), so the columns do not depend on which came first."""
    seen: dict[str, None] = {}
    for e in sorted((e for group in groups for e in group), key=lambda e: not e.ok):  # stable
        seen.update(dict.fromkeys(e.metrics))
    return list(seen)
