"""`dse run CONFIG`: run or resume one search and summarise its front."""

from __future__ import annotations

import argparse

from dse.cli.common import add_config_overrides, config_from_args
from dse.results.postrun import finish_run
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
    base = s["baseline_accuracy"]
    if base is not None:
        threshold = s["accuracy_threshold"]
        limit = "none" if threshold is None else f"{threshold:.2f}"
        print(f"float baseline accuracy: {base:.2f}; accuracy threshold: {limit}")
    print(f"Pareto front: {s['pareto_size']} points, hypervolume {s['hypervolume']:.4f}")
    for line in _front_lines(result.run_dir, list(s["objectives"])):
        print("  " + line)
    for line in finish_run(result.run_dir, result.setup, cfg.output.plots):
        print(line)
    return 0


def _front_lines(run_dir, objectives: list[str], limit: int = 6) -> list[str]:
    import pandas as pd

    front = pd.read_csv(run_dir / "pareto.csv")
    if front.empty:
        return ["(no feasible configuration found)"]
    size = next((o for o in objectives if o != "accuracy"), objectives[0])
    front = front.sort_values(size)
    rows = front.iloc[:: max(len(front) // limit, 1)] if len(front) > limit else front
    return [
        ", ".join(f"{o}={r[o]:.6g}" for o in objectives) + f"  (eval {r['eval_id']})"
        for _, r in rows.iterrows()
    ]
