"""dse.api: load or build a config, run it without the CLI, get its tables as DataFrames."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import dse
from dse import api
from dse.core.errors import ConfigError
from tests.dse.helpers import write_config
from tests.dse.proc import REPO

TOY = {
    "experiment": {"name": "toy", "problem": "toy"},
    "constraints": {"max_accuracy_drop": 5},
    "algorithm": {"name": "nsga2", "budget": 20, "pop_size": 8},
}


def test_config_from_a_dict_is_validated(tmp_path):
    data = {**TOY, "output": {"root": str(tmp_path), "plots": False}}
    cfg = api.config(data, {"algorithm.budget": 30}, toy__n_var=3)
    assert cfg.algorithm.budget == 30 and cfg.toy.n_var == 3 and cfg.algorithm.pop_size == 8
    assert data["algorithm"]["budget"] == 20  # the caller's dict is not changed
    assert api.config(cfg, constraints__max_accuracy_drop=None).constraints.max_accuracy_drop is None
    with pytest.raises(ConfigError, match=r"^config: algorithm.budget: Input should be greater"):
        api.config(TOY, algorithm__budget=0)
    with pytest.raises(ConfigError, match=r"^config: algorithm.budgett: unknown key"):
        api.config({**TOY, "algorithm": {"budgett": 3}})
    with pytest.raises(ConfigError, match=r"algorithm.budget is not a mapping"):
        api.config(TOY, {"algorithm.budget.x": 1})


def test_load_applies_dict_and_keyword_overrides(tmp_path):
    path = write_config(tmp_path)
    cfg = api.load(path, {"algorithm.budget": 11, "constraints.max_accuracy_drop": None}, experiment__seed=2)
    assert cfg.algorithm.budget == 11 and cfg.experiment.seed == 2
    assert cfg.constraints.max_accuracy_drop is None  # None is null here, not "left out"
    with pytest.raises(ConfigError, match=r"exp.yaml: algorithm.budget: Input should be a valid integer"):
        api.load(path, algorithm__budget="many")


def test_run_returns_the_run_folder_tables(tmp_path):
    cfg = api.load(write_config(tmp_path))
    result = api.run(cfg, algorithm="random", budget=15, seed=1)
    assert result.run_dir == tmp_path / "results" / "toy" / "random-s1"
    assert isinstance(result.evaluations, pd.DataFrame) and isinstance(result.front, pd.DataFrame)
    pd.testing.assert_frame_equal(result.evaluations, pd.read_csv(result.run_dir / "evaluations.csv"))
    pd.testing.assert_frame_equal(result.front, pd.read_csv(result.run_dir / "pareto.csv"))
    assert len(result.evaluations) == 15 and result.summary["evaluations"] == 15
    assert result.summary["algorithm"] == "random" and result.summary["seed"] == 1
    assert set(result.front["eval_id"]) <= set(result.evaluations["eval_id"]) and len(result.front) > 0
    assert result.config.algorithm.name == "random" and cfg.algorithm.name == "nsga2"  # cfg unchanged
    assert "random-s1" in repr(result)
    # rerunning resumes from the journal: nothing is evaluated twice
    again = api.run(cfg, algorithm="random", budget=15, seed=1)
    assert again.summary["replayed_from_journal"] == 15
    pd.testing.assert_frame_equal(again.evaluations, result.evaluations)
    pd.testing.assert_frame_equal(api.read(result.run_dir).front, result.front)


def test_run_takes_a_dict_or_a_path_and_out(tmp_path):
    out = tmp_path / "here"
    result = api.run({**TOY, "output": {"plots": False}}, out=out, budget=10)
    assert result.run_dir == out and result.summary["evaluations"] == 10
    result = api.run(write_config(tmp_path), budget=12, fresh=True)
    assert result.run_dir == tmp_path / "results" / "toy" / "nsga2-s0" and len(result.evaluations) == 12


def test_run_refuses_bad_input_writing_nothing(tmp_path):
    cfg = api.load(write_config(tmp_path))
    with pytest.raises(ConfigError, match=r"algorithm.name: unknown algorithm 'nope'"):
        api.run(cfg, algorithm="nope")
    with pytest.raises(ConfigError, match=r"algorithm.budget: Input should be greater than or equal to 1"):
        api.run(cfg, budget=0)
    assert not (tmp_path / "results").exists()


def test_import_dse_stays_light_and_torch_free():
    code = (
        "import sys, dse; assert 'pandas' not in sys.modules and 'pymoo' not in sys.modules; "
        "dse.api.run; import tests.dse.toy; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert dse.api is api
