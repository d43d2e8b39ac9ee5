"""`search_space.formats`: a categorical format variable per searched weight, evaluated exactly as a
problem built in that format, never pinned, never changing a size; and `dse formats`' survey."""

from __future__ import annotations

import pytest

from dse.core.config import parse_config
from dse.core.errors import ConfigError
from dse.core.registry import PROBLEMS
from dse.run.setup import build_setup


def _config(root, formats=None, **quantization):
    search = {"weights": {"choices": [3, 4, 8]}, "ties": {"l1": "^fc1$"}}
    if formats:
        search["formats"] = formats
    return parse_config(
        {
            "experiment": {"name": "f"},
            "execution": {"threads": 2},
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
            "training": {"epochs": 1},
            "quantization": {"weights": {"calibrator": "max"}, **quantization},
            "search_space": search,
            "output": {"root": str(root), "plots": False},
        }
    )


def _problem(cfg):
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("formats")  # one baseline for every problem here


@pytest.fixture(scope="module")
def mixed(root):
    return _problem(_config(root, formats=["affine", "fixed_point"]))


def test_each_searched_weight_gets_a_categorical_format_variable(mixed):
    formats = {v.name: v for v in mixed.variables if v.name.startswith("f:")}
    assert sorted(formats) == ["f:fc", "f:l1"]
    assert all(v.categorical and v.choices == (0, 1) for v in formats.values())
    assert formats["f:l1"].members == ("f:fc1",)


@pytest.mark.parametrize("bits", [3, 4])
def test_a_format_value_evaluates_as_a_problem_built_in_that_format(root, mixed, bits):
    metrics = ["accuracy", "qerror", "weight_bits"]
    for index, fmt in enumerate(["affine", "fixed_point"]):
        alone = _problem(_config(root, weights={"calibrator": "max", "format": fmt}))
        expected = alone.evaluate({"l1": bits, "w:fc": bits}, metrics)
        got = mixed.evaluate({"l1": bits, "w:fc": bits, "f:l1": index, "f:fc": index}, metrics)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # one layer in each format differs from both uniform ones
    a = mixed.evaluate({"l1": bits, "w:fc": bits, "f:l1": 0, "f:fc": 0}, ["qerror"])
    m = mixed.evaluate({"l1": bits, "w:fc": bits, "f:l1": 1, "f:fc": 0}, ["qerror"])
    assert m != a


def test_formats_change_no_size_yet_are_not_pinned(root):
    setup = build_setup(_config(root, formats=["affine", "fixed_point"]), progress=False)
    try:
        assert setup.space.pinned == {}
        sizes = [
            setup.problem.evaluate({"l1": 4, "w:fc": 4, "f:l1": i, "f:fc": i}, ["weight_bits", "total_bits"])
            for i in (0, 1)
        ]
        assert sizes[0] == sizes[1] and sizes[0]["total_bits"] == 8
        refs = setup.problem.reference_configurations()
        assert refs["4-bit"] == {"l1": 4, "w:fc": 4, "f:l1": 0, "f:fc": 0}
    finally:
        setup.problem.close()


def test_the_weights_format_must_be_among_the_searched_ones(root):
    with pytest.raises(ConfigError, match=r"search_space.formats must include the weights' format 'affine'"):
        _config(root, formats=["fixed_point", "lq"])
    with pytest.raises(ConfigError, match="two or more distinct formats"):
        _config(root, formats=["affine", "affine"])


def test_sizes_ask_each_weights_format_what_a_value_costs(mixed, monkeypatch):
    from problems.quantization.formats.fixed_point import FixedPointFormat

    monkeypatch.setattr(FixedPointFormat, "value_bits", lambda self, bits: 2.0 * bits)
    values = {"l1": 4, "w:fc": 4}
    affine = mixed.evaluate({**values, "f:l1": 0, "f:fc": 0}, ["weight_bits", "model_bits"])
    fixed = mixed.evaluate({**values, "f:l1": 1, "f:fc": 1}, ["weight_bits", "model_bits"])
    assert fixed["weight_bits"] == 2 * affine["weight_bits"]
    assert fixed["model_bits"] - affine["model_bits"] == affine["weight_bits"]
    one = mixed.evaluate({**values, "f:l1": 1, "f:fc": 0}, ["weight_bits"])["weight_bits"]
    fc1 = (64 * 16) * 4  # mlp on 8x8 digits: fc1 is 64 -> 16, at 4 bits
    assert one == affine["weight_bits"] + fc1


def test_mpq_json_describes_the_formats_of_the_configuration_asked_for(mixed):
    values = {"l1": 4, "w:fc": 4, "f:l1": 1, "f:fc": 0}
    mixed.evaluate({**values, "f:l1": 0, "f:fc": 1}, ["qerror"])  # the model is left in other formats
    layers = {layer["name"]: layer for layer in mixed.describe_quantizers(values)["layers"]}
    assert layers["w:fc1"]["format"] == "fixed_point" and "fraction_length" in layers["w:fc1"]
    assert layers["w:fc"]["format"] == "affine" and "fraction_length" not in layers["w:fc"]
