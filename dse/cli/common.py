"""Arguments shared by commands that read a config: the file, `--set key.path=value`, and shortcuts."""

from __future__ import annotations

import argparse
from typing import Any

from dse.core.config import ExperimentConfig, load_config

SET_HELP = (
    "change one config field before validation, e.g. --set algorithm.budget=50, "
    "--set search_space.weights.choices=[2,4,8], --set constraints.max_accuracy_drop=null "
    "(the value is YAML; repeatable, applied in order)"
)


def add_set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY.PATH=VALUE", help=SET_HELP)


def add_config_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML file")
    add_set_argument(p)
    p.add_argument("--algorithm", help="algorithm name (overrides algorithm.name)")
    p.add_argument("--budget", type=int, help="distinct evaluations (overrides algorithm.budget)")
    p.add_argument("--seed", type=int, help="run seed (overrides experiment.seed)")
    p.add_argument("--out", help="run folder (overrides output.dir)")


def config_from_args(args: argparse.Namespace, shortcuts: bool = True) -> ExperimentConfig:
    """The config file with every --set applied in order, then the shortcuts (which win)."""
    overrides: dict[str, Any] = {}
    if shortcuts:
        overrides = {
            "algorithm.name": getattr(args, "algorithm", None),
            "algorithm.budget": getattr(args, "budget", None),
            "experiment.seed": getattr(args, "seed", None),
            "output.dir": getattr(args, "out", None),
        }
    return load_config(args.config, overrides, sets=getattr(args, "sets", None) or ())
