"""One mpq.json layout: bisection and pick write the same schema (docs/mpq.schema.json)."""

import copy

import jsonschema
import pytest

from dse.core.config import parse_config
from dse.core.registry import PROBLEMS
from dse.results.pick import pick, write_pick
from dse.results.rundata import load_run
from tests.dse.runs import read_json, run_toy
from tests.mpq_schema import validate_mpq


def test_bisection_and_pick_write_the_same_valid_schema(tmp_path):
    bis = run_toy(tmp_path, "bisection", toy={"n_var": 5}, out="bis")
    doc = validate_mpq(read_json(bis, "mpq.json"))
    assert doc["bisection"]["result"] and {x["name"]: x["bits"] for x in doc["layers"]} == doc["bits"]

    moea = run_toy(tmp_path, "nsga2", budget=60, toy={"n_var": 5}, out="moea")
    run = load_run(moea.run_dir)
    problem = PROBLEMS.problem_class("toy").from_config(parse_config(run.config))
    path = write_pick(run, pick(run, max_drop=3.0), problem)
    picked = validate_mpq(path)
    assert set(picked) - {"pick"} == set(doc) - {"bisection"}  # same layout, one writer's key each
    assert picked["source"]["eval_id"] == pick(run, max_drop=3.0).evaluation.eval_id


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["layers"][0].pop("dtype"),
        lambda d: d["layers"][0].update(dtype="float8"),
        lambda d: d.update(format="dse-mpq/1"),
        lambda d: d.pop("bisection"),  # no writer's record
        lambda d: d.update(default_quantization_bits=4),  # the round-2 bisection field
    ],
)
def test_the_schema_refuses_what_breaks_the_layout(tmp_path, spoil):
    doc = read_json(run_toy(tmp_path, "bisection", toy={"n_var": 3}), "mpq.json")
    validate_mpq(doc)
    bad = copy.deepcopy(doc)
    spoil(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate_mpq(bad)
