"""`dse compare`: run algorithm x seed on one problem built once, then measure the runs side by side.

The problem (baseline model, calibration, data splits) is built once and shared; so is an evaluation
memo, so a configuration two runs both propose runs the model once (each run still journals it under
its own eval_id). The comparison itself is computed from the run folders alone, exactly as
`dse compare RUN_DIR ... --out DIR` does for runs made elsewhere.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dse.algorithms  # noqa: F401 - registers the built-in algorithms
from dse.compare.comparison import Comparison, compare
from dse.compare.target import Target
from dse.core.config import CompareSection, ExperimentConfig, folder_name
from dse.core.errors import ConfigError, DseError
from dse.core.files import write_csv, write_json, write_text
from dse.core.registry import ALGORITHMS
from dse.results.rundata import RunData, load_run
from dse.run.runner import run_experiment
from dse.run.setup import Setup, algorithm_class, build_setup, get_algorithm, start_notes
from dse.run.workers import check_execution
from dse.viz.compare_plots import draw_hv_bands, draw_overlay, hv_band_data, overlay_data
from dse.viz.run_plots import draw_heatmap, draw_parallel, heatmap_data, parallel_data

SKIPPED_JSON = "skipped.json"


@dataclass
class CompareResult:
    out_dir: Path
    comparison: Comparison
    skipped: list[dict[str, str]] = field(default_factory=list)
    setup: Setup | None = None  # the shared Setup (config mode only)


def compare_dir(cfg: ExperimentConfig) -> Path:
    return cfg.output.root / cfg.experiment.name / "compare"


def resolve_algorithms(names: Sequence[str], aliases: Mapping[str, str] | None = None) -> list[str]:
    """The compare.algorithms list, with 'all' standing for every registered algorithm.

    An alias (compare.aliases, e.g. nsga2-uniform: nsga2) is one more name for an algorithm, so that
    one algorithm runs with two option sets (compare.options is keyed by these names)."""
    aliases = dict(aliases or {})
    for alias, target in aliases.items():
        if alias in ALGORITHMS.names():
            raise ConfigError(f"compare.aliases.{alias}: already the name of an algorithm")
        algorithm_class(target, f"compare.aliases.{alias}")
    out: list[str] = []
    for name in names:
        for n in ALGORITHMS.names() if name == "all" else [name]:
            if n not in aliases:  # a known name, or an import path to an Algorithm
                algorithm_class(n, "compare.algorithms")
            if n not in out:
                out.append(n)
    if not out:
        raise ConfigError("compare.algorithms: no algorithm to compare")
    return out


def run_config(
    cfg: ExperimentConfig,
    out_dir: Path | None = None,
    *,
    fresh: bool = False,
    progress: bool = True,
    target: float | None = None,
    log: Callable[[str], None] | None = None,
    setup: Setup | None = None,
) -> CompareResult:
    """Every algorithm x seed of `cfg.compare` on one shared setup (`setup`, else built here); then
    the comparison outputs. `target` (a size) replaces compare.target."""
    log = log or (lambda m: print(m, file=sys.stderr))
    out_dir = Path(out_dir) if out_dir is not None else compare_dir(cfg)
    if cfg.compare.variants:
        from dse.compare.variants import run_variants  # it builds on this module

        return run_variants(cfg, out_dir, fresh=fresh, progress=progress, target=target, log=log)
    algorithms = resolve_algorithms(cfg.compare.algorithms, cfg.compare.aliases)
    seeds = list(dict.fromkeys(cfg.compare.seeds))
    if not seeds:
        raise ConfigError("compare.seeds: give at least one seed")
    stray = [a for a in cfg.compare.options if a not in algorithms]
    if stray:
        raise ConfigError(f"compare.options.{stray[0]}: not one of the compared algorithms")
    budget = cfg.compare.budget or cfg.algorithm.budget
    planned, skipped = [], []
    for algorithm in algorithms:
        for seed in seeds:
            cfg_i = _run_config(
                cfg, algorithm, seed, budget, out_dir / "runs" / f"{folder_name(algorithm)}-s{seed}"
            )
            try:  # what an algorithm refuses from the config alone is known before anything is built
                get_algorithm(cfg_i)
            except DseError as e:
                skipped.append({"algorithm": algorithm, "seed": str(seed), "reason": str(e)})
                continue
            planned.append(cfg_i)
    if not planned:
        raise DseError(f"no run can start: {skipped[0]['reason']}")
    for s in skipped:
        log(f"skipped {s['algorithm']} seed {s['seed']}: {s['reason']}")
    check_execution(cfg)
    if setup is not None:  # the caller's setup: its workers stay up for the caller to close
        return _run_all(cfg, planned, skipped, out_dir, setup, fresh, progress, target, log)
    setup = build_setup(cfg, progress)  # checks the problem's config first: a refusal writes nothing
    for note in start_notes(setup, cfg):
        log(note)
    try:  # one worker pool for every run of the comparison
        return _run_all(cfg, planned, skipped, out_dir, setup, fresh, progress, target, log)
    finally:
        setup.close_executor()


def _run_all(
    cfg: ExperimentConfig,
    planned: list[ExperimentConfig],
    skipped: list[dict[str, str]],
    out_dir: Path,
    setup: Setup,
    fresh: bool,
    progress: bool,
    target: float | None,
    log: Callable[[str], None],
) -> CompareResult:
    """Run every planned run on `setup`, then compare the runs that finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "config.yaml", cfg.to_yaml())
    run_dirs = []
    for cfg_i in planned:
        algorithm, seed = cfg_i.algorithm.label or cfg_i.algorithm.name, cfg_i.experiment.seed
        try:
            result = run_experiment(cfg_i, fresh=fresh, progress=progress, setup=setup)
        except DseError as e:  # e.g. an algorithm that cannot handle this problem: skip, say why
            skipped.append({"algorithm": algorithm, "seed": str(seed), "reason": str(e)})
            log(f"skipped {algorithm} seed {seed}: {e}")
            continue
        s = result.summary
        log(
            f"{algorithm} seed {seed}: {s['evaluations']} evaluations, hypervolume "
            f"{s['hypervolume']:.4f}, {s['wall_seconds']:.1f}s"
        )
        run_dirs.append(cfg_i.output.dir)
    if not run_dirs:
        raise DseError(f"no run finished: {skipped[0]['reason']}" if skipped else "no run to compare")
    runs = [load_run(d) for d in run_dirs]
    target = cfg.compare.target if target is None else target
    result = compare_runs(runs, out_dir, target=target, skipped=skipped, config_text=cfg.to_yaml())
    result.setup = setup
    return result


def _run_config(cfg: ExperimentConfig, name: str, seed: int, budget: int, run_dir: Path) -> ExperimentConfig:
    """One run of a comparison: the shared config with its algorithm (`name` or what the alias `name`
    stands for, labelled `name`), seed, budget and folder."""
    algorithm = cfg.compare.aliases.get(name, name)
    options = cfg.compare.options.get(name) or (
        cfg.algorithm.options if name == algorithm == cfg.algorithm.name else {}
    )
    label = name if name != algorithm else None
    return cfg.model_copy(
        update={
            "algorithm": cfg.algorithm.model_copy(
                update={"name": algorithm, "budget": budget, "options": options, "label": label}
            ),
            "experiment": cfg.experiment.model_copy(update={"seed": seed}),
            "output": cfg.output.model_copy(update={"dir": run_dir}),
            # not part of a run: widening the comparison later must not orphan finished runs
            "compare": CompareSection(),
        }
    )


def compare_runs(
    runs: Sequence[RunData],
    out_dir: Path,
    *,
    target: Target = None,
    skipped: list[dict[str, str]] | None = None,
    config_text: str | None = None,
    may_differ: Sequence[str] = (),
) -> CompareResult:
    """Measure finished runs of one problem (or its variants: `may_differ`) and write the compare folder."""
    comparison = compare(runs, target=target, may_differ=may_differ)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config_text is None:  # compared from folders: the first run's config stands for all
        config_text = f"# config of {runs[0].run_dir} (first of {len(runs)} compared runs)\n"
        config_text += runs[0].config_text
    write_text(out_dir / "config.yaml", config_text)
    write_csv(out_dir / "comparison.csv", comparison.table)
    write_csv(out_dir / "comparison_summary.csv", comparison.summary())
    write_json(out_dir / "reference.json", comparison.reference_json())
    if skipped:
        write_json(out_dir / SKIPPED_JSON, skipped)
    else:
        (out_dir / SKIPPED_JSON).unlink(missing_ok=True)
    write_compare_plots(comparison, out_dir)
    return CompareResult(out_dir, comparison, list(skipped or []))


def write_compare_plots(comparison: Comparison, out_dir: Path) -> list[Path]:
    runs = comparison.runs
    exp = runs[0].summary.get("experiment", "")
    draw_overlay(overlay_data(runs), out_dir / "fronts.png", f"{exp} · fronts of {len(runs)} runs")
    curves: dict[str, list] = {}
    for r in runs:
        curves.setdefault(r.label, []).append(comparison.curves[r.name])
    draw_hv_bands(hv_band_data(curves), out_dir / "hv_curve.png", f"{exp} · hypervolume vs evaluations")
    best = best_run(comparison)
    title = f"best run by hypervolume: {best.name}"
    x = comparison.size_name
    draw_heatmap(heatmap_data(best.front, best.variables, x), out_dir / "heatmap.png", title)
    choices = {v: best.choices(v) for v in best.variables}
    data = parallel_data(best.front, best.variables, list(best.objectives.names), choices, x)
    draw_parallel(data, out_dir / "parallel.png", title)
    return [out_dir / n for n in ("fronts.png", "hv_curve.png", "heatmap.png", "parallel.png")]


def best_run(comparison: Comparison) -> RunData:
    """The run with the largest hypervolume (the first of equals)."""
    hv = comparison.table["hypervolume"].tolist()
    i = max(range(len(hv)), key=lambda k: (hv[k] if math.isfinite(hv[k]) else -1.0, -k))
    return comparison.runs[i]
