"""`dse export RUN_DIR (--eval-id N | --max-drop D) [--finetuned] --onnx out.onnx`: the configuration
as a QDQ ONNX file (the problem's `export_onnx` hook), checked in ONNX Runtime on the test split
against the problem's own fake-quantized model; its mpq.json is written beside it (out.mpq.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dse.cli.common import add_point_choice
from dse.core.errors import DseError
from dse.results.finetuned import finetune_dir
from dse.results.mpq import mpq_document, write_mpq
from dse.results.pick import chosen, point_key, point_name, run_source
from dse.results.rebuild import rebuild_setup
from dse.results.rundata import load_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a configuration as QDQ ONNX and check it in ONNX Runtime")
    add_point_choice(p)
    p.add_argument("--finetuned", action="store_true", help="its fine-tuned weights (dse finetune)")
    p.add_argument("--onnx", required=True, help="the ONNX file to write")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    (ev,) = chosen(run, args.eval_id, args.max_drop, reference=args.reference)
    checkpoint = None
    if args.finetuned:
        checkpoint = finetune_dir(run.run_dir, point_key(ev)) / "model.pt"
        if not checkpoint.is_file():
            raise DseError(
                f"--finetuned: {checkpoint} not found (run `dse finetune {run.run_dir}` on it first)"
            )
    path = Path(args.onnx)
    if path.suffix != ".onnx":
        raise DseError(f"--onnx: {path} should end in .onnx")
    setup = rebuild_setup(run, progress=not args.quiet)
    try:
        check = setup.problem.export_onnx(dict(ev.values), path, checkpoint)
        doc = mpq_document(setup.problem, ev.values, run_source(run, ev), "export", check, checkpoint)
        mpq = write_mpq(path.with_suffix(".mpq.json"), doc)
    finally:
        setup.problem.close()
    print(f"wrote {path} ({point_name(ev)}{', fine-tuned' if checkpoint else ''}) and {mpq}")
    print(
        f"ONNX Runtime on the {check['split']} split ({check['samples']} samples): top-1 agrees with the "
        f"PyTorch fake-quantized model on {check['agreement']:.2f} %; "
        f"accuracy {check['onnxruntime_accuracy']:.2f} "
        f"(PyTorch {check['torch_accuracy']:.2f})"
    )
    return 0
