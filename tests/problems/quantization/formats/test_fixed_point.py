"""Fixed-point arithmetic by hand, the exact FL search against brute force, WL initialisation,
and the fixed-point quantizers inside TensorQuantizer / QuantizedModel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from problems.quantization.formats import fixed_point as fp
from problems.quantization.formats.affine import fake_quantize
from problems.quantization.formats.fixed_point import (
    FixedPointFormat,
    brute_force_fraction_length,
    errors,
    fixed_point_params,
    fl_range,
    initial_word_length,
    integer_bits,
    search_fraction_length,
)
from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.qmodel import QuantizedModel


@pytest.mark.parametrize(
    ("wl", "fl", "x", "expected"),
    [
        # step 2^-2, integers [-8, 7] -> range [-2, 1.75]
        (4, 2, [0.3, -2.1, 1.9, 5, -5, 0.125], [0.25, -2, 1.75, 1.75, -2, 0]),
        # negative FL: step 4, integers [-4, 3] -> range [-16, 12]; 6/4 = 1.5 rounds to even (2)
        (3, -2, [5, 6, -7, 13, 100, -100], [4, 8, -8, 12, 12, -16]),
        # FL > WL: step 1/32, integers [-2, 1] -> range [-1/16, 1/32]
        (2, 5, [0.01, 0.02, 0.5, -0.05, -1], [0, 1 / 32, 1 / 32, -1 / 16, -1 / 16]),
        # 1 bit: integers [-1, 0]
        (1, 0, [0.7, -0.4, -0.6, -3], [0, 0, -1, -1]),
    ],
)
def test_fixed_point_grid_by_hand(wl, fl, x, expected):
    got = fake_quantize(torch.tensor(x), fixed_point_params(wl, fl))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32), rtol=0, atol=0)


def test_fl_range_and_params():
    assert fl_range(8) == (-40, 24) and fl_range(1) == (-33, 31) and fl_range(32) == (-64, 0)
    p = fixed_point_params(8, -3)
    assert (p.scale, p.inv_scale, p.qmin, p.qmax) == (8.0, 0.125, -128.0, 127.0)
    with pytest.raises(ValueError, match="word length"):
        fixed_point_params(33, 0)


def _tensors() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = []
    for scale in (1e-5, 3e-2, 1.0, 700.0, 2e6):
        out += [
            torch.randn(500, generator=g) * scale,  # gaussian
            torch.rand(300, generator=g) * scale,  # uniform, non-negative
            torch.randn(400, generator=g).pow(3) * scale,  # heavy tails
            torch.randint(-9, 10, (200,), generator=g).float() * scale,  # few levels
        ]
    out.append(torch.cat([torch.full((40,), 0.25), torch.tensor([7.0])]))  # not unimodal (below)
    out.append(torch.zeros(10))
    out.append(torch.tensor([3.0]))
    return out


def test_fl_search_equals_brute_force():
    cases = 0
    for x in _tensors():
        for wl in (1, 2, 4, 7, 12, 20):
            assert search_fraction_length(x, wl) == brute_force_fraction_length(x, wl), (x[:3], wl)
            cases += 1
    assert cases == 23 * 6


def test_error_is_not_unimodal_in_fl_so_plain_bisection_could_miss():
    # many 0.25s and one 7 at WL=4: FL=0 keeps the 7 (0.25s round away), FL=2 keeps the 0.25s
    # (the 7 clips to 1.75); FL=1 does neither
    x = torch.cat([torch.full((40,), 0.25), torch.tensor([7.0])]).double()
    e = {fl: errors(x, 4, fl)[0] for fl in (0, 1, 2)}
    assert e[1] > e[0] > e[2]
    assert search_fraction_length(x, 4) == 2


def test_fl_search_is_cheaper_than_brute_force(monkeypatch):
    calls = []
    original = fp.errors
    monkeypatch.setattr(fp, "errors", lambda *a: calls.append(a[2]) or original(*a))
    x = torch.randn(5000, generator=torch.Generator().manual_seed(1)) * 0.1
    best = search_fraction_length(x, 6)
    assert best == brute_force_fraction_length(x, 6)
    searched = len(calls) - 65  # brute force is the last 65 calls
    assert searched <= 15, searched


@pytest.mark.parametrize(
    ("max_abs", "int_bits"),
    [(0.0, 1), (0.01, 1), (0.9, 1), (1.0, 2), (1.9, 2), (2.0, 3), (3.0, 3), (4.0, 4), (127.5, 8), (128.0, 9)],
)
def test_integer_bits(max_abs, int_bits):
    assert integer_bits(max_abs) == int_bits
    assert max_abs < 2 ** (int_bits - 1)  # fits in the signed range with FL = 0 ...
    assert int_bits == 1 or max_abs >= 2 ** (int_bits - 2)  # ... and one bit fewer would not


def test_initial_word_length_is_integer_bits_plus_fraction_bits():
    assert initial_word_length(3.0) == 9 and initial_word_length(0.5) == 7
    assert initial_word_length(3.0, extra_fraction_bits=2) == 5
    assert initial_word_length(1e12) == 32  # capped


def test_format_samples_caches_and_feeds_the_quantizer(monkeypatch):
    fmt = FixedPointFormat(sample_size=1000, seed=3)
    batches = [torch.randn(8, 300, generator=torch.Generator().manual_seed(i)) * (i + 1) for i in range(3)]
    for b in batches:
        fmt.collect(b)
    everything = torch.cat([b.reshape(-1) for b in batches])
    assert fmt.values.numel() == 1002 and torch.isin(fmt.values, everything).all()
    assert fmt.values.min() == everything.min() and fmt.values.max() == everything.max()  # always kept
    assert fmt.max_abs == everything.abs().max().item()  # over all values, not just the sample
    again = FixedPointFormat(sample_size=1000, seed=3)
    for b in batches:
        again.collect(b)
    assert torch.equal(again.values, fmt.values)  # seeded
    q = TensorQuantizer(4, fixed_point=FixedPointFormat(), label="q")
    w = torch.randn(64, generator=torch.Generator().manual_seed(7))
    q.begin_calibration()
    q(w)
    q.end_calibration()
    fl = search_fraction_length(w, 4)
    torch.testing.assert_close(q(w), fake_quantize(w, fixed_point_params(4, fl)), rtol=0, atol=0)
    q.num_bits = 9
    fl9 = search_fraction_length(w, 9)
    torch.testing.assert_close(q(w), fake_quantize(w, fixed_point_params(9, fl9)), rtol=0, atol=0)
    assert "fixed point" in repr(q)

    calls = []
    monkeypatch.setattr(fp, "search_fraction_length", lambda x, wl: calls.append(wl) or 5)
    assert [fmt.fraction_length(w) for w in (4, 4, 6, 4)] == [5, 5, 5, 5] and calls == [4, 6]  # cached


def test_quantized_model_fixed_point_with_bias_quantizers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3, bias=False)).eval()
    model[1].running_mean.uniform_(-1, 1)
    x = torch.randn(32, 6)
    qm = QuantizedModel(model, number_format="fixed_point", quantize_biases=True, act_samples=50)
    qm.calibrate([x[:16], x[16:]])
    assert list(qm.bias_quantizers) == ["0"]  # layer "3" has no bias
    assert qm.weight_quantizers["0"].axis is None  # one FL per tensor
    assert all(q.mode == "symmetric" for q in qm.act_quantizers.values())  # signed even after ReLU
    assert qm.act_quantizers["2"].fixed_point.values.numel() == 52  # 50 sampled + min and max
    layer = qm.model[0]
    folded_bias = qm._float_biases["0"].clone()
    qm.set_bits(weights={"0": 3}, biases={"0": 2})
    assert qm.bits()["biases"] == {"0": 2}
    fl = search_fraction_length(folded_bias, 2)
    torch.testing.assert_close(layer.bias, fake_quantize(folded_bias, fixed_point_params(2, fl)))
    assert layer.bias is not None and qm.quantized_bias("0", 2) is qm.quantized_bias("0", 2)  # cached
    assert qm.quantized_weight("0", 3).data_ptr() == layer.weight.data_ptr()  # the cache, by reference
    with qm.float_mode():
        assert torch.equal(layer.bias, folded_bias)
    assert torch.equal(layer.bias, qm.quantized_bias("0", 2))
    with torch.inference_mode():
        low = (qm(x) - model(x)).abs().mean().item()
        acts = {n: 16 for n in qm.act_quantizers}
        qm.set_bits(weights={"0": 16, "3": 16}, activations=acts, biases={"0": 16})
        high = (qm(x) - model(x)).abs().mean().item()
    assert high < 1e-3 < low
