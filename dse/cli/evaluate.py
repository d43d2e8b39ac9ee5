"""`dse evaluate RUN_DIR --split test`: re-measure a run's Pareto configurations on held-out data.

Rebuilds the problem from the run's config.yaml (same baseline, calibration and splits) and refuses
when the rebuilt problem is not the one the run searched.
"""

from __future__ import annotations

import argparse

from dse.core.errors import DseError
from dse.results.heldout import SPLITS, has_held_out, write_held_out
from dse.results.rebuild import rebuild_setup
from dse.results.rundata import load_run
from dse.viz.run_plots import write_run_plots


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-evaluate a run's Pareto configurations on the held-out split")
    p.add_argument("run_dir", help="run folder")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    setup = rebuild_setup(run, progress=not args.quiet)
    if not has_held_out(setup.problem):
        raise DseError(f"problem {setup.cfg.experiment.problem!r} has no held-out split")
    frame = write_held_out(run, setup.problem, args.split)
    setup.problem.close()
    write_run_plots(run)
    print(held_out_lines(frame, run))
    return 0


def held_out_lines(frame, run) -> str:
    """The validation and held-out columns of pareto_test.csv, by size."""
    keep = [c for c in frame.columns if c not in run.variables]
    if frame.empty:
        return f"{run.run_dir / 'pareto_test.csv'}: the run has no feasible Pareto configuration"
    return f"{run.run_dir / 'pareto_test.csv'}:\n" + frame[keep].to_string(index=False)
