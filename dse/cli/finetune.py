"""`dse finetune RUN_DIR (--eval-id N | --max-drop D | --max-size S | --front)`: quantization-aware
training of chosen configurations (the problem's `finetune` hook), one folder each:
RUN_DIR/finetune/<eval_id or reference label>/{model.pt, finetune.json, mpq.json}. With --front, also
pareto_finetuned.png (the post-training front beside the searched one) and the report."""

from __future__ import annotations

import argparse
import sys

from dse.cli.common import add_point_choice
from dse.core.errors import DseError
from dse.core.files import write_json
from dse.results.finetuned import FINETUNE_JSON, finetune_dir
from dse.results.mpq import MPQ_NAME, mpq_document, write_mpq
from dse.results.pick import chosen, point_key, point_name, run_source
from dse.results.rebuild import rebuild_setup
from dse.results.rundata import load_run
from dse.viz.finetuned_plot import write_finetuned_plot


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="quantization-aware training of chosen Pareto configurations")
    add_point_choice(p, many=True)
    p.add_argument("--epochs", type=int, help="default: the config's finetune.epochs")
    p.add_argument("--lr", type=float, help="default: the config's finetune.lr")
    p.add_argument("--seed", type=int, help="training seed; default: finetune.seed, else data.seed")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.epochs is not None and args.epochs < 1:
        raise DseError(f"--epochs: must be >= 1, got {args.epochs}")
    if args.lr is not None and not args.lr > 0:
        raise DseError(f"--lr: must be > 0, got {args.lr:g}")
    if args.seed is not None and args.seed < 0:
        raise DseError(f"--seed: must be >= 0, got {args.seed}")
    run = load_run(args.run_dir)
    evaluations = chosen(run, args.eval_id, args.max_drop, args.max_size, args.front, args.reference)
    setup = rebuild_setup(run, progress=not args.quiet)
    problem = setup.problem
    options = {"epochs": args.epochs, "lr": args.lr, "seed": args.seed, "progress": not args.quiet}
    size, acc = run.axes
    try:
        for i, ev in enumerate(evaluations, 1):
            out = finetune_dir(run.run_dir, point_key(ev))
            record = problem.finetune(dict(ev.values), out, options)
            source = run_source(run, ev)
            doc = {"key": point_key(ev), **record, "search": dict(ev.metrics), "source": source}
            write_mpq(
                out / MPQ_NAME,
                mpq_document(
                    problem, ev.values, source, "finetune", {"finetune": FINETUNE_JSON}, out / "model.pt"
                ),
            )
            write_json(out / FINETUNE_JSON, doc)
            b, a, t = record["before"], record["after"], record["training"]
            print(
                f"[{i}/{len(evaluations)}] {point_name(ev)}: {size}={ev.metrics[size]:.6g}, validation "
                f"{acc} {b['val_accuracy']:.2f} -> {a['val_accuracy']:.2f} (test {b['test_accuracy']:.2f} -> "
                f"{a['test_accuracy']:.2f}; float {record['float']['val_accuracy']:.2f} / "
                f"{record['float']['test_accuracy']:.2f}), epoch {t.get('kept_epoch', t['epochs'])} of "
                f"{t['epochs']} kept, {t['seconds']:.1f} s: {out}",
                flush=True,
            )
    finally:
        problem.close()
    if args.front:
        plot = write_finetuned_plot(run)
        if plot is not None:
            print(f"wrote {plot}", file=sys.stderr)
    return 0
