"""`dse formats CONFIG`: every format x bits on one model, checked against problems built in each
format on their own."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from dse.cli import main
from dse.core.config import parse_config
from dse.core.registry import PROBLEMS

CONFIG = {
    "experiment": {"name": "s"},
    "execution": {"threads": 2},
    "model": {"name": "mlp", "options": {"hidden": [16]}},
    "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
    "training": {"epochs": 1},
    "quantization": {"weights": {"calibrator": "max"}},
    "search_space": {"weights": {"choices": [2, 4]}},
}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("survey")
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "output": {"root": str(tmp / "results")}}))
    out = tmp / "table.csv"
    assert (
        main(
            [
                "formats",
                str(path),
                "--formats",
                "affine,lq,log2",
                "--bits",
                "1,3,4",
                "--csv",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return tmp, pd.read_csv(out)


def test_every_format_and_bit_width_gets_a_row_and_impossible_ones_are_blank(survey):
    _, table = survey
    assert list(zip(table.format, table.bits)) == [
        (f, b) for f in ("affine", "lq", "log2") for b in (1, 3, 4)
    ]
    log2_1 = table[(table.format == "log2") & (table.bits == 1)]
    assert log2_1.accuracy.isna().all() and log2_1.weight_mse.isna().all()  # signed log2 needs 2 bits
    for b in (3, 4):
        at = table[table.bits == b].set_index("format")
        assert at.weight_mse["lq"] <= at.weight_mse["affine"]


@pytest.mark.parametrize("fmt", ["affine", "lq"])
def test_each_row_is_the_accuracy_of_a_problem_built_in_that_format(survey, fmt):
    tmp, table = survey
    cfg = parse_config({**CONFIG, "quantization": {"weights": {"calibrator": "max", "format": fmt}},
                        "output": {"root": str(tmp / "results")}})  # fmt: skip
    problem = PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)
    for b in (3, 4):
        values = {v.name: b for v in problem.variables}
        expected = problem.evaluate(values, ["accuracy"], within_space=False)["accuracy"]
        row = table[(table.format == fmt) & (table.bits == b)]
        assert row.accuracy.item() == pytest.approx(expected)


def test_bad_bits_and_formats_are_one_line_errors(survey, capsys):
    tmp, _ = survey
    for args, message in [
        (["--bits", "9-x"], "--bits: expected 'lo-hi' or a comma list"),
        (["--bits", "0,4"], "--bits: bit widths must be in 1-32"),
        (["--formats", "affine,posit"], "--formats: unknown format 'posit'"),
    ]:
        assert main(["formats", str(tmp / "exp.yaml"), "--quiet", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
