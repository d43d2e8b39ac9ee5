"""A quantization run writes the same evaluations with one process, two local workers and two Ray
actors: every worker rebuilds the driver's model from the cached baseline, calibrates it identically,
and evaluates bit for bit as the driver would."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import yaml

from dse.cli import main


@pytest.mark.slow
def test_one_process_two_workers_and_two_ray_actors_write_the_same_evaluations(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": "tiny"},
                "model": {"name": "mlp", "options": {"hidden": [16, 16]}},
                "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
                "execution": {"threads": 1},
                "training": {"epochs": 1},
                "objectives": ["accuracy", "weight_bits"],
                "constraints": {"max_accuracy_drop": 2.0},
                "algorithm": {"name": "nsga2", "budget": 40, "pop_size": 8},
                "output": {"root": str(tmp_path / "results"), "plots": False},
            }
        )
    )
    ways = {"one": ["--workers", "1"], "local": ["--workers", "2"]}
    if importlib.util.find_spec("ray") is not None:
        ways["ray"] = ["--workers", "2", "--backend", "ray"]
    tables = {}
    for name, args in ways.items():
        out = tmp_path / name
        assert main(["run", str(config), "--quiet", "--out", str(out), "--seed", "5", *args]) == 0
        tables[name] = pd.read_csv(out / "evaluations.csv").filter(regex="^(?!.*seconds$)")
    assert len(tables["one"]) == 40 and (tables["one"].status != "failed").all()
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, tables["one"], obj=name)
