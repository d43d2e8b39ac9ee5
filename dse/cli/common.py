"""Arguments shared by commands that read a config."""

from __future__ import annotations

import argparse
from typing import Any

from dse.core.config import ExperimentConfig, load_config


def add_config_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML file")
    p.add_argument("--algorithm", help="algorithm name (overrides algorithm.name)")
    p.add_argument("--budget", type=int, help="distinct evaluations (overrides algorithm.budget)")
    p.add_argument("--seed", type=int, help="run seed (overrides experiment.seed)")
    p.add_argument("--out", help="run folder (overrides output.dir)")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    overrides: dict[str, Any] = {
        "algorithm.name": getattr(args, "algorithm", None),
        "algorithm.budget": getattr(args, "budget", None),
        "experiment.seed": getattr(args, "seed", None),
        "output.dir": getattr(args, "out", None),
    }
    return load_config(args.config, overrides)
