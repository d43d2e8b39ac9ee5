from pathlib import Path

import pytest

from dse.core.config import load_config, parse_config
from dse.core.errors import ConfigError


def test_defaults_fill_everything_missing():
    cfg = parse_config({"experiment": {"problem": "toy"}})
    assert cfg.algorithm.name == "nsga2" and cfg.algorithm.budget == 300
    assert cfg.objectives == ["accuracy", "weight_bits"]
    assert cfg.run_dir() == Path("results/experiment/nsga2-s0")


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"algorithm": {"budgett": 3}}, ["algorithm.budgett", "unknown key"]),
        ({"algorithm": {"budget": 0}}, ["algorithm.budget", "greater than or equal to 1"]),
        ({"algorithm": {"budget": "many"}}, ["algorithm.budget", "integer"]),
        ({"objectives": ["accuracy", "speed"]}, ["unknown objective 'speed'", "weight_bits"]),
        ({"objectives": ["accuracy", "accuracy"]}, ["repeat"]),
        ({"colour": 1}, ["colour", "unknown key"]),
    ],
)
def test_bad_fields_name_the_field(raw, words):
    raw = {"experiment": {"problem": "toy"}, **raw}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "exp.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("exp.yaml:")
    for w in words:
        assert w in msg


def test_unknown_problem_lists_known():
    with pytest.raises(ConfigError, match="unknown problem 'nope'.*layerwise_quantization"):
        parse_config({"experiment": {"problem": "nope"}})


def test_quantization_sections_are_validated():
    with pytest.raises(ConfigError, match=r"search_space.weights.*lo=8 > hi=4"):
        parse_config({"search_space": {"weights": {"bounds": [8, 4]}}})
    with pytest.raises(ConfigError, match="bits 40 outside 1-32"):
        parse_config({"search_space": {"weights": {"choices": [2, 40]}}})
    with pytest.raises(ConfigError, match="empty search space"):
        parse_config({"search_space": {"weights": None, "activations": None}})
    with pytest.raises(ConfigError, match="model.optionz"):
        parse_config({"model": {"optionz": {}}})


def test_load_config_overrides_and_yaml_errors(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("experiment: {problem: toy}\nalgorithm: {budget: 5}\n")
    cfg = load_config(p, {"algorithm.budget": 9, "experiment.seed": None, "output.dir": str(tmp_path / "o")})
    assert cfg.algorithm.budget == 9 and cfg.output.dir == tmp_path / "o"
    p.write_text("algorithm: {budget: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_round_trips():
    cfg = parse_config({"experiment": {"problem": "toy", "seed": 3}, "algorithm": {"budget": 7}})
    import yaml

    again = parse_config(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
