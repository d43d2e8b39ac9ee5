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
    add_execution_overrides(p)


def add_execution_overrides(p: argparse.ArgumentParser, workers: bool = True) -> None:
    """--device, --workers, --backend: where evaluations run (the `execution` section)."""
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides execution.device)")
    if workers:
        p.add_argument("--workers", type=int, help="evaluations at once (overrides execution.workers)")
    p.add_argument("--backend", choices=["local", "ray"], help="local or ray (overrides execution.backend)")


def execution_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The execution shortcuts given on the command line (None: not given)."""
    return {
        "execution.device": getattr(args, "device", None),
        "execution.workers": getattr(args, "workers", None),
        "execution.backend": getattr(args, "backend", None),
    }


def config_from_args(args: argparse.Namespace, shortcuts: bool = True) -> ExperimentConfig:
    """The config file with every --set applied in order, then the shortcuts (which win)."""
    overrides: dict[str, Any] = {}
    if shortcuts:
        overrides = {
            "algorithm.name": getattr(args, "algorithm", None),
            "algorithm.budget": getattr(args, "budget", None),
            "experiment.seed": getattr(args, "seed", None),
            "output.dir": getattr(args, "out", None),
            **execution_overrides(args),
        }
    return load_config(args.config, overrides, sets=getattr(args, "sets", None) or ())


def add_point_choice(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    """RUN_DIR and which of its configurations a command acts on (`dse.results.pick.chosen` reads
    them): one by eval id, reference label or pick's --max-drop; `many` adds --max-size and --front."""
    p.add_argument("run_dir", help="run folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--eval-id", type=int, help="the evaluation (evaluations.csv eval_id)")
    which.add_argument("--reference", help="a reference configuration of references.csv, e.g. 2-bit")
    which.add_argument("--max-drop", type=float, help="as in pick: smallest within D points of float")
    if many:
        which.add_argument("--max-size", type=float, help="as in pick: most accurate of size <= S")
        which.add_argument("--front", action="store_true", help="every point of the feasible front")
