"""`dse run`: build the problem, search through the evaluator, derive every output from the journal."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.algorithms.base import SearchContext
from dse.analysis import Normalization, normalization_for
from dse.config import ExperimentConfig, parse_config
from dse.errors import ConfigError, DseError
from dse.evaluation import Evaluation
from dse.evaluator import Evaluator
from dse.files import write_text
from dse.journal import JOURNAL_NAME, Journal
from dse.objectives import AccuracyConstraint, Objectives
from dse.outputs import RunInfo, write_run_outputs
from dse.problem import Problem
from dse.registry import ALGORITHMS, PROBLEMS
from dse.space import SearchSpace

UNIFORM_BITS = (2, 3, 4, 5, 6, 8, 16)
#: Fields that may change between an interrupted run and its resumption.
RESUMABLE_FIELDS = ("algorithm.budget", "output.plots", "output.root", "output.dir")


@dataclass
class Setup:
    """Everything a search needs that does not depend on the algorithm: shared by compared runs."""

    cfg: ExperimentConfig
    problem: Problem
    space: SearchSpace
    objectives: Objectives
    constraint: AccuracyConstraint
    norm: Normalization
    #: evaluation memo shared by every run given this setup (`dse compare`): no configuration runs twice
    memo: dict[tuple[int, ...], Evaluation] = field(default_factory=dict)


def build_setup(cfg: ExperimentConfig, progress: bool = True) -> Setup:
    problem_cls = PROBLEMS.problem_class(cfg.experiment.problem)
    problem = problem_cls.from_config(cfg, progress=progress)
    space = SearchSpace(problem.variables)
    objectives = Objectives.of(problem, cfg.objectives)
    constraint = AccuracyConstraint.of(cfg.constraints, problem)
    return Setup(
        cfg, problem, space, objectives, constraint, normalization_for(problem, space, objectives, constraint)
    )


def get_algorithm(cfg: ExperimentConfig) -> Any:
    try:
        cls = ALGORITHMS.get(cfg.algorithm.name)
    except KeyError as e:
        raise ConfigError(f"algorithm.name: {e.args[0]}") from None
    if getattr(cls, "multi_objective", False) and len(cfg.objectives) < 2:
        raise ConfigError(
            f"objectives: {cfg.algorithm.name} is multi-objective and needs at least 2 objectives, "
            f"got {cfg.objectives}"
        )
    return cls(cfg.algorithm.options)


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
            old = parse_config(yaml.safe_load(saved.read_text()), str(saved))
        except (ConfigError, yaml.YAMLError) as e:
            raise DseError(
                f"{saved}: cannot read the saved config ({e}); use --fresh to start over"
            ) from None
        a, b = _flatten(old.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
        diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS]
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
        _move_aside(run_dir)
    where = "output.dir" if cfg.output.dir is not None else "output.root"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for tmp in run_dir.glob(".*.tmp"):  # left by a process killed inside an atomic write
            tmp.unlink()
        write_text(run_dir / "config.yaml", cfg.to_yaml())
    except OSError as e:
        raise DseError(f"{where}: {run_dir} is not writable ({e.strerror or e})") from None
    return run_dir


def _move_aside(run_dir: Path) -> Path | None:
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


def _topmost_missing(path: Path) -> Path | None:
    """The outermost folder that creating `path` will create; None if `path` exists."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def _roll_back(created: Path, run_dir: Path, aside: Path | None) -> None:
    """Undo the creation of a run folder (and the folders above it) for a search that refused."""
    shutil.rmtree(created, ignore_errors=True)
    if aside is not None and not run_dir.exists():
        aside.rename(run_dir)


def prepare_run_dir(cfg: ExperimentConfig, fresh: bool) -> Path:
    """Check and create the run folder in one step (for callers that evaluate nothing before)."""
    check_run_dir(cfg, fresh)
    return open_run_dir(cfg, fresh)


@dataclass
class RunResult:
    run_dir: Path
    evaluations: list[Evaluation]
    summary: dict[str, Any]
    setup: Setup | None = None


def run_experiment(
    cfg: ExperimentConfig, *, fresh: bool = False, progress: bool = True, setup: Setup | None = None
) -> RunResult:
    """Run (or resume) one search; every output is rewritten from the journal at the end, even on Ctrl-C.

    Everything that can refuse the run (config, run folder, problem construction, a constraint
    nothing meets) happens before the run folder is created, so a refused run writes nothing.
    """
    start = time.perf_counter()
    algorithm = get_algorithm(cfg)  # fail on a bad name/options before any expensive work
    run_dir = check_run_dir(cfg, fresh)
    setup = setup or build_setup(cfg, progress)
    journal = Journal(run_dir / JOURNAL_NAME, defer=True, read=not fresh)
    bar = tqdm(
        total=cfg.algorithm.budget,
        desc=cfg.algorithm.name,
        disable=None if progress else True,  # None: tqdm shows the bar on a terminal only
        file=sys.stderr,
        dynamic_ncols=True,
    )
    evaluator = Evaluator(
        setup.problem,
        setup.space,
        setup.objectives,
        setup.constraint,
        journal,
        budget=cfg.algorithm.budget,
        timeout=cfg.output.eval_timeout,
        on_result=_progress_callback(bar, setup),
        memo=setup.memo,
    )
    try:
        _check_all_high(evaluator, setup)
        aside = _move_aside(run_dir) if fresh else None
        created = _topmost_missing(run_dir)  # what a refused search must remove again
        open_run_dir(cfg, fresh=False)
        journal.start()
    except BaseException:
        bar.close()
        raise
    info = RunInfo(cfg=cfg, setup=setup, run_dir=run_dir)
    status, error, refused = "error", "", False
    try:
        _references(evaluator, setup)
        ctx = SearchContext(
            problem=setup.problem,
            space=setup.space,
            evaluator=evaluator,
            objectives=setup.objectives,
            constraint=setup.constraint,
            seed=cfg.experiment.seed,
            pop_size=cfg.algorithm.pop_size,
            run_dir=run_dir,
            log=lambda m: tqdm.write(m, file=sys.stderr) if progress else None,
        )
        algorithm.run(ctx)
        status = "budget_spent" if evaluator.remaining == 0 else "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as e:
        error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        # an algorithm that refuses its options or the space (a DseError) before its first
        # evaluation is bad input: a folder this process created goes away, as if never started
        refused = isinstance(e, DseError) and created is not None and not evaluator.evaluations()
        raise
    finally:
        bar.close()
        journal.close()
        info.wall_seconds = time.perf_counter() - start + (0.0 if fresh else _earlier_wall_seconds(run_dir))
        info.replayed = evaluator.replayed
        try:
            if refused:
                _roll_back(created, run_dir, aside)  # type: ignore[arg-type]
            else:
                evals, summary = _write_outputs(info, journal, status, error)
        except Exception as e:
            if status != "error" and status != "interrupted":
                raise
            # never mask what stopped the run; the journal is intact and the next run rewrites these
            print(f"warning: could not write the run outputs ({type(e).__name__}: {e})", file=sys.stderr)
    return RunResult(run_dir, evals, summary, setup)


def _write_outputs(
    info: RunInfo, journal: Journal, status: str, error: str
) -> tuple[list[Evaluation], dict[str, Any]]:
    """Derive every output from the journal (the record), saying in the summary how the run ended."""
    evals = sorted((e for e in journal.evaluations() if e.kind == "search"), key=lambda e: e.eval_id)
    refs = sorted((e for e in journal.evaluations() if e.kind == "reference"), key=lambda e: e.eval_id)
    info.status, info.error = status, error
    return evals, write_run_outputs(info, evals, refs)


def _earlier_wall_seconds(run_dir: Path) -> float:
    """Wall time of the processes this run resumes, as their last summary recorded it (0 if none)."""
    try:
        return float(json.loads((run_dir / "summary.json").read_text())["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _check_all_high(evaluator: Evaluator, setup: Setup) -> Evaluation:
    """Evaluate the all-highest configuration first: refuse a search that cannot succeed."""
    space = setup.space
    high = evaluator.reference(space.decode(space.highest()), "all-high")
    if high.ok and not high.feasible and setup.constraint.threshold is not None:
        raise DseError(
            f"constraints: no configuration can meet accuracy >= {setup.constraint.threshold:.2f}: "
            f"the all-highest configuration reaches {high.metrics['accuracy']:.2f}"
        )
    return high


def _references(evaluator: Evaluator, setup: Setup) -> list[Evaluation]:
    """The all-highest point (checked before the run folder exists), then the uniform-precision points."""
    refs = [_check_all_high(evaluator, setup)]
    for bits in UNIFORM_BITS:
        refs.append(evaluator.reference({n: bits for n in setup.space.names}, f"uniform-{bits}"))
    return refs


def _progress_callback(bar: tqdm, setup: Setup):
    x = next((n for n in setup.objectives.names if n != "accuracy"), setup.objectives.names[0])
    best: list[float] = []

    def update(ev: Evaluation) -> None:
        bar.update(1)
        if ev.ok and ev.feasible and x in ev.metrics and (not best or ev.metrics[x] < best[0]):
            best[:] = [ev.metrics[x]]
            acc = ev.metrics.get("accuracy")
            bar.set_postfix_str(f"best feasible {x}={best[0]:.4g}" + (f" acc={acc:.2f}" if acc else ""))

    return update
