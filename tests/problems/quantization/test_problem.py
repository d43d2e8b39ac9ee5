"""LayerwiseQuantizationProblem on a tiny MLP (digits 8x8, 1 epoch): variables, ties, costs,
depths and initial values, fixed point end to end."""

from __future__ import annotations

import pytest
import torch

from dse.core.config import parse_config
from dse.core.errors import ConfigError
from dse.core.registry import PROBLEMS
from problems.quantization.formats.fixed_point import initial_word_length


def _config(root, **quantization):
    return parse_config(
        {
            "experiment": {"name": "q"},
            "execution": {"threads": 2},
            "model": {"name": "mlp", "options": {"hidden": [16]}},
            "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
            "training": {"epochs": 1},
            "quantization": quantization,
            "search_space": {
                "weights": {"bounds": [2, 12]},
                "activations": {"bounds": [4, 12]},
                "ties": {"l1": "^fc1$"},
            },
            "output": {"root": str(root)},
        }
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("problem")  # one baseline cache for both problems


@pytest.fixture(scope="module")
def fixed(root):
    cfg = _config(root, format="fixed_point", fixed_point={"biases": True})
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)


def test_variables_ties_and_bias_units(fixed):
    # mlp: flatten -> fc1 -> relu1 -> fc; the tie takes fc1's weight, bias and output quantizers
    members = {v.name: v.members for v in fixed.variables}
    assert members == {
        "l1": ("w:fc1", "b:fc1", "a:fc1"),
        "w:fc": ("w:fc",),
        "b:fc": ("b:fc",),
        "a:input": ("a:input",),
        "a:relu1": ("a:relu1",),
        "a:fc": ("a:fc",),
    }
    choices = {v.name: v.choices for v in fixed.variables}
    assert choices["l1"] == tuple(range(4, 13)) and choices["b:fc"] == tuple(range(2, 13))


def test_weight_bits_count_kernels_and_biases(fixed):
    values = {"l1": 5, "w:fc": 3, "b:fc": 7, "a:input": 8, "a:relu1": 6, "a:fc": 9}
    got = fixed.evaluate(values, ["weight_bits", "total_bits"])
    # fc1: 64x16 weights + 16 biases at 5 bits; fc: 16x10 weights at 3, 10 biases at 7
    assert got["weight_bits"] == 64 * 16 * 5 + 16 * 5 + 16 * 10 * 3 + 10 * 7
    assert got["total_bits"] == 3 * 5 + 3 + 7 + 8 + 6 + 9


def test_size_baselines_are_the_float_model_and_every_searched_weight_at_8_bits(fixed):
    # fc1 64x16 + 16 biases, fc 16x10 + 10 biases: 1210 numbers, all of them counted by weight_bits
    assert fixed.SIZE_METRICS == {"weight_bits": "bits", "model_bits": "bits"}
    assert fixed.size_baselines("weight_bits") == {"float": 1210 * 32, "8-bit": 1210 * 8}
    # every parameter has a quantizer (biases too: fixed_point.biases), so the model is the weights
    assert fixed.size_baselines("model_bits") == {"float": 1210 * 32, "8-bit": 1210 * 8}
    eight = fixed.evaluate({v.name: 8 for v in fixed.variables}, ["weight_bits"], within_space=False)
    assert eight["weight_bits"] == 1210 * 8  # the "8-bit" reference configuration
    assert fixed.size_baselines("bops") == {}


def test_depths_are_the_longest_paths_of_the_members(fixed):
    # flatten 1, fc1 2, relu1 3, fc 4; the input quantizer is 0
    assert fixed.depths() == {"l1": 2, "w:fc": 4, "b:fc": 4, "a:input": 0, "a:relu1": 3, "a:fc": 4}
    assert fixed.depth_source() == "torch.fx"


def test_initial_values_follow_the_seed_rule(fixed):
    qm = fixed.qmodel
    tensors = {
        "w:fc1": qm.weight_quantizers["fc1"],
        "b:fc1": qm.bias_quantizers["fc1"],
        "a:fc1": qm.act_quantizers["fc1"],
        "w:fc": qm.weight_quantizers["fc"],
        "a:relu1": qm.act_quantizers["relu1"],
    }
    wl = {u: initial_word_length(q.fixed_point.max_abs, 6) for u, q in tensors.items()}
    assert wl["w:fc"] == initial_word_length(qm.float_weight("fc").abs().max().item(), 6)
    init = fixed.initial_values()
    assert init["l1"] == min(12, max(4, wl["w:fc1"], wl["b:fc1"], wl["a:fc1"]))
    assert init["w:fc"] == min(12, wl["w:fc"]) and init["a:relu1"] == min(12, max(4, wl["a:relu1"]))
    assert all(init[v.name] in v.choices for v in fixed.variables)


def test_fixed_point_evaluates_end_to_end(fixed):
    reference = fixed.reference()["accuracy"]
    high = fixed.evaluate({v.name: v.choices[-1] for v in fixed.variables})
    low = fixed.evaluate({v.name: v.choices[0] for v in fixed.variables})
    start = fixed.evaluate(fixed.initial_values(), ["accuracy", "qerror"])
    assert abs(high["accuracy"] - reference) <= 1.0 and abs(start["accuracy"] - reference) <= 3.0
    assert low["accuracy"] < high["accuracy"]
    assert high["qerror"] < start["qerror"] < low["qerror"]


def test_weights_are_quantized_once_per_bits_and_swapped_in_by_reference(fixed):
    qm = fixed.qmodel
    layer = dict(qm.model.named_modules())["fc"]
    float_w = fixed.float_model.fc.weight.detach().clone()  # mlp: no BatchNorm, the folded weight is it
    q = qm.weight_quantizers["fc"]

    def by_hand(wl: int) -> torch.Tensor:  # fixed point: clamp(round(w * 2^FL)) * 2^-FL
        fl = q.fixed_point.fraction_length(wl)
        return (float_w * 2.0**fl).round().clamp(-(2 ** (wl - 1)), 2 ** (wl - 1) - 1) * 2.0**-fl

    base = {v.name: v.choices[-1] for v in fixed.variables}
    fixed.apply(fixed.unit_bits({**base, "w:fc": 3}))
    three = qm.quantized_weight("fc", 3)
    assert layer.weight.data_ptr() == three.data_ptr()  # the cached tensor itself, not a copy
    assert torch.equal(three, by_hand(3)) and torch.equal(three, q.quantize_tensor(float_w, 3))
    assert len(three.unique()) <= 8 and not torch.equal(three, float_w)
    out3 = fixed.evaluate({**base, "w:fc": 3}, ["qerror"])["qerror"]

    fixed.apply(fixed.unit_bits({**base, "w:fc": 5}))  # other bits: another tensor, other values
    assert layer.weight.data_ptr() == qm.quantized_weight("fc", 5).data_ptr() != three.data_ptr()
    assert torch.equal(layer.weight, by_hand(5)) and not torch.equal(layer.weight, three)
    assert fixed.evaluate({**base, "w:fc": 5}, ["qerror"])["qerror"] < out3

    fixed.apply(fixed.unit_bits({**base, "w:fc": 3}))  # back: the very tensor cached before, unchanged
    assert layer.weight.data_ptr() == three.data_ptr() and qm.quantized_weight("fc", 3) is three
    assert torch.equal(three, by_hand(3))
    assert fixed.evaluate({**base, "w:fc": 3}, ["qerror"])["qerror"] == out3
    # quantizing never wrote into the float weight, which float mode still runs
    assert torch.equal(qm.float_weight("fc"), float_w)
    with qm.float_mode():
        assert torch.equal(layer.weight, float_w)
    assert layer.weight.data_ptr() == three.data_ptr()


def test_affine_problem_has_depths_but_no_initial_values(root):
    cfg = _config(root)
    affine = PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)
    assert affine.initial_values() is None
    assert [v.name for v in affine.variables] == ["l1", "w:fc", "a:input", "a:relu1", "a:fc"]
    assert affine.depths()["l1"] == 2 and affine.depth_source() == "torch.fx"
    # affine weight_bits counts kernels only (64x16 + 16x10 = 1184): so do its baselines
    assert affine.size_baselines("weight_bits") == {"float": 1184 * 32, "8-bit": 1184 * 8}


def test_bias_option_needs_fixed_point(root):
    with pytest.raises(ConfigError, match="quantization: fixed_point.biases needs format: fixed_point"):
        _config(root, fixed_point={"biases": True})
