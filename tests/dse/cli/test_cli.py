import json

import pandas as pd

from tests.dse.helpers import run_cli, write_config


def test_run_writes_the_run_folder(tmp_path, capsys):
    path = write_config(tmp_path, output={"plots": True})
    assert run_cli("run", str(path), "--quiet", "--budget", "30", "--seed", "2") == 0
    run_dir = tmp_path / "results" / "toy" / "nsga2-s2"
    assert "run folder:" in capsys.readouterr().out
    for name in (
        "config.yaml",
        "journal.jsonl",
        "evaluations.csv",
        "pareto.csv",
        "uniform.csv",
        "summary.json",
        "pareto.png",
    ):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "experiment",
        "algorithm",
        "seed",
        "evaluations",
        "baseline_accuracy",
        "pareto_size",
        "hypervolume",
        "reference_point",
        "objectives",
        "wall_seconds",
    ):
        assert key in summary
    assert summary["evaluations"] == 30 and summary["seed"] == 2
    evals = pd.read_csv(run_dir / "evaluations.csv")
    assert list(evals.columns[:5]) == ["eval_id", "x0", "x1", "x2", "x3"]
    assert {"accuracy", "weight_bits", "feasible", "seconds"} <= set(evals.columns)
    front = pd.read_csv(run_dir / "pareto.csv")
    feas = evals[evals.feasible]
    for r in front.itertuples():  # nothing feasible dominates a front row
        dom = feas[
            (feas.accuracy >= r.accuracy)
            & (feas.weight_bits <= r.weight_bits)
            & ((feas.accuracy > r.accuracy) | (feas.weight_bits < r.weight_bits))
        ]
        assert dom.empty
    uniform = pd.read_csv(run_dir / "uniform.csv")
    assert uniform["bits"].tolist() == [2, 3, 4, 5, 6, 8, 16]


def test_bad_config_exits_2_with_one_line(tmp_path, capsys):
    path = write_config(tmp_path, algorithm={"nmae": "nsga2"})
    assert run_cli("run", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "algorithm.nmae" in err
    assert not (tmp_path / "results").exists()


def test_unknown_algorithm_lists_known(tmp_path, capsys):
    path = write_config(tmp_path)
    assert run_cli("run", str(path), "--algorithm", "nsga9") == 2
    err = capsys.readouterr().err
    assert "unknown algorithm 'nsga9'" in err and "nsga2" in err and "random" in err


def test_validate(tmp_path, capsys):
    assert run_cli("validate", str(write_config(tmp_path))) == 0
    assert ": ok" in capsys.readouterr().out
    assert run_cli("validate", str(tmp_path / "nope.yaml")) == 2


def test_constraint_nothing_can_meet_is_refused(tmp_path, capsys):
    path = write_config(tmp_path, constraints={"min_accuracy": 99.9})
    assert run_cli("run", str(path), "--quiet") == 2
    assert "no configuration can meet accuracy >= 99.90" in capsys.readouterr().err
