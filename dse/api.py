"""Python API (notebooks, scripts): load or build a config, run a search, get its tables back.

    import dse.api as dse
    cfg = dse.load("experiments/resnet.yaml", {"algorithm.budget": 50})
    result = dse.run(cfg, algorithm="random", seed=1)
    result.front                        # pandas DataFrame, the columns of pareto.csv
    result.evaluations                  # pandas DataFrame, the columns of evaluations.csv
    result.summary["hypervolume"], result.run_dir

Everything goes through the same validation and run code as the CLI (`dse run`), so a run made here
is a normal run folder: resumable by rerunning, readable by `dse report`, `dse compare`, ...
Errors are `dse.core.errors.DseError` (`ConfigError` for config fields) with the CLI's one-line message.
Nothing here imports torch until a problem that needs it is built.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.core.config import ExperimentConfig, apply_overrides, load_config, parse_config, parse_sets
from dse.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Result", "config", "load", "read", "run"]


@dataclass
class Result:
    """A run's outputs, read back from its run folder."""

    run_dir: Path
    summary: dict[str, Any]
    evaluations: pd.DataFrame  # evaluations.csv: one row per evaluated configuration
    front: pd.DataFrame  # pareto.csv: the non-dominated feasible rows
    config: ExperimentConfig
    #: what `dse run` prints after the search (e.g. held-out accuracy of the front)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"Result(run_dir={str(self.run_dir)!r}, algorithm={s.get('algorithm')!r}, "
            f"evaluations={s.get('evaluations')}, pareto_size={s.get('pareto_size')}, "
            f"hypervolume={s.get('hypervolume')}, status={s.get('status')!r})"
        )


def _changes(overrides: Mapping[str, Any] | None, sets: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Dotted-key overrides, then keyword ones (`algorithm__budget=50` is `algorithm.budget`).
    Unlike the CLI shortcuts, a None value here sets the field to null."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(f"overrides: expected a mapping of dotted keys, got {type(overrides).__name__}")
    pairs = [(str(k), v) for k, v in (overrides or {}).items()]
    return pairs + [(k.replace("__", "."), v) for k, v in sets.items()]


def load(path: str | Path, overrides: Mapping[str, Any] | None = None, **sets: Any) -> ExperimentConfig:
    """Read an experiment YAML, apply `overrides` ({"algorithm.budget": 50, ...}) and keyword ones
    (`algorithm__budget=50`), in that order, as `--set` does; validated like `dse run` validates it."""
    return load_config(path, sets=_changes(overrides, sets))


def config(
    data: Mapping[str, Any] | ExperimentConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
    **sets: Any,
) -> ExperimentConfig:
    """Build a config in code from a mapping holding what differs from the defaults (the sections of an
    experiment YAML), with `overrides` / keyword ones applied as in `load`; validated."""
    if isinstance(data, ExperimentConfig):
        raw: Any = data.model_dump(mode="json")
    elif data is None:
        raw = {}
    elif isinstance(data, Mapping):
        raw = copy.deepcopy(dict(data))
    else:
        raise ConfigError(f"config: expected a mapping or an ExperimentConfig, got {type(data).__name__}")
    if isinstance(raw, dict):  # otherwise parse_config names the fault
        apply_overrides(raw, parse_sets(_changes(overrides, sets)))
    return parse_config(raw, "config")


def run(
    cfg: ExperimentConfig | Mapping[str, Any] | str | Path,
    algorithm: str | None = None,
    budget: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    fresh: bool = False,
    progress: bool = False,
) -> Result:
    """Run (or resume) one search, as `dse run` does, and return its tables.

    `cfg` is a config (from `load` / `config`), a mapping, or a YAML path. `algorithm`, `budget`,
    `seed` and `out` are `dse run`'s --algorithm/--budget/--seed/--out (None: as in `cfg`);
    `algorithm` may be a registered name or an import path 'package.module:Class'. Rerunning the same
    call resumes from the run folder's journal; `fresh=True` moves the old folder aside first.
    """
    from dse.results.postrun import finish_run
    from dse.run.runner import run_experiment

    if isinstance(cfg, (str, Path)):
        cfg = load(cfg)
    elif not isinstance(cfg, ExperimentConfig):
        cfg = config(cfg)
    shortcuts = {
        "algorithm.name": algorithm,
        "algorithm.budget": budget,
        "experiment.seed": seed,
        "output.dir": None if out is None else str(out),
    }
    given = {k: v for k, v in shortcuts.items() if v is not None}
    if given:
        cfg = config(cfg, given)
    result = run_experiment(cfg, fresh=fresh, progress=progress)
    notes = finish_run(result.run_dir, result.setup, cfg.output.plots)
    return _result(result.run_dir, cfg, notes)


def read(run_dir: str | Path) -> Result:
    """A finished (or interrupted) run folder's tables, without running anything."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not (run_dir / "summary.json").is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no summary.json)")
    import yaml

    return _result(run_dir, parse_config(yaml.safe_load(path.read_text()), str(path), saved=True), [])


def _result(run_dir: Path, cfg: ExperimentConfig, notes: list[str]) -> Result:
    import pandas as pd

    return Result(
        run_dir=run_dir,
        summary=json.loads((run_dir / "summary.json").read_text()),
        evaluations=pd.read_csv(run_dir / "evaluations.csv"),
        front=pd.read_csv(run_dir / "pareto.csv"),
        config=cfg,
        notes=notes,
    )
