"""`--set key.path=value` (and the API's dict overrides): YAML values, applied in order before
validation, the same one-line errors as the file, nothing written on error."""

from __future__ import annotations

import json

import pytest
import yaml

from dse.core.config import load_config
from dse.core.errors import ConfigError
from tests.dse.helpers import run_cli, write_config


def test_set_values_are_parsed_as_yaml(tmp_path):
    path = write_config(tmp_path)
    cfg = load_config(
        path,
        sets=[
            "algorithm.budget=50",
            "toy.choices=[2,4,8]",
            "constraints.max_accuracy_drop=null",
            "algorithm.options={eta: 3}",
            "experiment.name=with=sign",  # only the first '=' splits
        ],
    )
    assert cfg.algorithm.budget == 50
    assert cfg.toy.choices == [2, 4, 8]
    assert cfg.constraints.max_accuracy_drop is None
    assert cfg.algorithm.options == {"eta": 3}
    assert cfg.experiment.name == "with=sign"
    assert cfg.algorithm.pop_size == 12  # the rest of the file's section is kept


def test_sets_apply_in_order_and_the_shortcuts_win(tmp_path):
    path = write_config(tmp_path)
    cfg = load_config(path, sets=["algorithm.budget=5", "algorithm.budget=7"])
    assert cfg.algorithm.budget == 7
    cfg = load_config(path, {"algorithm.budget": 9, "experiment.seed": None}, sets=["algorithm.budget=7"])
    assert cfg.algorithm.budget == 9  # --budget beats --set algorithm.budget
    assert cfg.experiment.seed == 0  # a shortcut left out (None) changes nothing


def test_set_creates_sections_and_fills_a_null_one(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("experiment: {problem: toy}\ncompare: null\n")
    cfg = load_config(path, sets=["toy.n_var=3", "compare.seeds=[1, 2]", "output.dir=o"])
    assert cfg.toy.n_var == 3 and cfg.compare.seeds == [1, 2] and str(cfg.output.dir) == "o"


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("algorithm.budget", "--set algorithm.budget: expected key.path=value"),
        ("=5", "--set =5: empty key"),
        (".budget=5", "--set .budget=5: empty key"),
        ("algorithm..budget=5", "--set algorithm..budget=5: empty key"),
        ("algorithm.budget.x=5", "--set algorithm.budget.x=5: algorithm.budget is not a mapping (it is 60)"),
        (
            "experiment.seed.x=1",
            "--set experiment.seed.x=1: experiment.seed is not a mapping (it is 0 by default)",
        ),
        ("algorithm.budget=[1", "--set algorithm.budget=[1: invalid YAML value"),
    ],
)
def test_malformed_set_is_one_error_naming_it(tmp_path, item, words):
    path = write_config(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_config(path, sets=[item])
    assert str(e.value).startswith(words) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("algorithm.budget=abc", "exp.yaml: algorithm.budget: Input should be a valid integer"),
        ("algorithm.budget=0", "exp.yaml: algorithm.budget: Input should be greater than or equal to 1"),
        ("algorithm.budgett=5", "exp.yaml: algorithm.budgett: unknown key"),
        ("toy.choices=4", "exp.yaml: toy.choices: Input should be a valid list"),
    ],
)
def test_set_values_are_type_checked_like_the_file(tmp_path, item, words):
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match=words):
        load_config(path, sets=[item])


def test_run_applies_sets(tmp_path, capsys):
    path = write_config(tmp_path)
    argv = ["run", str(path), "--quiet", "--set", "algorithm.budget=25", "--set", "algorithm.name=random"]
    assert run_cli(*argv, "--set", "constraints.max_accuracy_drop=null", "--seed", "3") == 0
    run_dir = tmp_path / "results" / "toy" / "random-s3"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluations"] == 25 and summary["algorithm"] == "random"
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["constraints"]["max_accuracy_drop"] is None
    assert resolved["algorithm"]["budget"] == 25 and resolved["experiment"]["seed"] == 3


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("algorithm.budget=abc", "error: exp.yaml: algorithm.budget: Input should be a valid integer"),
        ("algorithm.budget", "error: --set algorithm.budget: expected key.path=value"),
        ("algorithm.budget.x=3", "error: --set algorithm.budget.x=3: algorithm.budget is not a mapping"),
        ("=3", "error: --set =3: empty key"),
    ],
)
def test_run_refuses_a_bad_set_in_one_line_writing_nothing(tmp_path, capsys, item, words):
    path = write_config(tmp_path)
    assert run_cli("run", str(path), "--quiet", "--set", item) == 2
    err = capsys.readouterr().err.strip().replace(f"{tmp_path}/", "")
    assert err.startswith(words) and err.count("\n") == 0
    assert not (tmp_path / "results").exists()


def test_validate_applies_sets_and_shortcuts(tmp_path, capsys):
    path = write_config(tmp_path)
    assert run_cli("validate", str(path), "--set", "algorithm.name=random", "--seed", "4") == 0
    out = capsys.readouterr().out
    assert "algorithm random" in out and "random-s4" in out
    assert run_cli("validate", str(path), "--set", "algorithm.pop_size=1") == 2
    assert "exp.yaml: algorithm.pop_size:" in capsys.readouterr().err


def test_bench_applies_sets(tmp_path, capsys):
    path = write_config(tmp_path)
    assert run_cli("bench", str(path), "--set", "experiment.problem=nope") == 2
    assert "experiment.problem: unknown problem 'nope'" in capsys.readouterr().err
    assert run_cli("bench", str(path), "--set", "nope") == 2
    assert "--set nope: expected key.path=value" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_applies_sets_to_a_config_only(tmp_path, capsys):
    path = write_config(tmp_path)
    sets = ["compare.algorithms=[random]", "compare.budget=10", "compare.seeds=[1]"]
    assert run_cli("compare", str(path), "--quiet", *(a for s in sets for a in ("--set", s))) == 0
    run_dir = tmp_path / "results" / "toy" / "compare" / "runs" / "random-s1"
    assert json.loads((run_dir / "summary.json").read_text())["evaluations"] == 10
    assert run_cli("compare", str(run_dir), "--out", str(tmp_path / "c"), "--set", "compare.budget=3") == 2
    assert "--set compare.budget=3: only for a config" in capsys.readouterr().err
    assert run_cli("compare", str(path), "--quiet", "--set", "compare.budget=x") == 2
    assert "exp.yaml: compare.budget:" in capsys.readouterr().err
