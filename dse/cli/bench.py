"""`dse bench CONFIG`: what one evaluation costs compared with the float forward pass (default and
tuned), what one rejected early (constraints.early_reject) costs compared with a full one, and, with
`--workers N`, evaluations per second through 1..N workers and each worker's resident memory; all
measured side by side in this one process. `--json`: the same figures as one JSON object on stdout."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from typing import Any

from dse.cli.common import add_execution_overrides, add_set_argument
from dse.core.config import load_config
from dse.core.errors import DseError
from dse.run.executor import run_metrics
from dse.run.setup import build_setup
from dse.run.throughput import measure_throughput, search_tasks
from dse.run.workers import check_execution


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time candidate evaluations against the float forward pass")
    p.add_argument("config", help="experiment YAML file")
    add_set_argument(p)
    p.add_argument("--candidates", type=int, default=10, help="random configurations to time")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the random configurations timed")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="also measure evaluations per second with 1..N workers (--backend ray: local and ray)",
    )
    add_execution_overrides(p, workers=False)
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object, nothing else")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.candidates < 1 or args.repeats < 1:
        raise DseError("--candidates and --repeats must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise DseError(f"--workers: must be at least 1, got {args.workers}")
    # --seed here draws the timed configurations and --workers is the range measured: no shortcuts
    overrides = {"execution.device": args.device, "execution.backend": args.backend}
    cfg = load_config(args.config, overrides, sets=args.sets)
    check_execution(cfg)
    # with --json, stdout carries the JSON object alone: whatever else prints goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = measure(cfg, args)
    if args.json:
        print(json.dumps(_plain(result), indent=2, allow_nan=False))
    else:
        print_result(result)
    return 0


def measure(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The problem's own figures (`Problem.benchmark`) and, with --workers, the throughput rows."""
    setup = build_setup(cfg, progress=not args.json)
    try:
        if not hasattr(setup.problem, "benchmark"):
            raise DseError(f"problem {cfg.experiment.problem!r} has no benchmark")
        import numpy as np

        rng = np.random.default_rng(args.seed)
        limits = setup.constraint.reject_limits(setup.problem, cfg.constraints.early_reject)
        candidates = [setup.space.decode(g) for g in setup.space.random(rng, args.candidates)]
        if limits:
            result = setup.problem.benchmark(candidates, args.repeats, reject_worse_than=limits)
        else:  # a problem's benchmark need not know about rejection
            result = setup.problem.benchmark(candidates, args.repeats)
        out: dict[str, Any] = dict(result)
        if args.workers:
            out.update(_throughput(cfg, setup, candidates, rng, args))
        return out
    finally:
        setup.problem.close()


def _throughput(
    cfg: Any, setup: Any, candidates: list[dict[str, int]], rng: Any, args: Any
) -> dict[str, Any]:
    """Full evaluations per second through 1..--workers workers (--backend ray: local and ray rows):
    8 configurations per worker at least, so that every worker stays busy for a while."""
    extra = max(0, 8 * args.workers - len(candidates))
    configurations = candidates + [setup.space.decode(g) for g in setup.space.random(rng, extra)]
    tasks = search_tasks(configurations, run_metrics(setup.problem, setup.objectives, setup.constraint), {})
    backends = ["local", "ray"] if cfg.execution.backend == "ray" else ["local"]
    rows = measure_throughput(cfg, setup.problem, tasks, args.workers, backends, args.repeats)
    return {"throughput_configurations": len(tasks), "throughput": [r.as_dict() for r in rows]}


def print_result(result: dict[str, Any]) -> None:
    figures = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    others = {k: v for k, v in result.items() if k not in figures and k != "throughput"}
    width = max(map(len, [*figures, *others]), default=0)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:.6g}")
    for k, v in others.items():
        print(f"{k:<{width}}  {v}")
    if "ratio_evaluation_to_float" in result:
        print(f"evaluation / float forward = {result['ratio_evaluation_to_float']:.3f}")
    if "ratio_evaluation_to_tuned_float" in result:
        print(f"evaluation / tuned float forward = {result['ratio_evaluation_to_tuned_float']:.3f}")
    if "ratio_rejected_to_full" in result:
        print(
            f"rejected evaluation / full evaluation = {result['ratio_rejected_to_full']:.3f} "
            f"({result['rejected_candidates']:.0f} of {result.get('candidates', 0):.0f} candidates "
            "rejected early)"
        )
    if "throughput" in result:
        print(f"throughput ({result['throughput_configurations']} configurations, full evaluations):")
        for r in result["throughput"]:
            rss = ", ".join(f"{m:.0f}" for m in r["rss_mib_per_worker"])
            print(
                f"  {r['backend']:<5} {r['workers']:>2} worker{'s' if r['workers'] != 1 else ' '}  "
                f"{r['evaluations_per_s']:8.2f} evaluations/s  x{r['speedup']:.2f}  "
                f"resident MiB per worker: {rss}"
            )


def _plain(v: Any) -> Any:
    """Strict JSON: NaN (a figure that could not be measured, e.g. no candidate rejected) as null."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)
