"""`dse formats CONFIG`: every number format the problem offers x bit widths 2-8, side by side: the
weight quantization error summed over layers and the accuracy with every weight in that format at
those bits (the problem's `format_survey` hook builds once and measures; this prints)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dse.cli.common import add_set_argument
from dse.core.config import load_config
from dse.core.errors import DseError
from dse.core.files import write_csv
from dse.core.registry import PROBLEMS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("formats", help="compare number formats x bits on one model (weight MSE, accuracy)")
    p.add_argument("config", help="experiment YAML file")
    add_set_argument(p)
    p.add_argument("--bits", default="2-8", help="bit widths: 'lo-hi' or a comma list (default 2-8)")
    p.add_argument("--formats", default=None, help="comma list (default: every format the problem knows)")
    p.add_argument("--csv", default=None, help="also write the table (long form) to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=main)


def parse_bits(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = (int(t) for t in text.split("-", 1))
            bits = list(range(lo, hi + 1))
        else:
            bits = [int(t) for t in text.split(",")]
    except ValueError:
        raise DseError(f"--bits: expected 'lo-hi' or a comma list of integers, got {text!r}") from None
    if not bits or any(not 1 <= b <= 32 for b in bits):
        raise DseError(f"--bits: bit widths must be in 1-32, got {text!r}")
    return bits


def main(args: argparse.Namespace) -> int:
    bits = parse_bits(args.bits)
    cfg = load_config(args.config, sets=args.sets)
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    if not hasattr(problem_cls, "format_survey"):
        raise DseError(f"problem {cfg.experiment.problem!r} has no number formats to compare")
    formats = args.formats.split(",") if args.formats else None
    rows = problem_cls.format_survey(cfg, formats, bits, progress=not args.quiet)
    table = pd.DataFrame(rows)
    if args.csv:
        path = Path(args.csv)
        if not path.parent.is_dir():
            raise DseError(f"--csv: folder {path.parent} does not exist")
        write_csv(path, table)
    print(render(table))
    if args.csv:
        print(f"wrote {args.csv}")
    return 0


def render(table: pd.DataFrame) -> str:
    """Two pivots, formats down and bits across: the weight MSE, then the accuracy."""
    mse = table.pivot(index="format", columns="bits", values="weight_mse")
    acc = table.pivot(index="format", columns="bits", values="accuracy")
    order = list(dict.fromkeys(table["format"]))
    parts = [
        "weight MSE, summed over layers (lower is better):",
        mse.loc[order].to_string(float_format=lambda v: f"{v:.3e}", na_rep="-"),
        "",
        "accuracy % with every weight at these bits, activations as configured (higher is better):",
        acc.loc[order].to_string(float_format=lambda v: f"{v:.2f}", na_rep="-"),
    ]
    return "\n".join(parts)
