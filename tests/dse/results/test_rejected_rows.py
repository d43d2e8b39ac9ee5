"""A run with rejected evaluations: its tables, summary, front and plot data (toy emulating rejection).

Random search tries the same configurations with rejection on and off (same seed), so every output
that concerns feasible configurations must be identical; rejected rows are infeasible, their
constrained metric unknown (NaN) beside its bound, never on the front, never drawn.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dse.results.rundata import load_run
from dse.viz.front import draw_front, front_plot_data
from tests.dse.runs import read_json, run_toy, table


def _random(tmp_path, early_reject: bool):
    return run_toy(
        tmp_path,
        "random",
        budget=60,
        toy={"early_reject": True},
        constraints={"max_accuracy_drop": 5, "early_reject": early_reject},
        out=f"reject-{early_reject}",
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rejected")
    return _random(tmp, True), _random(tmp, False)


def test_rejected_rows_are_infeasible_with_a_bound_and_no_metric(runs):
    on, off = runs
    rows, full = table(on, "evaluations.csv"), table(off, "evaluations.csv")
    rejected = rows[rows.status == "rejected"]
    assert len(rejected) > 10 and not rejected.feasible.any() and rejected.accuracy.isna().all()
    threshold = read_json(on, "summary.json")["constraint"]["threshold"]
    assert (rejected.accuracy_bound < threshold).all() and rejected.weight_bits.notna().all()
    # the bound is the best the metric could reach: at least the accuracy a full evaluation gives
    exact = full.set_index("eval_id").accuracy
    assert (rejected.accuracy_bound.to_numpy() >= exact[rejected.eval_id].to_numpy()).all()
    assert rows.feasible.tolist() == full.feasible.tolist()
    assert (rows[rows.status != "rejected"].accuracy == full[rows.status != "rejected"].accuracy).all()
    assert "accuracy_bound" not in full.columns and (full.status == "ok").all()


def test_summary_front_and_hypervolume_are_those_of_full_evaluations(runs):
    on, off = runs
    a, b = read_json(on, "summary.json"), read_json(off, "summary.json")
    assert a["rejected_evaluations"] == (table(on, "evaluations.csv").status == "rejected").sum() > 0
    assert b["rejected_evaluations"] == 0 and a["failed_evaluations"] == b["failed_evaluations"] == 0
    for key in ("evaluations", "feasible_evaluations", "pareto_size", "hypervolume", "fingerprint"):
        assert a[key] == b[key], key
    drop = lambda f: f.drop(columns=["seconds"])  # noqa: E731
    pd.testing.assert_frame_equal(drop(table(on, "pareto.csv")), drop(table(off, "pareto.csv")))


def test_plots_count_rejected_rows_without_drawing_them(runs, tmp_path):
    on, off = runs
    run = load_run(on.run_dir)
    rejected = [e for e in run.evaluations if e.rejected]
    assert rejected and all(math.isnan(e.metrics["accuracy"]) and e.bounds for e in rejected)
    data, full = front_plot_data(run), front_plot_data(load_run(off.run_dir))
    assert data.rejected == len(rejected) and full.rejected == 0
    assert len(data.all_points) == len(run.evaluations) - len(rejected)
    assert all(math.isfinite(y) for _, y, _ in data.all_points)
    assert data.front == full.front
    draw_front(data, tmp_path / "pareto.png")  # the legend says how many were left out
    assert (tmp_path / "pareto.png").stat().st_size > 0
