"""`dse validate CONFIG`: check a file (fields, names of model/data/algorithm) without running it."""

from __future__ import annotations

import argparse

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.cli.common import add_config_overrides, config_from_args
from dse.compare.variants import variant_configs
from dse.core.registry import PROBLEMS
from dse.run.setup import get_algorithm
from dse.run.workers import check_execution


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check an experiment config without running it")
    add_config_overrides(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    get_algorithm(cfg)
    check_execution(cfg)
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    problem_cls.check_config(cfg)
    for variant in variant_configs(cfg).values() if cfg.compare.variants else ():
        problem_cls.check_config(variant)
    print(
        f"{args.config}: ok (experiment {cfg.experiment.name!r}, algorithm {cfg.algorithm.name}, "
        f"run folder {cfg.run_dir()})"
    )
    return 0
