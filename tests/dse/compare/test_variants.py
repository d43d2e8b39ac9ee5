"""`compare.variants`: one comparison on variants of the problem, measured together."""

import json

import pandas as pd
import pytest

from tests.dse.helpers import run_cli, write_config

pytestmark = pytest.mark.slow  # end-to-end: runs the CLI


def test_variants_run_apart_and_are_compared_together(tmp_path, capsys):
    variants = {"plain": {}, "fewer": {"toy.choices": [2, 4, 8]}}
    path = write_config(
        tmp_path, compare={"algorithms": ["random"], "seeds": [0], "budget": 20, "variants": variants}
    )
    assert run_cli("compare", str(path), "--quiet") == 0
    out = tmp_path / "results" / "toy" / "compare"
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table.algorithm) == ["fewer", "plain"]
    assert (table.evaluations == 20).all()
    for name in variants:  # each variant's own comparison too
        own = pd.read_csv(out / "variants" / name / "comparison.csv")
        assert own.algorithm.tolist() == [name]
    # the variants' fronts differ: the smaller space cannot reach 3- or 6-bit sizes
    fewer = pd.read_csv(next((out / "variants" / "fewer" / "runs").iterdir()) / "evaluations.csv")
    values = fewer.filter(regex=r"^x\d+$")
    assert values.shape[1] == 4 and set(values.stack().unique()) <= {2, 4, 8}


def test_several_algorithms_are_labelled_variant_algorithm(tmp_path):
    variants = {"a": {}, "b": {"toy.choices": [2, 8]}}
    compare = {"algorithms": ["random", "nsga2"], "seeds": [0], "budget": 16, "variants": variants}
    assert run_cli("compare", str(write_config(tmp_path, compare=compare)), "--quiet") == 0
    table = pd.read_csv(tmp_path / "results" / "toy" / "compare" / "comparison.csv")
    assert sorted(table.algorithm) == ["a-nsga2", "a-random", "b-nsga2", "b-random"]


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"v": {"objectives": ["accuracy"]}}, "compare.variants.v.objectives: variants change the problem"),
        ({"v w": {}}, "compare.variants.v w: use letters"),
        ({"v": {"toy.n_var": 0}}, "compare.variants.v"),
    ],
)
def test_bad_variants_are_refused_before_anything_runs(tmp_path, capsys, variants, message):
    compare = {"algorithms": ["random"], "budget": 10, "variants": variants}
    assert run_cli("compare", str(write_config(tmp_path, compare=compare)), "--quiet") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "toy" / "compare" / "comparison.csv").exists()


def test_a_variant_whose_problem_refuses_is_skipped_with_its_reason(tmp_path, capsys):
    variants = {"ok": {}, "low": {"toy.choices": [2, 3]}}  # all at 3 bits misses the 5-point constraint
    compare = {"algorithms": ["random"], "budget": 12, "variants": variants}
    assert run_cli("compare", str(write_config(tmp_path, compare=compare)), "--quiet") == 0
    out = tmp_path / "results" / "toy" / "compare"
    assert pd.read_csv(out / "comparison.csv").algorithm.tolist() == ["ok"]
    (skip,) = json.loads((out / "skipped.json").read_text())
    assert skip["algorithm"] == "low" and "no configuration can meet" in skip["reason"]
    assert "skipped low seed all: " in capsys.readouterr().out
