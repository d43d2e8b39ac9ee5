"""`dse run`: build the problem, search through the evaluator, derive every output from the journal."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
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
RESUMABLE_FIELDS = ("algorithm.budget", "output.plots")


@dataclass
class Setup:
    """Everything a search needs that does not depend on the algorithm: shared by compared runs."""

    cfg: ExperimentConfig
    problem: Problem
    space: SearchSpace
    objectives: Objectives
    constraint: AccuracyConstraint
    norm: Normalization


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
    return cls(cfg.algorithm.options)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) and v else {key: v})
    return out


def prepare_run_dir(cfg: ExperimentConfig, fresh: bool) -> Path:
    """Create the run folder, or check that an existing one belongs to this config (resume)."""
    run_dir = cfg.run_dir()
    saved = run_dir / "config.yaml"
    if run_dir.exists() and fresh and any(run_dir.iterdir()):
        aside = run_dir.with_name(f"{run_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(aside)
        print(f"moved the previous run folder aside to {aside}", file=sys.stderr)
    elif saved.exists():
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
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise DseError(f"output.dir: {run_dir} is not writable ({e.strerror or e})") from None
    return run_dir


@dataclass
class RunResult:
    run_dir: Path
    evaluations: list[Evaluation]
    summary: dict[str, Any]


def run_experiment(
    cfg: ExperimentConfig, *, fresh: bool = False, progress: bool = True, setup: Setup | None = None
) -> RunResult:
    """Run (or resume) one search; every output is rewritten from the journal at the end, even on Ctrl-C."""
    start = time.perf_counter()
    algorithm = get_algorithm(cfg)  # fail on a bad name/options before any expensive work
    run_dir = prepare_run_dir(cfg, fresh)
    setup = setup or build_setup(cfg, progress)
    write_text(run_dir / "config.yaml", cfg.to_yaml())
    journal = Journal(run_dir / JOURNAL_NAME)
    bar = tqdm(
        total=cfg.algorithm.budget,
        desc=cfg.algorithm.name,
        disable=not progress,
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
    )
    info = RunInfo(cfg=cfg, setup=setup, run_dir=run_dir)
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
    finally:
        bar.close()
        journal.close()
        info.wall_seconds = time.perf_counter() - start
        info.replayed = evaluator.replayed
        evals = evaluator.evaluations()
        summary = write_run_outputs(info, evals, evaluator.references())
    return RunResult(run_dir, evals, summary)


def _references(evaluator: Evaluator, setup: Setup) -> list[Evaluation]:
    """All-highest first (to refuse a constraint nothing meets), then the uniform-precision points."""
    space = setup.space
    high = evaluator.reference(space.decode(space.highest()), "all-high")
    if high.ok and not high.feasible and setup.constraint.threshold is not None:
        raise DseError(
            f"constraints: no configuration can meet accuracy >= {setup.constraint.threshold:.2f}: "
            f"the all-highest configuration reaches {high.metrics['accuracy']:.2f}"
        )
    refs = [high]
    for bits in UNIFORM_BITS:
        refs.append(evaluator.reference({n: bits for n in space.names}, f"uniform-{bits}"))
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
