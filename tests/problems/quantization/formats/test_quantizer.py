"""TensorQuantizer arithmetic against hand-computed grids (scales chosen exact in binary)."""

from __future__ import annotations

import pytest
import torch

from dse.core.errors import DseError
from problems.quantization.formats.quantizer import BitsError, CalibrationError, TensorQuantizer


def quantizer(bits: int, amax, amin=None, **kw) -> TensorQuantizer:
    q = TensorQuantizer(bits, label="quantizer 'q'", **kw)
    q.set_amax(amax, amin)
    return q


def check(q: TensorQuantizer, x: list[float], expected: list[float]) -> None:
    x_t, e_t = torch.tensor(x, dtype=torch.float32), torch.tensor(expected, dtype=torch.float32)
    torch.testing.assert_close(q(x_t), e_t, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("bits", "amax", "x", "expected"),
    [
        # scale = amax / (2^(b-1) - 1); grid [-(2^(b-1)-1), 2^(b-1)-1]
        (2, 1.0, [-3, -0.7, -0.3, 0.2, 0.8, 5], [-1, -1, 0, 0, 1, 1]),
        (3, 1.5, [-2, -0.8, 0.2, 0.7, 1.3, 9], [-1.5, -1, 0, 0.5, 1.5, 1.5]),
        (4, 7.0, [-9, -3.4, 0.4, 2.6, 6.9, 7.6], [-7, -3, 0, 3, 7, 7]),
        (8, 31.75, [-40, -1.1, 0.13, 3.3, 31.9], [-31.75, -1, 0.25, 3.25, 31.75]),
    ],
)
def test_symmetric_narrow(bits, amax, x, expected):
    check(quantizer(bits, amax), x, expected)


def test_full_range_adds_one_negative_level():
    x = [-5, -3.6, 3.6]
    check(quantizer(3, 3.0, narrow_range=False), x, [-4, -4, 3])
    check(quantizer(3, 3.0), x, [-3, -3, 3])


@pytest.mark.parametrize(
    ("bits", "amax", "x", "expected"),
    [
        (2, 3.0, [-2, -0.2, 0.6, 1.4, 2.6, 7], [0, 0, 1, 1, 3, 3]),  # scale = amax / (2^b - 1)
        (4, 7.5, [-1, 0.2, 0.3, 3.1, 8], [0, 0, 0.5, 3, 7.5]),
    ],
)
def test_unsigned_clamps_at_zero(bits, amax, x, expected):
    check(quantizer(bits, amax, mode="unsigned"), x, expected)


@pytest.mark.parametrize(
    ("bits", "amin", "amax", "x", "expected"),
    [
        (2, -1.0, 2.0, [-3, -0.6, 0.4, 1.6, 5], [-1, -1, 0, 2, 2]),  # scale 1, zero point 1
        (3, -0.5, 3.0, [-2, -0.3, 0.8, 2.9, 4], [-0.5, -0.5, 1, 3, 3]),  # scale 0.5, zero point 1
        (2, -0.3, 1.2, [-1, 0, 1.2], [-0.5, 0, 1]),  # zero point round(0.6) = 1: 0 stays exact
    ],
)
def test_asymmetric(bits, amin, amax, x, expected):
    check(quantizer(bits, amax, amin, mode="asymmetric"), x, expected)


def test_one_bit_symmetric_is_sign_binarisation():
    check(quantizer(1, 0.5), [-2, -0.1, 0, 0.3], [-0.5, -0.5, 0.5, 0.5])
    check(quantizer(1, 3.0, mode="unsigned"), [-1, 1.4, 1.6, 9], [0, 0, 3, 3])


def test_per_channel_amax_broadcasts_along_axis():
    q = quantizer(2, torch.tensor([[1.0], [2.0]]), axis=0)
    w = torch.tensor([[0.6, -0.4, 3.0], [1.2, -3.1, 0.9]])
    torch.testing.assert_close(q(w), torch.tensor([[1.0, 0.0, 1.0], [2.0, -2.0, 0.0]]))


def test_per_channel_calibration_shape_and_values():
    q = TensorQuantizer(8, axis=1)
    q.begin_calibration()
    x = torch.zeros(2, 3, 4, 4)
    x[0, 0, 0, 0], x[1, 1, 2, 2], x[0, 2, 3, 1] = -2.0, 0.5, 4.0
    assert q(x) is x  # calibration mode passes the tensor through
    q.end_calibration()
    assert q.amax.shape == (1, 3, 1, 1)
    torch.testing.assert_close(q.amax.flatten(), torch.tensor([2.0, 0.5, 4.0]))


def test_straight_through_gradient_is_one_inside_range():
    q = quantizer(4, 7.0)
    x = torch.tensor([-9.0, -3.4, 0.4, 7.6, 7.0], requires_grad=True)
    y = q(x)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), q(x.detach()))
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0]))


def test_num_bits_changes_in_place_with_cached_params():
    q = quantizer(8, 1.0)
    before = list(q.modules())
    assert q.scale == pytest.approx(1 / 127)
    q.num_bits = 4
    assert q.scale == pytest.approx(1 / 7)
    assert list(q.modules()) == before
    assert q.params(4) is q.params(4)
    check(q, [0.3], [2 / 7])


@pytest.mark.parametrize("bits", [0, 33, 2.5, "8"])
def test_invalid_bits(bits):
    with pytest.raises(BitsError, match="quantizer 'q'"):
        quantizer(8, 1.0).num_bits = bits
    assert issubclass(BitsError, ValueError) and issubclass(BitsError, DseError)


def test_asymmetric_needs_two_bits():
    with pytest.raises(ValueError, match="asymmetric"):
        TensorQuantizer(1, mode="asymmetric")
    q = quantizer(1, 1.0)  # symmetric 1 bit is fine ...
    with pytest.raises(BitsError):
        q.mode = "asymmetric"  # ... but not once asymmetric


def test_fast_path_leaves_input_alone_unless_inplace():
    q = quantizer(4, 7.0)
    x = torch.tensor([0.4, 2.6])
    with torch.inference_mode():
        y = q(x)
        assert y is not x and x.tolist() == pytest.approx([0.4, 2.6])
        z = q(x, inplace=True)
    assert z is x and x.tolist() == [0.0, 3.0]


def test_disabled_and_uncalibrated():
    q = TensorQuantizer(8, label="quantizer 'x'")
    x = torch.ones(3)
    with pytest.raises(CalibrationError, match="quantizer 'x' is not calibrated"):
        q(x)
    q.enabled = False
    assert q(x) is x


def test_calibration_errors_name_the_quantizer():
    q = TensorQuantizer(8, label="activation quantizer 'relu'")
    q.begin_calibration()
    with pytest.raises(CalibrationError, match="'relu' saw no data during calibration"):
        q.end_calibration()
    q.begin_calibration()
    q(torch.zeros(4, 2))
    with pytest.raises(CalibrationError, match=r"'relu' calibrated to amax 0 \(all-zero tensor\)"):
        q.end_calibration()
    assert not q.calibrated
    q.begin_calibration()
    q(torch.zeros(4, 2))
    q.end_calibration(allow_zero=True)  # zero range quantizes to 0 without dividing by zero
    assert q(torch.ones(2)).tolist() == [0.0, 0.0]


def test_quantize_tensor_any_bits_without_changing_state():
    q = quantizer(8, 7.0)
    torch.testing.assert_close(q.quantize_tensor(torch.tensor([2.6]), 4), torch.tensor([3.0]))
    assert q.num_bits == 8
