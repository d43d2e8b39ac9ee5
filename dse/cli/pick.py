"""`dse pick RUN_DIR --max-drop 0.5` / `--max-size N`: choose a configuration and write mpq.json.

The problem is rebuilt from the run folder (cached baseline, calibration: seconds) because mpq.json
states each quantizer's scale, which only the calibrated problem knows."""

from __future__ import annotations

import argparse

from dse.core.errors import DseError
from dse.results.pick import pick, write_pick
from dse.results.rebuild import rebuild_setup
from dse.results.rundata import load_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pick", help="choose a Pareto configuration by a rule and write it as mpq.json")
    p.add_argument("run_dir", help="run folder")
    p.add_argument("--max-drop", type=float, help="accuracy points below the float model (validation)")
    p.add_argument("--max-size", type=float, help="largest size (the size objective, e.g. weight_bits)")
    p.add_argument("--out", help="file to write (default RUN_DIR/mpq.json)")
    p.add_argument("--quiet", action="store_true", help="no progress output while the problem is rebuilt")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    for flag in ("max_drop", "max_size"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise DseError(f"--{flag.replace('_', '-')}: must be >= 0, got {value:g}")
    run = load_run(args.run_dir)
    choice = pick(run, args.max_drop, args.max_size)
    setup = rebuild_setup(run, progress=not args.quiet)  # the scales mpq.json states come from it
    try:
        path = write_pick(run, choice, setup.problem, args.out)
    finally:
        setup.problem.close()
    ev = choice.evaluation
    size, acc = run.axes
    base = run.baseline.get(acc)
    gap = base - ev.metrics[acc] if base is not None else None
    drop = "" if gap is None else f" ({abs(gap):.2f} {'below' if gap >= 0 else 'above'} float)"
    info = run.sizes.get(size)
    human = f"{ev.metrics[size]:.6g}" + (f" ({info.annotate(ev.metrics[size])})" if info is not None else "")
    print(f"eval {ev.eval_id}: {size}={human}, validation {acc}={ev.metrics[acc]:.2f}{drop}")
    if choice.held_out:
        print("held out: " + ", ".join(f"{k}={v:.2f}" for k, v in choice.held_out.items()))
    else:
        print("held out: not measured (run `dse evaluate RUN_DIR --split test` first)")
    print("bits: " + ", ".join(f"{k}={v}" for k, v in ev.values.items()))
    print(f"wrote {path}")
    return 0
