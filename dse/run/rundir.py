"""The run folder: refused before any work when it holds another config; created once a run starts."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from dse.core.config import ExperimentConfig, parse_config
from dse.core.errors import ConfigError, DseError
from dse.core.files import write_text

#: Fields that may change between an interrupted run and its resumption.
RESUMABLE_FIELDS = ("algorithm.budget", "output.plots", "output.root", "output.dir")


def _resumable(key: str) -> bool:
    """A field a resumed run may change: RESUMABLE_FIELDS, the compare section (not part of a run) and
    the execution section (where and how fast evaluations run, never what they give)."""
    return key in RESUMABLE_FIELDS or key.startswith(("compare.", "execution."))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) and v else {key: v})
    return out


def check_run_dir(cfg: ExperimentConfig, fresh: bool) -> Path:
    """Refuse, before any work, a run folder of another config or one that cannot be written.

    Creates nothing: a run that fails its checks (or the problem's) leaves no folder behind.
    """
    run_dir = cfg.run_dir()
    saved = run_dir / "config.yaml"
    if saved.exists() and not fresh:
        try:
            old = parse_config(yaml.safe_load(saved.read_text()), str(saved), saved=True)
        except (ConfigError, yaml.YAMLError) as e:
            raise DseError(
                f"{saved}: cannot read the saved config ({e}); use --fresh to start over"
            ) from None
        a, b = _flatten(old.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
        diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not _resumable(k)]
        if diff:
            shown = ", ".join(f"{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in diff[:4])
            more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
            raise DseError(
                f"{run_dir} holds a run of a different config: {shown}{more}; use --fresh or another --out"
            )
    where = "output.dir" if cfg.output.dir is not None else "output.root"
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DseError(f"{where}: cannot create {run_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DseError(f"{where}: {existing} is not writable (needed for {run_dir})")
    return run_dir


def open_run_dir(cfg: ExperimentConfig, fresh: bool) -> Path:
    """Create the run folder (moving an old one aside under --fresh) and save the config in it."""
    run_dir = cfg.run_dir()
    if fresh:
        move_aside(run_dir)
    where = "output.dir" if cfg.output.dir is not None else "output.root"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for tmp in run_dir.glob(".*.tmp"):  # left by a process killed inside an atomic write
            tmp.unlink()
        write_text(run_dir / "config.yaml", cfg.to_yaml())
    except OSError as e:
        raise DseError(f"{where}: {run_dir} is not writable ({e.strerror or e})") from None
    return run_dir


def move_aside(run_dir: Path) -> Path | None:
    """--fresh: rename a non-empty run folder to <name>.old-<time> (never delete it)."""
    if not (run_dir.exists() and any(run_dir.iterdir())):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
    run_dir.rename(aside)
    print(f"moved the previous run folder aside to {aside}", file=sys.stderr)
    return aside


def topmost_missing(path: Path) -> Path | None:
    """The outermost folder that creating `path` will create; None if `path` exists."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def roll_back(created: Path, run_dir: Path, aside: Path | None) -> None:
    """Undo the creation of a run folder (and the folders above it) for a search that refused."""
    shutil.rmtree(created, ignore_errors=True)
    if aside is not None and not run_dir.exists():
        aside.rename(run_dir)
