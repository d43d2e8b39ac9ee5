"""`dse run`: build the problem, search through the evaluator, derive every output from the journal."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dse.algorithms.base import SearchContext
from dse.core.config import ExperimentConfig
from dse.core.errors import DseError
from dse.core.evaluation import Evaluation, latest
from dse.results.outputs import ALL_HIGH, RunInfo, write_run_outputs
from dse.results.rundata import load_run
from dse.run.evaluator import Evaluator
from dse.run.journal import JOURNAL_NAME, Journal
from dse.run.rundir import check_run_dir, move_aside, open_run_dir, roll_back, topmost_missing
from dse.run.setup import Setup, build_setup, get_algorithm, start_notes
from dse.run.workers import check_execution
from dse.viz.run_plots import write_run_plots


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
    check_execution(cfg)
    run_dir = check_run_dir(cfg, fresh)
    if setup is not None:  # a comparison builds its setup (and its workers) once, and closes them
        return _run(cfg, algorithm, run_dir, setup, fresh=fresh, progress=progress, start=start)
    setup = build_setup(cfg, progress)
    if progress:
        for note in start_notes(setup, cfg):
            print(note, file=sys.stderr)
    try:
        return _run(cfg, algorithm, run_dir, setup, fresh=fresh, progress=progress, start=start)
    finally:
        setup.close_executor()


def _run(
    cfg: ExperimentConfig,
    algorithm: Any,
    run_dir: Path,
    setup: Setup,
    *,
    fresh: bool,
    progress: bool,
    start: float,
) -> RunResult:
    executor = setup.ensure_executor()  # a pool's workers start building the problem now
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
        # an algorithm that reads the scores of infeasible configurations gets full evaluations only
        early_reject=cfg.constraints.early_reject and not algorithm.exact_scores,
        executor=executor,
    )
    try:
        _references(evaluator, setup)  # may refuse the run: before the run folder exists
        aside = move_aside(run_dir) if fresh else None
        created = topmost_missing(run_dir)  # what a refused search must remove again
        open_run_dir(cfg, fresh=False)
        journal.start()
    except BaseException:
        bar.close()
        raise
    info = RunInfo(cfg=cfg, setup=setup, run_dir=run_dir)
    status, error, refused = "error", "", False
    try:
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
                roll_back(created, run_dir, aside)  # type: ignore[arg-type]
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
    records = latest(journal.evaluations())  # a rejected record later evaluated exactly: the exact one
    evals = sorted((e for e in records if e.kind == "search"), key=lambda e: e.eval_id)
    refs = sorted((e for e in records if e.kind == "reference"), key=lambda e: e.eval_id)
    info.status, info.error = status, error
    summary = write_run_outputs(info, evals, refs)
    if info.cfg.output.plots:
        write_run_plots(load_run(info.run_dir))
    return evals, summary


def _earlier_wall_seconds(run_dir: Path) -> float:
    """Wall time of the processes this run resumes, as their last summary recorded it (0 if none)."""
    try:
        return float(json.loads((run_dir / "summary.json").read_text())["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _references(evaluator: Evaluator, setup: Setup) -> list[Evaluation]:
    """The problem's reference configurations, then the all-highest one, the most accurate
    configuration (the `Problem` contract): where it misses the constraint, nothing can meet it, so
    the run is refused."""
    refs = [evaluator.reference(v, label) for label, v in setup.problem.reference_configurations().items()]
    space, constraint = setup.space, setup.constraint
    high = evaluator.reference(space.decode(space.highest()), ALL_HIGH)
    if high.ok and not high.feasible and constraint.threshold is not None:
        raise DseError(
            f"constraints: no configuration can meet {constraint.describe()}: "
            f"the all-highest configuration reaches {high.metrics[constraint.metric]:.2f}"
        )
    return [*refs, high]


def _progress_callback(bar: tqdm, setup: Setup):
    x, y = setup.objectives.axes([setup.constraint.metric])
    senses = dict(zip(setup.objectives.names, setup.objectives.senses, strict=True))
    sign = -1.0 if senses.get(x) == "max" else 1.0
    best: list[float] = []

    def update(ev: Evaluation) -> None:
        bar.update(1)
        if ev.ok and ev.feasible and x in ev.metrics and (not best or sign * ev.metrics[x] < sign * best[0]):
            best[:] = [ev.metrics[x]]
            also = f" {y}={ev.metrics[y]:.4g}" if y != x and y in ev.metrics else ""
            bar.set_postfix_str(f"best feasible {x}={best[0]:.4g}{also}")

    return update
