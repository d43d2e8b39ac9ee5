import json

import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config


@pytest.mark.slow  # a whole CLI run
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
        "references.csv",
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
        "baseline",
        "constraint",
        "references",
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
    # the toy problem declares no reference configurations: every value all variables offer, uniformly
    refs = pd.read_csv(run_dir / "references.csv")
    assert refs["reference"].tolist() == [f"uniform-{b}" for b in (2, 3, 4, 6, 8)]
    assert refs["weight_bits"].tolist() == [100.0 * b for b in (2, 3, 4, 6, 8)]  # params 10+20+30+40
    assert summary["references"] == refs["reference"].tolist()
    assert summary["constraint"]["metric"] == "accuracy"


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


def test_run_records_size_baselines_and_prints_kib_with_ratios(tmp_path, capsys):
    # params 10240, 20480, 30720, 40960 (102400 weights): float 3.2768e6 bits = 400 KiB, 8-bit 100 KiB
    path = write_config(tmp_path, toy={"param_scale": 1024})
    assert run_cli("run", str(path), "--quiet", "--budget", "20") == 0
    run_dir = tmp_path / "results" / "toy" / "nsga2-s0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["sizes"] == {
        "weight_bits": {"unit": "bits", "baselines": {"float": 3276800.0, "8-bit": 819200.0}}
    }
    out = capsys.readouterr().out
    assert "weight_bits ratios are against: float 400 KiB, 8-bit 100 KiB" in out
    front = pd.read_csv(run_dir / "pareto.csv").sort_values("weight_bits")
    w = front.weight_bits.iloc[0]  # the smallest front point is always printed
    kib = w / 8192
    human = f"{kib:.2f}" if kib < 10 else f"{kib:.1f}" if kib < 100 else f"{kib:.0f}"
    ratios = f"{3276800 / w:.1f}x vs float, {819200 / w:.1f}x vs 8-bit"
    assert f"weight_bits={w:.6g} ({human} KiB, {ratios})" in out


def test_bench_refuses_a_problem_without_a_benchmark_and_bad_counts(tmp_path, capsys):
    path = write_config(tmp_path)
    assert run_cli("bench", str(path), "--candidates", "1", "--repeats", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.endswith("has no benchmark") and "\n" not in err
    for flag in ("--candidates", "--repeats"):
        assert run_cli("bench", str(path), flag, "0") == 2
        assert capsys.readouterr().err.strip() == "error: --candidates and --repeats must be at least 1"
