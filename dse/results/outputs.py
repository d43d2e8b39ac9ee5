"""The run folder's derived files: evaluations.csv, pareto.csv, uniform.csv, summary.json, pareto.png.

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
from dse.results.tables import evaluations_frame
from dse.viz.front import draw_front, front_plot_data

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
    names = setup.space.names
    metrics = _metric_names(evals, references)
    front = pareto_front(evals, objectives)

    write_csv(run_dir / "evaluations.csv", evaluations_frame(evals, names, metrics))
    write_csv(run_dir / "pareto.csv", evaluations_frame(front, names, metrics))
    uniform = uniform_references(references)
    table = evaluations_frame(uniform, names, metrics)
    if len(table):
        table.insert(1, "bits", [next(iter(e.values.values())) for e in uniform])
        table = table.drop(columns=list(names))
    write_csv(run_dir / "uniform.csv", table)

    baseline = setup.problem.reference()
    summary = {
        "status": info.status,
        **({"error": info.error} if info.error else {}),
        "experiment": cfg.experiment.name,
        "problem": cfg.experiment.problem,
        "algorithm": cfg.algorithm.name,
        "seed": cfg.experiment.seed,
        "budget": cfg.algorithm.budget,
        "evaluations": len(evals),
        "failed_evaluations": sum(not e.ok for e in evals),
        "feasible_evaluations": sum(e.feasible for e in evals),
        "replayed_from_journal": info.replayed,
        "baseline_accuracy": baseline.get("accuracy"),
        "baseline": baseline,
        "accuracy_threshold": setup.constraint.threshold,
        "objectives": {n: s for n, s in zip(objectives.names, objectives.senses, strict=True)},
        "pareto_size": len(front),
        "hypervolume": hypervolume(evals, objectives, setup.norm),
        "reference_point": setup.norm.reference_point(),
        "normalization": setup.norm.to_json(),
        "variables": len(names),
        "space_size": setup.space.size(),
        "wall_seconds": round(info.wall_seconds, 3),
        "evaluation_seconds": round(sum(e.seconds for e in evals), 3),
        "fingerprint": setup.problem.fingerprint(),
    }
    write_json(run_dir / "summary.json", summary)
    if cfg.output.plots:
        data = front_plot_data(
            evals, front, uniform, objectives, baseline.get("accuracy"), setup.constraint.threshold
        )
        title = (
            f"{cfg.experiment.name} · {cfg.algorithm.name} · seed {cfg.experiment.seed} · {len(evals)} evals"
        )
        draw_front(data, run_dir / "pareto.png", title)
    return summary


def uniform_references(references: Sequence[Evaluation]) -> list[Evaluation]:
    """Reference evaluations with every variable at the same value, by that value."""
    uniform = [e for e in references if len(set(e.values.values())) == 1]
    return sorted(uniform, key=lambda e: next(iter(e.values.values())))


def _metric_names(*groups: Sequence[Evaluation]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for e in group:
            seen.update(dict.fromkeys(e.metrics))
    return list(seen)
