"""Cost metrics on a hand-built model whose MACs are counted here: bops = sum over weight layers of
MACs per sample x weight bits x bits of the activation quantizer feeding the layer (32 where no
quantizer feeds it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.core.config import parse_config
from dse.core.errors import ConfigError
from dse.core.objectives import Constraint, Objectives
from dse.core.space import SearchSpace
from dse.run.setup import pin_cost_free
from problems.quantization.problem import LayerwiseQuantizationProblem
from problems.quantization.qmodel import QuantizedModel


class Tiny(nn.Module):
    """input (1, 6, 6) -> conv1 -> conv2 (fed by conv1 directly: no quantizer between) -> relu ->
    flatten -> fc. Quantized activations: the input, relu and fc outputs (types ReLU and Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 4, 3, stride=2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.relu(self.conv2(self.conv1(x)))))


# MACs per sample = output elements x weights per output element
CONV1 = (2 * 6 * 6) * (1 * 3 * 3)  # 648, fed by the input quantizer
CONV2 = (4 * 2 * 2) * (2 * 3 * 3)  # 288: (6 - 3) // 2 + 1 = 2 per side; fed by no quantizer
FC = 3 * 16  # 48, fed by relu's quantizer (flatten is a view of its output)
WEIGHT_BITS, ACT_BITS = 7, 6  # the bits of quantizers that are not searched


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = Tiny().eval()
    cfg = parse_config(
        {
            "experiment": {"name": "bops"},
            "quantization": {"weight_bits": WEIGHT_BITS, "activation_bits": ACT_BITS},
            "search_space": {  # fc's weights and the relu / fc outputs keep the bits above
                "weights": {"bounds": [2, 8], "exclude": "^fc$"},
                "activations": {"bounds": [2, 8], "include": "^input$"},
            },
        }
    )
    qmodel = QuantizedModel(model, weight_bits=WEIGHT_BITS, act_bits=ACT_BITS)
    stats = qmodel.layer_stats(torch.randn(2, 1, 6, 6))  # two samples: counts are per sample
    return LayerwiseQuantizationProblem(qmodel, None, cfg, {"accuracy": 100.0}, stats, model)


def test_the_model_is_what_the_test_assumes(problem):
    assert [v.name for v in problem.variables] == ["w:conv1", "w:conv2", "a:input"]
    assert set(problem.qmodel.act_quantizers) == {"input", "relu", "fc"}


FIXED = FC * WEIGHT_BITS * ACT_BITS  # fc: weights and input quantizer not searched


@pytest.mark.parametrize(
    ("values", "bops"),
    [
        # conv1: 648 x 3 x 4 (the input at 4 bits); conv2: 288 x 5 x 32 (no quantizer); fc: 48 x 7 x 6
        ({"w:conv1": 3, "w:conv2": 5, "a:input": 4}, CONV1 * 3 * 4 + CONV2 * 5 * 32 + FIXED),
        ({"w:conv1": 8, "w:conv2": 2, "a:input": 8}, CONV1 * 8 * 8 + CONV2 * 2 * 32 + FIXED),
        ({"w:conv1": 2, "w:conv2": 2, "a:input": 2}, CONV1 * 2 * 2 + CONV2 * 2 * 32 + FIXED),
    ],
)
def test_bops_by_hand(problem, values, bops):
    got = problem.evaluate(values, ["bops", "weight_bits", "total_bits"])
    assert got["bops"] == bops
    params = {"conv1": 2 * 1 * 9, "conv2": 4 * 2 * 9, "fc": 3 * 16}  # kernels only (affine: biases float)
    assert got["weight_bits"] == (
        params["conv1"] * values["w:conv1"] + params["conv2"] * values["w:conv2"] + params["fc"] * WEIGHT_BITS
    )
    assert got["total_bits"] == sum(values.values())


@pytest.mark.parametrize(
    ("objectives", "pinned"),
    [
        (["accuracy", "weight_bits"], {"a:input": 8}),  # activation bits change no weight size
        (["accuracy", "weight_bits", "bops"], {}),  # they change the compute
        (["accuracy", "total_bits"], {}),
    ],
)
def test_activations_are_pinned_where_no_cost_objective_sees_them(problem, objectives, pinned):
    got = pin_cost_free(problem, Objectives.of(problem, objectives), Constraint())
    assert got == pinned
    space = SearchSpace(problem.variables, got)
    assert space.decode(space.lowest()) == {"w:conv1": 2, "w:conv2": 2, "a:input": 2, **pinned}


def test_a_space_with_nothing_to_trade_is_refused():
    cfg = parse_config({"search_space": {"weights": None, "activations": {"bounds": [2, 8]}}})
    torch.manual_seed(0)
    model = Tiny().eval()
    qmodel = QuantizedModel(model, weight_bits=WEIGHT_BITS, act_bits=ACT_BITS)
    stats = qmodel.layer_stats(torch.randn(2, 1, 6, 6))
    acts = LayerwiseQuantizationProblem(qmodel, None, cfg, {"accuracy": 100.0}, stats, model)
    with pytest.raises(ConfigError, match="no searched variable changes weight_bits.*pin_cost_free: false"):
        pin_cost_free(acts, Objectives.of(acts, ["accuracy", "weight_bits"]), Constraint())


def test_model_bits_add_every_parameter_left_float_at_32_bits(problem):
    values = {"w:conv1": 3, "w:conv2": 5, "a:input": 4}
    got = problem.evaluate(values, ["model_bits", "weight_bits"])
    kernels = {"conv1": 2 * 1 * 9, "conv2": 4 * 2 * 9, "fc": 3 * 16}
    biases = {"conv1": 2, "conv2": 4, "fc": 3}  # float: affine quantizes no bias
    assert got["model_bits"] == got["weight_bits"] + 32 * sum(biases.values())
    every = sum(kernels.values()) + sum(biases.values())  # 147
    eight = (
        (kernels["conv1"] + kernels["conv2"]) * 8 + kernels["fc"] * WEIGHT_BITS + 32 * sum(biases.values())
    )
    assert problem.size_baselines("model_bits") == {"float": every * 32, "8-bit": eight}
    (note,) = problem.notes()  # 4 / 147 = 2.7 %, 3 / 147 = 2.0 %, 2 / 147 = 1.4 %
    assert "conv2.bias 2.7 %, fc.bias 2.0 %, conv1.bias 1.4 %" in note
