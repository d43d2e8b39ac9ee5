"""`dse run CONFIG`: run or resume one search and summarise its front."""

from __future__ import annotations

import argparse

from dse.cli.common import add_config_overrides, config_from_args
from dse.core.objectives import Objectives
from dse.results.postrun import finish_run
from dse.results.sizes import SizeInfo, size_infos
from dse.run.runner import run_experiment


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) a search; outputs go to the run folder")
    add_config_overrides(p)
    p.add_argument("--fresh", action="store_true", help="move an existing run folder aside and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    result = run_experiment(cfg, fresh=args.fresh, progress=not args.quiet)
    s = result.summary
    print(f"run folder: {result.run_dir}")
    print(
        f"evaluations: {s['evaluations']} ({s['failed_evaluations']} failed, {s['replayed_from_journal']} "
        f"from the journal), wall {s['wall_seconds']:.1f}s; status: {s.get('status', '?')}"
    )
    constraint = result.setup.constraint
    base = s["baseline"].get(constraint.metric)
    if base is not None:
        print(f"reference {constraint.metric}: {base:.2f}; constraint: {constraint.describe()}")
    print(f"Pareto front: {s['pareto_size']} points, hypervolume {s['hypervolume']:.4f}")
    for metric, info in size_infos(s).items():
        if metric in result.setup.objectives.names and info.baselines:
            print(f"{metric} ratios are against: {info.baselines_text()}")
    for line in _front_lines(result.run_dir, result.setup.objectives, size_infos(s)):
        print("  " + line)
    for line in finish_run(result.run_dir, result.setup, cfg.output.plots):
        print(line)
    return 0


def _front_lines(
    run_dir, objectives: Objectives, sizes: dict[str, SizeInfo] | None = None, limit: int = 6
) -> list[str]:
    """A few front rows, spread over the size axis; size metrics also as "12.0 KiB, 10.7x vs float"."""
    import pandas as pd

    front = pd.read_csv(run_dir / "pareto.csv")
    if front.empty:
        return ["(no feasible configuration found)"]
    front = front.sort_values(objectives.axes()[0])
    rows = front.iloc[:: max(len(front) // limit, 1)] if len(front) > limit else front
    return [
        ", ".join(_value(o, r[o], sizes or {}) for o in objectives.names) + f"  (eval {r['eval_id']})"
        for _, r in rows.iterrows()
    ]


def _value(metric: str, value: float, sizes: dict[str, SizeInfo]) -> str:
    info = sizes.get(metric)
    return f"{metric}={value:.6g}" + (f" ({info.annotate(value)})" if info is not None else "")
