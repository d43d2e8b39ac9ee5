"""Calibrators on tensors with known statistics."""

from __future__ import annotations

import pytest
import torch

from problems.quantization.formats.affine import fake_quantize, qparams
from problems.quantization.formats.calibration import (
    MaxCalibrator,
    MseCalibrator,
    PercentileCalibrator,
    make_calibrator,
)


def mse(x: torch.Tensor, amax: torch.Tensor, bits: int) -> float:
    return ((fake_quantize(x, qparams(amax, None, bits, "symmetric")) - x) ** 2).mean().item()


def test_max_tracks_signed_extremes_over_batches():
    c = MaxCalibrator()
    c.collect(torch.tensor([[1.0, -5.0], [2.0, 0.0]]))
    c.collect(torch.tensor([3.0]))
    assert c.samples_seen == 3 and c.batches_seen == 2
    assert c.compute_amax(8).item() == 5.0
    assert c.compute_amax(8, mode="unsigned").item() == 3.0
    assert [t.item() for t in c.compute_range(8)] == [-5.0, 3.0]
    c.reset()
    assert c.samples_seen == 0 and c.min_seen is None


def test_max_per_channel_keeps_a_broadcastable_shape():
    c = MaxCalibrator(axis=1)
    x = torch.arange(24.0).reshape(2, 3, 4) - 12
    c.collect(x)
    amax = c.compute_amax(4)
    assert amax.shape == (1, 3, 1)
    torch.testing.assert_close(amax.flatten(), x.abs().amax(dim=(0, 2)))


def test_percentile_of_abs_values():
    x = torch.arange(1.0, 10001.0)
    width = 10000 / 2048  # histogram resolution
    c = PercentileCalibrator(99.0)
    c.collect(x[:5000])
    c.collect(-x[5000:])  # the sign does not matter for symmetric
    assert c.compute_amax(8).item() == pytest.approx(9900, abs=width)
    full = PercentileCalibrator(100.0)
    full.collect(x)
    assert full.compute_amax(8).item() == 10000.0  # never beyond, and exactly, the observed max


def test_percentile_sign_handling_for_unsigned_and_asymmetric():
    x = torch.cat([torch.arange(1.0, 1001.0), -torch.arange(1.0, 4001.0)])
    c = PercentileCalibrator(90.0)
    c.collect(x)
    width = 4000 / 2048
    # unsigned: negatives count as 0 (they clamp there); 90% of 5000 values -> the 500th largest is 500
    assert c.compute_amax(8, mode="unsigned").item() == pytest.approx(500, abs=width)
    lo, hi = c.compute_range(8, mode="asymmetric")
    assert hi.item() == pytest.approx(torch.quantile(x, 0.9).item(), abs=width)
    assert lo.item() == pytest.approx(torch.quantile(x, 0.1).item(), abs=width)
    neg = PercentileCalibrator(99.0)
    neg.collect(-torch.rand(100))
    assert neg.compute_amax(8, mode="unsigned").item() == 0.0


def test_percentile_histogram_grows_and_merges_exactly():
    torch.manual_seed(0)
    batches = [torch.rand(4000), 10 * torch.rand(4000), 1000 * torch.rand(4000)]
    c = PercentileCalibrator(99.0, num_bins=64)
    for b in batches:
        c.collect(b)
    assert c._hist.pos.sum().item() == 12000  # merging keeps every count
    assert len(c._hist.pos) <= 128
    expected = torch.quantile(torch.cat(batches), 0.99).item()
    assert c.compute_amax(8).item() == pytest.approx(expected, abs=c._hist.width)


def test_percentile_per_channel_uses_raw_values():
    torch.manual_seed(0)
    w = torch.randn(4, 200)
    c = PercentileCalibrator(90.0, axis=0)
    c.collect(w)
    amax = c.compute_amax(8)
    assert amax.shape == (4, 1)
    k = torch.tensor([torch.sort(row.abs()).values[179].item() for row in w])  # 180th of 200 values
    torch.testing.assert_close(amax.flatten(), k)


def test_mse_beats_max_on_a_tensor_with_an_outlier():
    torch.manual_seed(0)
    x = torch.randn(20000)
    x[0] = 60.0
    c = MseCalibrator()
    c.collect(x)
    amax4, amax8 = c.compute_amax(4), c.compute_amax(8)
    assert amax4.item() < 10 < 60 == x.abs().max().item()
    assert mse(x, amax4, 4) < 0.2 * mse(x, x.abs().max(), 4)
    assert amax4 < amax8  # more bits: less clipping pays off
    assert mse(x, amax8, 8) <= mse(x, x.abs().max(), 8)


def test_mse_is_cached_per_bits_and_reset_by_new_data():
    torch.manual_seed(0)
    c = MseCalibrator()
    c.collect(torch.randn(1000))
    first = c.compute_range(4, "symmetric")
    assert c.compute_range(4, "symmetric") is first
    assert c.compute_range(5, "symmetric") is not first
    c.collect(torch.randn(1000))
    assert c.compute_range(4, "symmetric") is not first


def test_mse_per_channel_and_all_zero():
    torch.manual_seed(0)
    w = torch.randn(3, 500) * torch.tensor([[1.0], [5.0], [0.1]])
    c = MseCalibrator(axis=0)
    c.collect(w)
    amax = c.compute_amax(3)
    assert amax.shape == (3, 1)
    for row, a in zip(w, amax):
        assert mse(row, a[0], 3) <= mse(row, row.abs().max(), 3)
    z = MseCalibrator()
    z.collect(torch.zeros(10))
    assert z.compute_amax(4).item() == 0.0


def test_make_calibrator_validates():
    assert isinstance(make_calibrator("percentile", percentile=99.0), PercentileCalibrator)
    with pytest.raises(ValueError, match="unknown calibrator"):
        make_calibrator("entropy")
    with pytest.raises(ValueError, match="percentile"):
        PercentileCalibrator(0.0)
