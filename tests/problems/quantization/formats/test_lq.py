"""The LQ learned codebook: fits solved by hand, the error history never increasing, unsigned codes,
per-channel independence, degenerate tensors, the bit-width bounds, and the format's caching."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from problems.quantization.formats import lq
from problems.quantization.formats.lq import LQFormat, LQGrid, code_matrix, fit_basis, initial_basis


@dataclass
class StandIn:
    """What `grid(q, bits)` reads of a TensorQuantizer (LQ ignores the range)."""

    mode: str = "symmetric"
    axis: int | None = None
    narrow_range: bool = True
    label: str = "q"


def fit(w: list[float], k: int, signed: bool = True) -> tuple[list[float], list[float]]:
    v, e = fit_basis(torch.tensor([w], dtype=torch.float64), k, signed)
    return v[0].tolist(), e[:, 0].tolist()


def levels(basis: torch.Tensor, signed: bool) -> torch.Tensor:
    """Every level of each row, [rows, 2^k]."""
    return basis @ code_matrix(basis.shape[1], signed).T


def nearest_mse(x: torch.Tensor, basis: torch.Tensor, signed: bool) -> torch.Tensor:
    """Brute force: each value to its nearest level, MSE per row."""
    lv = levels(basis, signed)
    return (x[:, :, None] - lv[:, None, :]).abs().min(2).values.square().mean(1)


def test_codes_and_start():
    assert code_matrix(2, True).tolist() == [[-1, -1], [1, -1], [-1, 1], [1, 1]]
    assert code_matrix(2, False).tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    # the start: a uniform grid, top level max|x| then refitted; [-3, -1, 1, 3] is exactly on it
    v0 = initial_basis(torch.tensor([[-3.0, -1, 1, 3]], dtype=torch.float64), 2, True)
    assert v0.tolist() == [[2.0, 1.0]]


def test_one_bit_is_the_mean_of_abs():
    # k = 1, signed: the codes are the signs and the least-squares v is mean|w| = 7/4
    v, e = fit([-3.0, 0.5, 1.0, -2.5], 1)
    assert v == [1.75] and e[0] == pytest.approx((1.25**2 * 2 + 0.75**2 * 2) / 4, abs=0)  # 1.0625
    x = (
        torch.randn(5, 301, generator=torch.Generator().manual_seed(0)).double()
        * torch.arange(1.0, 6)[:, None]
    )
    torch.testing.assert_close(fit_basis(x, 1)[0][:, 0], x.abs().mean(1), rtol=1e-13, atol=0)


def test_two_bits_exact_fit_by_hand():
    # w = [-5, -1, 1, 5]. Start: a uniform grid ±t, ±t/3 with top t = 5; 1 rounds to t/3 and 5 to t,
    # so the best scale is (5 + 1/3)/(1 + 1/9) = 4.8: v0 = (3.2, 1.6), levels ±4.8, ±1.6, MSE
    # (0.2² + 0.6²)/2 = 0.2. Codes of 5, 1, -1, -5: (+,+), (+,-), (-,+), (-,-); Gram 4I, right side
    # (12, 8), so v = (3, 2): levels ±5, ±1, error 0; the next iteration does not improve: stop.
    v, e = fit([-5.0, -1.0, 1.0, 5.0], 2)
    assert v == pytest.approx([3.0, 2.0], abs=1e-12)
    assert e == pytest.approx([0.2, 0.0, 0.0], abs=1e-12)


def test_two_bits_with_a_residual_by_hand():
    # w = [1, 2, 3, 7]. Start: top 7, levels ±7, ±7/3: 1, 2, 3 round to 7/3, 7 to 7; best scale
    # (6/3 + 7)/(3/9 + 1) = 6.75: v0 = (4.5, 2.25), levels ±6.75, ±2.25, MSE (1.25² + .25² + .75² +
    # .25²)/4 = 0.5625. Codes (+,-) x3 and (+,+): Gram [[4,-2],[-2,4]], right side (13, 1), so
    # v = (54, 30)/12 = (4.5, 2.5): levels 2 and 7 (the means of {1,2,3} and {7}), MSE 2/4 = 0.5.
    # That is the optimum: the other splits of the sorted values, {1},{2,3,7} and {1,2},{3,7}, cost
    # 14/4 and 8.5/4.
    v, e = fit([1.0, 2.0, 3.0, 7.0], 2)
    assert v == pytest.approx([4.5, 2.5], abs=1e-12)
    assert e == pytest.approx([0.5625, 0.5, 0.5], abs=1e-12)


def test_unsigned_two_bits_by_hand():
    # w = [0, 1, 3, 5], codes in {0,1}^2: levels 0, v2, v1, v1+v2. Start: grid j·t/3, t = 5, codes
    # j = 0, 1, 2, 3; best scale (1/3 + 2 + 5)/(1/9 + 4/9 + 1) = 33/7: v0 = (22/7, 11/7), MSE
    # ((4/7)² + (1/7)² + (2/7)²)/4 = 3/28. Codes (0,0), (0,1), (1,0), (1,1): Gram [[2,1],[1,2]],
    # right side (8, 6), v = (10/3, 4/3): levels 0, 4/3, 10/3, 14/3, each 1/3 off: MSE 1/12.
    v, e = fit([0.0, 1.0, 3.0, 5.0], 2, signed=False)
    assert v == pytest.approx([10 / 3, 4 / 3], abs=1e-12)
    assert e == pytest.approx([3 / 28, 1 / 12, 1 / 12], abs=1e-12)


def _rows(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = 400
    return torch.stack(
        [
            torch.randn(n, generator=g),
            torch.randn(n, generator=g).pow(3),  # heavy tails
            torch.rand(n, generator=g) * 5 - 1,
            torch.randint(-3, 4, (n,), generator=g).float() * 0.7,  # few distinct values
            torch.cat([torch.randn(n - 2, generator=g) * 0.1, torch.tensor([9.0, -4.0])]),  # outliers
        ]
    ).double()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("signed", [True, False])
def test_fit_never_increases_the_error(seed, k, signed):
    x = _rows(seed) if signed else _rows(seed).abs()
    v, e = fit_basis(x, k, signed, iterations=30)
    assert (e[1:] <= e[:-1] * (1 + 1e-12) + 1e-15).all(), e
    assert (e[-1] < e[0]).sum() >= 3  # the fit does move (not a vacuous check)
    # the returned basis is the best iterate, and its error is what nearest-level assignment gives
    torch.testing.assert_close(nearest_mse(x, v, signed), e.min(0).values, rtol=1e-10, atol=1e-15)


def test_fit_stops_when_the_error_stops_decreasing():
    x = _rows(0)
    _, e = fit_basis(x, 3, iterations=200)
    assert len(e) < 201  # converged well before the cap
    assert (e[-1] >= e[:-1].min(0).values * (1 - 1e-9)).all()  # the last update helped no row
    assert len(fit_basis(x, 3, iterations=2)[1]) == 3  # the cap: initial + 2 updates


def test_keeps_the_best_basis_when_an_update_makes_it_worse(monkeypatch):
    # ALS cannot raise the error, but rounding can: spoil every update after the first and the
    # fit must stop at once and return the best basis, not the last
    x = _rows(5)
    calls = []
    pinv = torch.linalg.pinv

    def spoiled(a: torch.Tensor, **kw: object) -> torch.Tensor:
        calls.append(1)
        return pinv(a, **kw) * (1 if len(calls) == 1 else 3)

    monkeypatch.setattr(torch.linalg, "pinv", spoiled)
    v, e = fit_basis(x, 3)
    assert len(e) == 3 and (e[2] > e[1]).all() and len(calls) == 2
    torch.testing.assert_close(nearest_mse(x, v, True), e[1], rtol=1e-10, atol=0)


def test_signed_basis_is_canonical():
    # the levels ±v1 ± ... ± vk do not change under sign flips and reordering of v: the fit returns
    # |v| sorted descending (here the raw least-squares solutions come out unordered)
    x = torch.tensor([[5.0, 2, 5], [-2, -1, -1], [2, -2, -1], [5, 1, 1]])
    v, e = fit_basis(x, 3)
    assert (v >= 0).all() and (v[:, :-1] >= v[:, 1:]).all()
    assert e[-1].max() < 1e-20


def test_unsigned_codes_on_non_negative_data():
    x = torch.rand(3, 500, generator=torch.Generator().manual_seed(1)).double() ** 2 * 4
    v, e = fit_basis(x, 3, signed=False)
    lv = levels(v, False)
    assert (lv[:, 0] == 0).all()  # code 000 is zero: a ReLU's zeros stay exact
    assert (lv >= -1e-12).all()
    _, signed_e = fit_basis(x, 3, signed=True)
    # on non-negative data half of the signed levels are wasted: unsigned codes do better
    assert (e.min(0).values < signed_e.min(0).values).all()
    g = LQGrid(v, signed=False, axis=0, ndim=2)
    assert torch.equal(g.quantize(torch.zeros(3, 4)), torch.zeros(3, 4))


def test_channels_are_independent():
    x = _rows(2)
    v, e = fit_basis(x, 3)
    for i in range(len(x)):
        vi, ei = fit_basis(x[i : i + 1], 3)
        torch.testing.assert_close(vi[0], v[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ei.min(0).values, e[:, i].min()[None], rtol=1e-12, atol=0)
    # a grid per output channel of a conv weight: each channel's values map to its own levels
    fmt = LQFormat()
    w = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    w[2] *= 100
    fmt.collect(w)
    g = fmt.grid(StandIn(axis=0), 2)
    out = g.quantize(w)
    basis = fmt.basis(2, "symmetric", 0)
    for c in range(4):
        row = w[c].reshape(1, -1).double()
        own = levels(basis[c : c + 1], True)[0].float()
        assert torch.isin(out[c], own).all()
        alone = fit_basis(row, 2)[0]
        torch.testing.assert_close(basis[c], alone[0], rtol=1e-12, atol=0)
    lo, hi = g.clip
    assert lo.shape == (4, 1, 1, 1) and torch.equal(hi.flatten(), levels(basis, True).amax(1).float())


def test_ties_go_to_the_lower_level():
    # basis (2, 1): levels -3, -1, 1, 3; midpoints -2, 0, 2
    g = LQGrid(torch.tensor([[2.0, 1.0]], dtype=torch.float64), signed=True, axis=None, ndim=1)
    x = torch.tensor([-2.0, 0.0, 2.0, 1.9, 2.1, 10.0, -10.0])
    want = torch.tensor([-3.0, -1.0, 1.0, 1.0, 3.0, 3.0, -3.0])
    torch.testing.assert_close(g.quantize(x), want, rtol=0, atol=0)
    same = x.clone()
    assert g.quantize_(same) is same and torch.equal(same, want)
    assert g.clip == (-3.0, 3.0)


def test_all_zero_and_constant_channels():
    x = torch.zeros(2, 50)
    x[1] = 3.0
    v, e = fit_basis(x, 3)
    assert not v.isnan().any() and (e[:, 0] == 0).all() and (v[0] == 0).all()
    assert (e.min(0).values <= 1e-20).all()
    fmt = LQFormat()
    fmt.collect(x)
    g = fmt.grid(StandIn(axis=0), 3)
    torch.testing.assert_close(g.quantize(x), x, rtol=0, atol=1e-6)
    fmt = LQFormat()
    fmt.collect(torch.zeros(10))
    g = fmt.grid(StandIn(mode="unsigned"), 4)
    assert torch.equal(g.quantize(torch.randn(7)), torch.zeros(7)) and g.clip == (0.0, 0.0)


def test_sixteen_bits_in_bounded_memory_and_the_uniform_fallback_above(monkeypatch):
    seen = []
    original = lq._assign
    monkeypatch.setattr(lq, "_assign", lambda x, v, c: seen.append(x.shape[0]) or original(x, v, c))
    x = torch.randn(100, 300, generator=torch.Generator().manual_seed(4)).double()
    v, e = fit_basis(x, 16, iterations=1)
    assert max(seen) * (300 * 16 + 4 * 2**16 + 4 * 300) <= lq.BLOCK_ELEMENTS  # channel blocks
    assert (e[1:] <= e[:-1] * (1 + 1e-12)).all() and e[-1].max() < 1e-6
    with pytest.raises(ValueError, match="1..16"):
        fit_basis(x, 17)
    # above 16 bits: the geometric basis with top level max|x|, a uniform grid of 2^k levels
    fmt = LQFormat()
    w = torch.tensor([[-1.0, 0.25, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0]])
    fmt.collect(w)
    g = fmt.grid(StandIn(axis=0), 20)
    step = 2 / (2**20 - 1)  # levels: odd multiples of 1/(2^20 - 1)
    assert (g.quantize(w) - w).abs().max() <= step / 2 + 1e-7
    assert g.clip[0].flatten().tolist() == [-1.0, 0.0] and g.clip[1].flatten().tolist() == [1.0, 0.0]
    unsigned = LQFormat()  # unsigned: levels 0 .. max x (not max|x|), negatives go to 0
    a = torch.tensor([-3.0, 0.25, 0.5, 1.0])
    unsigned.collect(a)
    g = unsigned.grid(StandIn(mode="unsigned"), 20)
    assert g.clip == (0.0, 1.0)
    assert (g.quantize(a) - a.clamp(min=0)).abs().max() <= 1 / (2**20 - 1) / 2 + 1e-7


def test_format_collects_fits_lazily_and_caches(monkeypatch):
    calls = []
    original = lq.fit_basis
    monkeypatch.setattr(lq, "fit_basis", lambda x, k, s, it: calls.append((k, s)) or original(x, k, s, it))
    fmt = LQFormat.create("weight", 0, {"iterations": 5})
    assert fmt.sample_size is None and fmt.iterations == 5
    fmt.collect(torch.randn(3, 8, generator=torch.Generator().manual_seed(5)))
    for bits, mode in [(2, "symmetric"), (2, "symmetric"), (3, "symmetric"), (2, "unsigned")]:
        fmt.grid(StandIn(mode=mode, axis=0), bits)
    assert calls == [(2, True), (3, True), (2, False)]
    fmt.collect(torch.randn(3, 8))  # new data: refit
    fmt.grid(StandIn(axis=0), 2)
    assert len(calls) == 4 and len(fmt.describe(StandIn(axis=0), 2)["basis"]) == 3
    with pytest.raises(ValueError, match="modes"):
        fmt.grid(StandIn(mode="asymmetric"), 2)


def test_activation_sample_is_seeded_and_per_tensor():
    batches = [torch.randn(8, 100, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    a, b = (LQFormat.create("activation", 7, {"samples": 500}) for _ in range(2))
    for fmt in (a, b):
        for x in batches:
            fmt.collect(x)
    assert torch.equal(a.rows(None), b.rows(None)) and a.rows(None).shape == (1, 500)
    assert torch.isin(a.rows(None), torch.cat([x.reshape(-1) for x in batches])).all()
    with pytest.raises(ValueError, match="sample_size None"):
        a.grid(StandIn(axis=0), 2)
    with pytest.raises(ValueError, match="no data"):
        LQFormat().grid(StandIn(), 2)


def test_devices():
    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    x = _rows(1).float()
    v_cpu, e_cpu = fit_basis(x, 3)
    v_gpu, e_gpu = fit_basis(x.cuda(), 3)
    torch.testing.assert_close(v_gpu.cpu(), v_cpu, rtol=1e-9, atol=1e-12)
    g = LQGrid(v_cpu, True, 0, 2)  # levels on the CPU, data on the GPU
    torch.testing.assert_close(g.quantize(x.cuda()).cpu(), g.quantize(x), rtol=0, atol=0)


def test_inside_a_tensor_quantizer():
    from problems.quantization.formats.quantizer import TensorQuantizer

    q = TensorQuantizer(2, mode="symmetric", axis=0, format=LQFormat(), label="w")
    w = torch.tensor([[1.0, 2.0, 3.0, 7.0], [-5.0, -1.0, 1.0, 5.0]])
    q.begin_calibration()
    q(w)
    q.end_calibration()
    torch.testing.assert_close(q(w), torch.tensor([[2.0, 2.0, 2.0, 7.0], [-5.0, -1.0, 1.0, 5.0]]))
