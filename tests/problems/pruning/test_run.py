"""The pruning problem through the whole tool: run, validate, plot, report, compare; and a config
that names an unknown model refused before anything is trained or written."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("torch")

from tests.dse.helpers import run_cli  # noqa: E402

RUN_FILES = [
    "config.yaml",
    "journal.jsonl",
    "evaluations.csv",
    "pareto.csv",
    "references.csv",
    "summary.json",
    "pareto.png",
    "pareto_test.csv",
]


def _write(tmp_path, **model):
    cfg = {
        "experiment": {"name": "tiny-pruning", "problem": "layerwise_pruning"},
        "execution": {"threads": 1},
        "model": {"name": "mlp", "options": {"hidden": [16]}, **model},
        "data": {"name": "digits", "image_size": 8},
        "training": {"epochs": 1},
        "pruning": {"keep": [10, 40, 70, 100]},
        "objectives": ["accuracy", "nonzero_weights"],
        "constraints": {"max_accuracy_drop": 5.0},
        "algorithm": {"name": "nsga2", "budget": 16, "pop_size": 8},
        "output": {"root": str(tmp_path / "results")},
    }
    path = tmp_path / "pruning.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_a_pruning_run_writes_the_standard_outputs_and_every_command_reads_them(tmp_path, capsys):
    path = _write(tmp_path)
    assert run_cli("validate", str(path)) == 0
    assert run_cli("run", str(path)) == 0
    run_dir = tmp_path / "results" / "tiny-pruning" / "nsga2-s0"
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    assert missing == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["problem"] == "layerwise_pruning" and summary["status"] == "budget_spent"
    assert summary["references"] == ["keep-10%", "keep-40%", "keep-70%", "keep-100%"]
    assert summary["normalization"]["best"][1] < summary["normalization"]["worst"][1]  # fewer weights: better
    refs = (run_dir / "references.csv").read_text()
    assert "keep-100%" in refs and "nonzero_weights" in refs
    front = (run_dir / "pareto.csv").read_text().splitlines()
    assert front[0].split(",")[:1] == ["eval_id"] and "keep:fc1" in front[0] and len(front) > 1

    assert run_cli("plot", str(run_dir)) == 0
    assert run_cli("report", str(run_dir)) == 0
    assert (run_dir / "report.html").is_file()
    out = tmp_path / "cmp"
    args = ["compare", str(path), "--out", str(out), "--algorithms", "nsga2", "random", "--quiet"]
    assert run_cli(*args, "--budget", "12") == 0
    assert (out / "comparison.csv").is_file() and (out / "fronts.png").is_file()
    assert run_cli("report", str(out)) == 0


def test_an_unknown_model_is_refused_before_training(tmp_path, capsys):
    path = _write(tmp_path, name="no_such_net")
    assert run_cli("validate", str(path)) == 2
    assert run_cli("run", str(path)) == 2
    assert "model.name: unknown model 'no_such_net'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # no baseline trained, no .cache, no run folder
