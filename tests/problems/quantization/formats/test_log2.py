"""The log2 (power-of-two) format by hand: levels and rounding at 2-4 bits, signed and unsigned,
ties and the zero threshold, per-channel scales, in place, and inside a TensorQuantizer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from problems.quantization.formats.log2 import Log2Format, Log2Grid, max_exponent


@dataclass
class StandIn:
    """What `grid(q, bits)` reads of a TensorQuantizer."""

    amax: object
    mode: str = "symmetric"
    axis: int | None = None
    narrow_range: bool = True
    label: str = "q"

    def range(self, bits: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hi = torch.as_tensor(self.amax, dtype=torch.float32)
        return (-hi if self.mode == "symmetric" else torch.zeros_like(hi)), hi


def grid(amax: object, bits: int, mode: str = "symmetric", axis: int | None = None) -> Log2Grid:
    return Log2Format().grid(StandIn(amax, mode, axis), bits)


def below(v: float) -> float:
    """The float32 just below v: the tie's other side."""
    return torch.nextafter(torch.tensor(v), torch.tensor(0.0)).item()


def check(g: Log2Grid, x: list[float], expected: list[float]) -> None:
    xt = torch.tensor(x)
    want = torch.tensor(expected)
    torch.testing.assert_close(g.quantize(xt), want, rtol=0, atol=0)
    same = xt.clone()
    assert g.quantize_(same) is same
    torch.testing.assert_close(same, want, rtol=0, atol=0)


def test_exponent_ranges():
    # signed: 2^(b-1) magnitude codes, one of them zero; unsigned: 2^b codes, one of them zero
    assert [max_exponent(b, True) for b in (2, 3, 4, 8)] == [0, 2, 6, 126]
    assert [max_exponent(b, False) for b in (1, 2, 3, 4)] == [0, 2, 6, 14]
    assert Log2Format().min_bits("symmetric") == 2 and Log2Format().min_bits("unsigned") == 1
    with pytest.raises(ValueError, match="at least 2 bits"):
        grid(1.0, 1)
    with pytest.raises(ValueError, match="modes"):
        Log2Format().grid(StandIn(1.0, "asymmetric"), 4)


def test_3_bit_signed_by_hand():
    # amax 1: levels 0, ±1/4, ±1/2, ±1. Boundaries (midpoints): 1/8 (zero), 3/8, 3/4; ties go up
    g = grid(1.0, 3)
    x = [0.0, 0.1, below(0.125), 0.125, 0.2, below(0.375), 0.375, 0.6, below(0.75), 0.75, 1.0, 7.0]
    q = [0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    check(g, x, q)
    check(g, [-v for v in x[1:]], [-v for v in q[1:]])  # odd symmetric
    sweep = g.quantize(torch.linspace(-3, 3, 20001))
    assert sweep.unique().tolist() == [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]
    assert g.clip == (-1.0, 1.0)


def test_ties_are_exact_for_any_scale():
    # r = |x|/s is one correctly rounded division: 6.1135316 / 8.151376 is exactly 0.75 in float32,
    # a tie, so it goes up to s (a multiply by float32(1/s) gives 0.74999994, hence s/2); same at 3/8
    s = 8.151376
    check(grid(s, 3), [6.1135316, -3.0567658], [s, -s / 2])


def test_4_bit_signed_by_hand():
    # amax 2: kmax 6, levels 0, ±2·2^-k = ±1/32 ... ±2; zero below 1/64; ties at 0.75·2·2^-k
    g = grid(2.0, 4)
    x = [below(1 / 64), 1 / 64, 0.04, below(3 / 64), 3 / 64, 0.2, 0.3, 0.4, 0.75, 1.4, 1.5, 2.5]
    q = [0.0, 1 / 32, 1 / 32, 1 / 32, 1 / 16, 1 / 4, 1 / 4, 1 / 2, 1.0, 1.0, 2.0, 2.0]
    check(g, x, q)
    check(g, [-v for v in x], [-v for v in q])
    levels = [2.0 * 2.0**-k for k in range(7)]
    sweep = g.quantize(torch.linspace(-3, 3, 200001))
    assert sweep.unique().tolist() == sorted([-v for v in levels] + [0.0] + levels)


def test_3_bit_unsigned_by_hand():
    # amax 1: 8 codes = 0 and 2^-k for k = 0..6; zero below 2^-7; negatives go to 0
    g = grid(1.0, 3, "unsigned")
    x = [-5.0, -0.3, 0.0, below(1 / 128), 1 / 128, 0.02, 3 / 256, 0.1, 0.3, 0.75, 0.9, 3.0]
    q = [0.0, 0.0, 0.0, 0.0, 1 / 64, 1 / 64, 1 / 64, 1 / 8, 1 / 4, 1.0, 1.0, 1.0]
    check(g, x, q)
    assert g.quantize(torch.linspace(-2, 2, 100001)).unique().tolist() == [0.0] + [
        2.0**-k for k in range(6, -1, -1)
    ]
    assert g.clip == (0.0, 1.0)


def test_4_bit_unsigned_by_hand():
    # amax 1: kmax 14, smallest level 2^-14, zero below 2^-15; 1e-3 lies between 2^-10 and 2^-9
    # (midpoint 0.75·2^-9 = 1.46e-3), so it goes to 2^-10
    g = grid(1.0, 4, "unsigned")
    x = [below(2.0**-15), 2.0**-15, 3 * 2.0**-16, 1e-3, 1.5e-3, 0.7, -1e-3]
    q = [0.0, 2.0**-14, 2.0**-14, 2.0**-10, 2.0**-9, 0.5, 0.0]
    check(g, x, q)
    assert g.quantize(torch.linspace(0, 1, 1 << 20)).unique().numel() == 16  # all 2^4 codes used


def test_2_bit_signed_and_1_bit_unsigned_are_sign_and_threshold():
    check(grid(3.0, 2), [below(1.5), 1.5, -1.5, 9.0], [0.0, 3.0, -3.0, 3.0])  # {0, ±s}
    check(grid(3.0, 1, "unsigned"), [below(1.5), 1.5, -2.0], [0.0, 3.0, 0.0])  # {0, s}


def test_nearest_level_in_the_linear_domain():
    # brute force over the level list: no level is closer than the chosen one
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5000, generator=gen) * torch.exp(torch.randn(5000, generator=gen) * 2)
    for bits, mode in [(3, "symmetric"), (5, "symmetric"), (3, "unsigned"), (4, "unsigned")]:
        g = grid(1.7, bits, mode)
        mags = 1.7 * 2.0 ** -torch.arange(max_exponent(bits, mode == "symmetric") + 1.0)
        levels = torch.cat([mags, torch.zeros(1)] + ([-mags] if mode == "symmetric" else []))
        best = (x[:, None] - levels[None]).abs().min(1).values
        assert torch.allclose((g.quantize(x) - x).abs(), best, rtol=1e-6, atol=0)


def test_per_channel_scales():
    # rows: amax 1 (3-bit levels 0, 1/4, 1/2, 1), amax 4 (0, 1, 2, 4; zero below 1/2), amax 0 (all 0)
    g = grid(torch.tensor([[1.0], [4.0], [0.0]]), 3, axis=0)
    x = torch.tensor([[0.3, -0.8, 2.0], [0.3, 3.0, -1.4], [0.3, -2.0, 0.0]])
    want = torch.tensor([[0.25, -1.0, 1.0], [0.0, 4.0, -1.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(g.quantize(x), want, rtol=0, atol=0)
    torch.testing.assert_close(g.quantize_(x.clone()), want, rtol=0, atol=0)
    lo, hi = g.clip
    assert lo.flatten().tolist() == [-1.0, -4.0, 0.0] and hi.flatten().tolist() == [1.0, 4.0, 0.0]
    u = grid(torch.tensor([[1.0], [4.0]]), 3, "unsigned", axis=0)
    assert u.clip[0].flatten().tolist() == [0.0, 0.0]
    assert Log2Format().describe(StandIn(torch.tensor([[1.0], [4.0]]), axis=0), 3) == {
        "scale": [1.0, 4.0],
        "max_exponent": 2,
    }


def test_wide_exponent_range():
    # 8-bit unsigned: kmax 254, beyond float32's normal range: levels down to s·2^-126 are exact;
    # below, r = |x|/s < 2^-127 goes to zero and [2^-127, 2^-126) to s·2^-126 (documented)
    g = grid(2.0**20, 8, "unsigned")
    x = [2.0**-100, 3 * 2.0**-101, below(3 * 2.0**-101), 2.0**-106, 2.0**-107, 2.0**-108, 0.0]
    q = [2.0**-100, 2.0**-99, 2.0**-100, 2.0**-106, 2.0**-106, 0.0, 0.0]
    check(g, x, q)


def test_other_dtypes_and_devices():
    x = torch.tensor([0.3, -0.8, 0.05])
    g = grid(1.0, 3)
    assert g.quantize(x.double()).dtype == torch.float64
    torch.testing.assert_close(g.quantize(x.half()), torch.tensor([0.25, -1.0, 0.0]).half(), rtol=0, atol=0)
    if torch.cuda.is_available():
        gc = grid(torch.tensor([[1.0], [4.0]]), 3, axis=0)  # scales on the CPU, data on the GPU
        xc = torch.tensor([[0.3, -0.8], [0.3, 3.0]], device="cuda")
        want = torch.tensor([[0.25, -1.0], [0.0, 4.0]], device="cuda")
        torch.testing.assert_close(gc.quantize(xc), want, rtol=0, atol=0)
        torch.testing.assert_close(gc.quantize_(xc), want, rtol=0, atol=0)


def test_inside_a_tensor_quantizer():
    from problems.quantization.formats.quantizer import BitsError, TensorQuantizer

    q = TensorQuantizer(3, mode="symmetric", axis=0, format=Log2Format(), label="w")
    w = torch.tensor([[0.3, -0.8, 1.0], [0.3, 3.0, -4.0]])
    q.begin_calibration()
    q(w)
    q.end_calibration()
    want = torch.tensor([[0.25, -1.0, 1.0], [0.0, 4.0, -4.0]])
    torch.testing.assert_close(q(w), want, rtol=0, atol=0)
    with pytest.raises(BitsError):
        q.num_bits = 1


def test_a_fitted_scale_lowers_the_error_per_channel_and_never_grows_with_the_bits():
    torch.manual_seed(0)
    w = torch.randn(6, 200) * torch.tensor([[0.1], [1.0], [3.0], [0.5], [2.0], [0.01]])
    w[1, 0] = 9.0  # an outlier: the max-calibrated scale wastes the top octave on it
    amax = w.abs().amax(1, keepdim=True)
    fitted, plain = Log2Format.create("weight", 0, {}), Log2Format.create("activation", 0, {})
    assert fitted.fit and not plain.fit
    for f in (fitted, plain):
        f.collect(w)
    previous = None
    for bits in range(2, 9):
        q = StandIn(amax, axis=0)
        err = ((fitted.grid(q, bits).quantize(w) - w) ** 2).mean(1)
        base = ((plain.grid(q, bits).quantize(w) - w) ** 2).mean(1)
        assert (err <= base + 1e-12).all()  # amax itself is the first candidate
        assert err[1] < base[1]
        if previous is not None:
            assert (err <= previous + 1e-12).all()
        previous = err
    # each channel's own scale: fitting the outlier's row alone gives the same row
    one = Log2Format.create("weight", 0, {})
    one.collect(w[1:2])
    row = one.grid(StandIn(amax[1:2], axis=0), 4).quantize(w[1:2])
    assert torch.equal(row, fitted.grid(StandIn(amax, axis=0), 4).quantize(w)[1:2])
