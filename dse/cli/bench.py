"""`dse bench CONFIG`: what one evaluation costs compared with the float forward pass, and what one
rejected early (constraints.early_reject) costs compared with a full one."""

from __future__ import annotations

import argparse

from dse.cli.common import add_set_argument, config_from_args
from dse.core.errors import DseError
from dse.run.setup import build_setup


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time candidate evaluations against the float forward pass")
    p.add_argument("config", help="experiment YAML file")
    add_set_argument(p)
    p.add_argument("--candidates", type=int, default=10, help="random configurations to time")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the random configurations timed")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.candidates < 1 or args.repeats < 1:
        raise DseError("--candidates and --repeats must be at least 1")
    cfg = config_from_args(args, shortcuts=False)  # --seed here draws the timed configurations
    setup = build_setup(cfg, progress=True)
    if not hasattr(setup.problem, "benchmark"):
        raise DseError(f"problem {cfg.experiment.problem!r} has no benchmark")
    import numpy as np

    genomes = setup.space.random(np.random.default_rng(args.seed), args.candidates)
    limits = setup.constraint.reject_limits(setup.problem, cfg.constraints.early_reject)
    candidates = [setup.space.decode(g) for g in genomes]
    if limits:
        result = setup.problem.benchmark(candidates, args.repeats, reject_worse_than=limits)
    else:  # a problem's benchmark need not know about rejection
        result = setup.problem.benchmark(candidates, args.repeats)
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.6g}")
    print(f"evaluation / float forward = {result['ratio_evaluation_to_float']:.3f}")
    if "ratio_rejected_to_full" in result:
        print(
            f"rejected evaluation / full evaluation = {result['ratio_rejected_to_full']:.3f} "
            f"({result['rejected_candidates']:.0f} of {len(candidates)} candidates rejected early)"
        )
    return 0
