"""`dse compare CONFIG` (run every algorithm x seed of its `compare` section on one problem) or
`dse compare RUN_DIR RUN_DIR ... --out DIR` (measure finished runs of one problem)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dse.cli.common import add_execution_overrides, add_set_argument, execution_overrides
from dse.compare.comparison import formatted_summary
from dse.compare.runs import compare_dir, compare_runs, run_config
from dse.core.config import load_config
from dse.core.errors import DseError
from dse.results.rundata import load_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare algorithms: run a config's algorithm x seed grid, or measure finished runs",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="CONFIG_OR_RUN_DIR", help="one experiment YAML, or run folders"
    )
    p.add_argument(
        "--out", help="compare folder (default results/<experiment>/compare; required for run folders)"
    )
    p.add_argument(
        "--algorithms", nargs="+", help="overrides compare.algorithms ('all' = every registered one)"
    )
    p.add_argument("--seeds", nargs="+", type=int, help="overrides compare.seeds")
    add_set_argument(p)
    p.add_argument("--budget", type=int, help="evaluations per run (overrides compare.budget)")
    p.add_argument(
        "--target",
        type=float,
        help="size for evaluations-to-target (default: compare.target of a config, else best found x 1.05)",
    )
    add_execution_overrides(p)
    p.add_argument("--fresh", action="store_true", help="move existing run folders aside and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.inputs]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise DseError(f"{missing[0]}: not found")
    if len(paths) == 1 and paths[0].is_file():
        overrides: dict[str, Any] = {
            "compare.algorithms": args.algorithms,
            "compare.seeds": args.seeds,
            "compare.budget": args.budget,
            **execution_overrides(args),
        }
        cfg = load_config(paths[0], overrides, sets=args.sets)
        out = Path(args.out) if args.out else compare_dir(cfg)
        result = run_config(cfg, out, fresh=args.fresh, progress=not args.quiet, target=args.target)
    else:
        files = [p for p in paths if not p.is_dir()]
        if files:
            raise DseError(f"{files[0]}: give one config file, or run folders only")
        if not args.out:
            raise DseError("--out: comparing run folders needs a compare folder to write")
        for flag in ("algorithms", "seeds", "budget", "device", "workers", "backend"):
            if getattr(args, flag) is not None:
                raise DseError(f"--{flag}: only for a config (these runs are finished)")
        if args.sets:
            raise DseError(f"--set {args.sets[0]}: only for a config (these runs are finished)")
        result = compare_runs([load_run(p) for p in paths], Path(args.out), target=args.target)
    c = result.comparison
    print(f"compare folder: {result.out_dir}")
    target = f"{c.target_metric} <= {c.target:.6g} ({c.target_rule})"
    print(f"reference front: {c.reference_source}; target: {target}")
    print(formatted_summary(c.summary()).to_string(index=False))
    for s in result.skipped:
        print(f"skipped {s['algorithm']} seed {s['seed']}: {s['reason']}")
    return 0
