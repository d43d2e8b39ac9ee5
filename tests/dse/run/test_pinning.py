"""search_space.pin_cost_free: a variable that changes no cost metric of the run is held at its
highest choice (lowering it could only lose quality), for every algorithm; the run says so, its
tables keep the variable, a resumed run pins the same. Toy: x0..x2 cost, f0 and f1 cost nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import events

TOY = {"n_var": 3, "cost_free": 2}
NOTE = (
    "pinned 2 variables that change no cost objective at their highest choice: f0, f1 "
    "(search_space.pin_cost_free: false keeps them searched)"
)


def _run(tmp_path, *args, name="run", **sections):
    folder = tmp_path / f"{name}-config"
    folder.mkdir()
    cfg = write_config(folder, toy={**TOY, **sections.pop("toy", {})}, **sections)
    out = tmp_path / name
    assert run_cli("run", str(cfg), "--out", str(out), *args) == 0
    return out


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _toy_accuracy(row) -> float:
    loss = sum(0.5 / (i + 1) * 2.0 ** -row[f"x{i}"] for i in range(3))
    return 100.0 - 100.0 * (loss + sum(0.1 * 2.0 ** -row[f"f{j}"] for j in range(2)))


def test_cost_free_variables_are_pinned_said_and_kept_in_the_tables(tmp_path, capsys):
    out = _run(tmp_path)
    assert NOTE in capsys.readouterr().err.splitlines()
    summary = _summary(out)
    assert summary["pinned"] == {"f0": 8, "f1": 8} and summary["space_size"] == 5**3
    assert summary["variables"] == 5 and summary["evaluations"] == 60
    frame = pd.read_csv(out / "evaluations.csv")
    assert list(frame.columns[1:6]) == ["x0", "x1", "x2", "f0", "f1"]
    assert (frame[["f0", "f1"]] == 8).all().all()
    assert list(pd.read_csv(out / "pareto.csv").columns[1:6]) == ["x0", "x1", "x2", "f0", "f1"]
    # each row's metrics are those of the configuration it records, pinned values included: the
    # uniform-2 reference (f at 2) must not answer the all-lowest search point (f at 8)
    assert (frame["x0"] == 2).any()
    assert frame.apply(_toy_accuracy, axis=1).to_numpy() == pytest.approx(frame["accuracy"].to_numpy())
    # reference configurations still set every variable as the problem declares
    refs = {e["label"]: e["values"] for e in events(out) if e["kind"] == "reference"}
    assert refs["uniform-2"] == {"x0": 2, "x1": 2, "x2": 2, "f0": 2, "f1": 2}


def test_pin_cost_free_false_keeps_them_searched(tmp_path, capsys):
    out = _run(tmp_path, search_space={"pin_cost_free": False})
    assert "pinned" not in capsys.readouterr().err
    summary = _summary(out)
    assert summary["pinned"] == {} and summary["space_size"] == 5**5
    frame = pd.read_csv(out / "evaluations.csv")
    assert (frame["f0"] < 8).any() and (frame["f1"] < 8).any()


def test_without_a_cost_metric_nothing_is_pinned_and_a_constrained_cost_counts(tmp_path):
    # accuracy vs qerror: no cost metric, so no variable is "cost-free" (pinning all would refuse)
    out = _run(tmp_path, "--quiet", name="no-cost", objectives=["accuracy", "qerror"])
    assert _summary(out)["pinned"] == {}
    # the same objectives with a limit on weight_bits: f0, f1 change no cost of the run
    limit = {"metric": "weight_bits", "max": 480, "max_accuracy_drop": None}
    out = _run(tmp_path, "--quiet", name="cost-limit", objectives=["accuracy", "qerror"], constraints=limit)
    assert _summary(out)["pinned"] == {"f0": 8, "f1": 8}


def test_a_resumed_run_pins_the_same_and_ends_like_one_long_run(tmp_path):
    out = _run(tmp_path, "--quiet", "--budget", "25", name="resumed")
    assert _summary(out)["evaluations"] == 25
    cfg = tmp_path / "resumed-config" / "exp.yaml"
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out)) == 0
    ref = _run(tmp_path, "--quiet", name="long")
    assert events(out) == events(ref)
    summary = _summary(out)
    assert summary["replayed_from_journal"] == 25 and summary["pinned"] == {"f0": 8, "f1": 8}
    # a resumption that would pin otherwise is another config: refused, naming the field
    unpinned = ("--set", "search_space.pin_cost_free=false")
    assert run_cli("run", str(cfg), "--quiet", "--out", str(out), *unpinned) == 2
    assert events(out) == events(ref)


@pytest.mark.parametrize("algorithm", ["nsga2", "random", "exhaustive", "bisection", "greedy", "ilp"])
def test_every_algorithm_searches_the_free_variables_only(tmp_path, algorithm):
    out = _run(tmp_path, "--quiet", "--algorithm", algorithm, output={"plots": True})
    frame = pd.read_csv(out / "evaluations.csv")
    assert len(frame) > 0 and (frame[["f0", "f1"]] == 8).all().all()
    assert (frame[["x0", "x1", "x2"]] < 8).any().any()  # the others were searched
    assert (out / "pareto.png").is_file() and (out / "heatmap.png").is_file()  # plots read rundata.variables
    if algorithm == "bisection":  # mpq.json: every variable, pinned ones included
        mpq = json.loads((out / "mpq.json").read_text())
        layers = {layer["name"]: layer["bits"] for layer in mpq["layers"]}
        assert layers["f0"] == 8 and layers["f1"] == 8
