import pytest

from dse.core.config import parse_config
from dse.core.registry import PROBLEMS


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    cfg = parse_config(
        {
            "experiment": {"name": "q", "threads": 2},
            "model": {"name": "mlp", "options": {"hidden": [32]}},
            "data": {"name": "digits", "image_size": 8},
            "training": {"epochs": 2},
            "output": {"root": str(root)},
        }
    )
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)


def test_held_out_accuracy_is_the_test_split_under_the_given_bits(problem):
    high = {v.name: v.choices[-1] for v in problem.variables}
    low = {v.name: v.choices[0] for v in problem.variables}
    got = problem.evaluate_held_out(low)
    assert set(got) == {"test_accuracy"} and 0 <= got["test_accuracy"] <= 100
    problem.apply(problem.unit_bits(low))
    assert got["test_accuracy"] == problem.engine.accuracy("test")
    # at the highest choice the quantized model is close to the float one on the same split
    assert problem.evaluate_held_out(high)["test_accuracy"] == pytest.approx(
        problem.reference()["test_accuracy"], abs=5
    )
    # validation is untouched: evaluate() still measures the validation split
    val = problem.evaluate(high, ["accuracy"])["accuracy"]
    problem.apply(problem.unit_bits(high))
    assert val == problem.engine.accuracy("val")
