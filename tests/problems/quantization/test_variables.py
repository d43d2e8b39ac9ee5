"""`_variables`: the searched units of a model, grouped by ties, and the one-line refusals of a search
space that leaves nothing to search or cannot be tied. No model is built: the quantizer names are given."""

from __future__ import annotations

import re

import pytest

from dse.core.config import parse_config
from dse.core.errors import DseError
from problems.quantization.variables import searched_variables as _variables

WEIGHTS = ["conv1", "layer1.conv", "fc"]
ACTS = ["input", "relu1", "layer1.relu", "fc"]


def _cfg(search_space, **quantization):
    return parse_config(
        {"experiment": {"name": "v"}, "quantization": quantization, "search_space": search_space}
    )


def _refused(cfg, message: str, biases=()) -> None:
    with pytest.raises(DseError, match=f"^{re.escape(message)}$"):
        _variables(cfg, WEIGHTS, ACTS, list(biases))


def test_units_in_model_order_grouped_by_ties():
    cfg = _cfg(
        {
            "weights": {"bounds": [2, 8], "exclude": "^fc$"},
            "activations": {"choices": [4, 6, 8, 12]},
            "ties": {"block": r"^layer1\."},
        }
    )
    got = [(v.name, v.choices, v.members) for v in _variables(cfg, WEIGHTS, ACTS)]
    assert got == [
        ("w:conv1", tuple(range(2, 9)), ("w:conv1",)),
        ("block", (4, 6, 8), ("w:layer1.conv", "a:layer1.relu")),  # choices both kinds offer
        ("a:input", (4, 6, 8, 12), ("a:input",)),
        ("a:relu1", (4, 6, 8, 12), ("a:relu1",)),
        ("a:fc", (4, 6, 8, 12), ("a:fc",)),
    ]


@pytest.mark.parametrize(
    ("search_space", "message"),
    [
        (
            {"weights": {"bounds": [2, 8], "include": "^nothing$"}},
            "search_space.weights: include/exclude leave no quantizer to search "
            "(known: conv1, layer1.conv, fc ...)",
        ),
        (
            {"weights": {"bounds": [2, 8], "exclude": "."}},
            "search_space.weights: include/exclude leave no quantizer to search "
            "(known: conv1, layer1.conv, fc ...)",
        ),
        (
            {"weights": None, "activations": {"bounds": [2, 8], "include": "conv"}},
            "search_space.activations: include/exclude leave no quantizer to search "
            "(known: input, relu1, layer1.relu, fc ...)",
        ),
        (
            {"weights": {"bounds": [2, 8]}, "ties": {"t": "^relu1$"}},  # relu1 is an activation: not searched
            "search_space.ties.t: the pattern matches no searched quantizer",
        ),
        (
            {"weights": {"bounds": [2, 4]}, "activations": {"bounds": [6, 8]}, "ties": {"t": "^fc$"}},
            "search_space.ties.t: weights and activations in the tie share no bit choice",
        ),
        (
            {"weights": {"bounds": [1, 8]}},
            "search_space: affine quantizers need at least 2 bits, got 1",
        ),
        (
            {"weights": {"bounds": [2, 8]}, "activations": {"choices": [1, 4]}},
            "search_space: affine quantizers need at least 2 bits, got 1",
        ),
    ],
    ids=[
        "include",
        "exclude",
        "activations",
        "tie-matches-nothing",
        "tie-no-common-choice",
        "affine-1-bit",
        "affine-1-bit-activations",
    ],
)
def test_refusals_name_the_field_in_one_line(search_space, message):
    _refused(_cfg(search_space), message)


def test_fixed_point_allows_one_bit_and_biases_follow_the_weights():
    cfg = _cfg({"weights": {"bounds": [1, 4]}}, format="fixed_point", fixed_point={"biases": True})
    got = {v.name: v.choices for v in _variables(cfg, WEIGHTS, ACTS, ["fc"])}
    assert got == {
        "w:conv1": (1, 2, 3, 4),
        "w:layer1.conv": (1, 2, 3, 4),
        "w:fc": (1, 2, 3, 4),
        "b:fc": (1, 2, 3, 4),
    }
    # a weight filter that leaves no bias is fine (biases are optional), one that leaves no weight is not
    only_conv = _cfg({"weights": {"bounds": [2, 4], "include": "conv"}}, format="fixed_point")
    assert [v.name for v in _variables(only_conv, WEIGHTS, ACTS, ["fc"])] == ["w:conv1", "w:layer1.conv"]
