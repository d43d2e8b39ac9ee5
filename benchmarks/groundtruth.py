"""Ground truth for the MOEAs: how much of the exhaustive front a search reaches at 5 % of the space.

    python benchmarks/groundtruth.py [CONFIG] [--quiet]

CONFIG (default experiments/mnist1d-groundtruth.yaml) names an exhaustive run (`algorithm`) and a
comparison (`compare`: algorithms x seeds at a budget, a fixed `target`). One problem is built, the
exhaustive run is made (or resumed: after the first time it only replays its journal), then every
compared run is made afresh on the same setup, so the shared memo answers from the exhaustive run
(with early rejection on, infeasible configurations are evaluated again, stopped early: about a
minute in all on 2 cores). Prints one table: per run, the hypervolume and its
share of the exhaustive front's, the evaluations to the target and the sensitivity table's share of
the budget; per algorithm, the means; then the ratio of the evaluations-to-target to random
search's, measured and against random sampling's exact expectation, (N + 1) / (K + 1) for K of the
N configurations feasible within the target. Writes the comparison (exhaustive run included) to
results/<experiment>/groundtruth/.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import pandas as pd

from dse.compare.comparison import Comparison
from dse.compare.runs import compare_runs, run_config
from dse.core.config import ExperimentConfig, load_config
from dse.indicators.quality import hypervolume
from dse.results.rundata import RunData, load_run
from dse.run.runner import run_experiment
from dse.run.setup import Setup, build_setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="experiments/mnist1d-groundtruth.yaml")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or run logs")
    args = parser.parse_args(argv)
    cfg = load_config(Path(args.config))
    progress = not args.quiet
    setup = build_setup(cfg, progress)
    try:
        return _compare(cfg, setup, progress)
    finally:
        setup.close_executor()  # the workers of execution.workers > 1


def _compare(cfg: ExperimentConfig, setup: Setup, progress: bool) -> int:
    truth = run_experiment(cfg, setup=setup, progress=progress)
    if truth.summary["evaluations"] < truth.summary["space_size"]:
        print(f"error: {truth.run_dir} covers only part of the space (raise its budget)", file=sys.stderr)
        return 1
    out = cfg.output.root / cfg.experiment.name / "groundtruth"
    shutil.rmtree(out / "runs", ignore_errors=True)  # this script's own runs: always made afresh
    quiet = None if progress else (lambda message: None)
    compared = run_config(cfg, out, progress=progress, setup=setup, log=quiet)
    runs = [load_run(truth.run_dir), *compared.comparison.runs]
    c = compare_runs(runs, out, target=cfg.compare.target).comparison
    print(table(c, runs[0]).to_string(index=False))
    return 0


def table(c: Comparison, truth: RunData) -> pd.DataFrame:
    """One row per algorithm: the hypervolume share of the exhaustive front's and the evaluations to
    the target, per seed and on average, and the average's ratio to random sampling's expectation.

    A run that never reaches the target counts as budget + 1 in the mean (so the mean is a lower
    bound where one did not); the last row is random sampling's exact expectation."""
    t = c.table.set_index("run")
    best = float(t.loc[truth.name, "hypervolume"])
    hits = [e for e in truth.evaluations if e.feasible and e.metrics[c.target_metric] <= c.target]
    expected = (len(truth.evaluations) + 1) / (len(hits) + 1)
    print(
        f"exhaustive front: hypervolume {best:.4f} over {len(truth.evaluations)} configurations; "
        f"target {c.target_metric} <= {c.target:.6g} ({c.target_rule}): {len(hits)} feasible "
        f"configurations reach it, so random sampling needs {expected:.1f} evaluations on average"
    )
    quality = truth.axes[1]
    top = max(e.metrics[quality] for e in truth.front)
    n = len(truth.evaluations)
    # what a search reaches that finds everything but those few: read a share just under it as the
    # whole front found but them (here: a validation-noise outlier no search can aim for)
    rest = [e for e in truth.evaluations if not (e.feasible and e.metrics[quality] >= top)]
    tops = n - len(rest)
    cap = hypervolume(rest, truth.objectives, c.norm) / best
    print(
        f"its best {quality} ({top:.6g}) is reached by {tops} of the {n} configurations; "
        f"without them the best share is {cap:.3f}"
    )
    runs: dict[str, list[RunData]] = {}
    for r in c.runs:
        if r is not truth:
            runs.setdefault(r.label, []).append(r)
    rows = []
    for name, group in runs.items():
        row: dict[str, object] = {"algorithm": name}
        shares = [float(t.loc[r.name, "hypervolume"]) / best for r in group]
        evals = [float(t.loc[r.name, "evals_to_target"]) for r in group]
        budgets = [int(r.summary["budget"]) for r in group]
        row.update({f"hv_share s{r.seed}": round(v, 3) for r, v in zip(group, shares, strict=True)})
        row["hv_share mean"] = round(sum(shares) / len(shares), 3)
        for r, v in zip(group, evals, strict=True):
            row[f"evals s{r.seed}"] = "-" if math.isnan(v) else str(int(v))
        counted = [b + 1 if math.isnan(v) else v for v, b in zip(evals, budgets, strict=True)]
        mean = sum(counted) / len(counted)
        row["evals mean"] = f"{mean:.1f}" + ("+" if any(math.isnan(v) for v in evals) else "")
        row["ratio to random"] = round(mean / expected, 3)
        row["sensitivity evals"] = str(group[0].summary.get("sensitivity_evaluations", 0))
        rows.append(row)
    rows.append({"algorithm": "random (expected)", "evals mean": f"{expected:.1f}", "ratio to random": 1.0})
    return pd.DataFrame(rows).astype(object).fillna("")


if __name__ == "__main__":
    sys.exit(main())
