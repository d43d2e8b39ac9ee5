"""`dse report RUN_OR_COMPARE_DIR`: one self-contained report.html, viewable without a server."""

from __future__ import annotations

import argparse

from dse.viz.report import write_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained report.html for a run or compare folder")
    p.add_argument("folder", help="run folder or compare folder")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    print(write_report(args.folder))
    return 0
