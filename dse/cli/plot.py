"""`dse plot RUN_DIR`: redraw a run's plots from its files alone (no problem, no model)."""

from __future__ import annotations

import argparse

from dse.results.rundata import load_run
from dse.viz.run_plots import write_run_plots


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="regenerate a run folder's plots from its files")
    p.add_argument("run_dir", help="run folder")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    for path in write_run_plots(load_run(args.run_dir)):
        print(path)
    return 0
