"""A run refused for its config trains nothing and writes nothing, even with no model checkpoint.

The quantization problem without `model.checkpoint` trains a float baseline and caches it under
`output.root/.cache`; every check that needs no model must refuse the run before that happens.
"""

from __future__ import annotations

import pytest
import yaml

from tests.dse.helpers import run_cli

pytest.importorskip("torch")

CASES = {
    # pymoo checks option values only as it runs (here: an operator that is no operator)
    "pymoo-option-value": (["accuracy", "weight_bits"], "nsga2", {"crossover": 3}, "NSGA2 rejected"),
    # reference points are checked against the objectives when pymoo is built
    "rnsga2-ref-points": (
        ["accuracy", "weight_bits"],
        "rnsga2",
        {"ref_points": [[99.0, 1e4, 1.0]]},
        "ref_points",
    ),
    # ilp and greedy need a size objective; the problem class says which metrics are sizes
    "ilp-size-objective": (["accuracy", "qerror"], "ilp", {}, "ilp needs a size objective"),
}


def _config(tmp_path, objectives, algorithm, options):
    cfg = {
        "experiment": {"name": "q"},
        "execution": {"threads": 2},
        "model": {"name": "mlp", "options": {"hidden": [16]}},  # no checkpoint: a baseline is trained
        "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
        "training": {"epochs": 1},
        "search_space": {"weights": {"bounds": [2, 8]}},
        "objectives": objectives,
        "algorithm": {"name": algorithm, "budget": 20, "pop_size": 8, "options": options},
        "output": {"root": str(tmp_path / "results"), "plots": False},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(("objectives", "algorithm", "options", "message"), CASES.values(), ids=CASES)
def test_a_refused_run_trains_and_writes_nothing(tmp_path, capsys, objectives, algorithm, options, message):
    path = _config(tmp_path, objectives, algorithm, options)
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "results" / ".cache").exists()  # no baseline trained and cached
    assert not (tmp_path / "results").exists()
    assert run_cli("validate", str(path)) == 2  # the same checks, without running
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("compare", "model", "message"),
    [
        ({"algorithms": ["nsga2"], "options": {"nsga2": {"crossover": 3}}}, "mlp", "NSGA2 rejected"),
        ({"algorithms": ["nsga2"]}, "no_such_model", "model.name: unknown model"),
    ],
    ids=["every-algorithm-refused", "problem-refused"],
)
def test_a_refused_comparison_trains_and_writes_nothing(tmp_path, capsys, compare, model, message):
    path = _config(tmp_path, ["accuracy", "weight_bits"], "nsga2", {})
    cfg = yaml.safe_load(path.read_text())
    cfg["compare"], cfg["model"]["name"] = compare, model
    path.write_text(yaml.safe_dump(cfg))
    assert run_cli("compare", str(path), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "results").exists()  # no baseline cached, no compare folder
