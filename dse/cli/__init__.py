"""Command line: `python -m dse COMMAND ...`. Each command lives in its own module with
`add_parser(subparsers)` and `main(args) -> int`; user errors exit 2 with one line on stderr."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from typing import Any

from dse.core.errors import DseError

COMMANDS = [
    "run",
    "validate",
    "bench",
    "compare",
    "plot",
    "report",
    "evaluate",
    "pick",
    "finetune",
    "export",
    "formats",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dse", description="Find per-layer bit widths: search, compare, report."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"dse.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    old_term = _sigterm_as_ctrl_c()
    try:
        return int(args.handler(args) or 0)
    except DseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: finished evaluations are in the run journal; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _sigterm_as_ctrl_c() -> Any:
    """`kill PID` (and batch schedulers ending a job) stop as cleanly as Ctrl-C: outputs get written."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop) or signal.SIG_DFL
