"""LQ: a learned codebook per output channel (LQ-Nets; seed 002's BitQuantizer).

A k-bit basis v in R^k and codes b in {-1,+1}^k (signed) or {0,1}^k (unsigned: activations after a
ReLU, as LQ-Nets does) give 2^k levels b·v; each value goes to the nearest level of its channel.
Why: the levels follow the data (dense where the values are) while one value is still k bits and a
dot product with it is k binary ones; at equal bits it usually errs less than a uniform grid.

The basis minimises the mean squared error by alternating least squares (`fit_basis`): assign each
value to the nearest level, then solve v by least squares for those codes, and again. Neither step
can raise the error, so the error history never increases; the fit stops once no channel's error
drops (by more than a relative 1e-9), or after `iterations` updates, and keeps each channel's best.

Bounds: up to `MAX_FIT_BITS` (16) bits the 2^k levels of each channel are materialised, in blocks of
channels sized so temporaries stay near `BLOCK_ELEMENTS` float64 values whatever the layer (k = 16:
a dozen to sixty channels a block; slow for hundreds of channels, but bounded). Above 16 bits there
is no fit: the basis is the geometric one whose top level is max|x| (unsigned: max x), a uniform
grid of 2^k levels quantised by rounding, where a fit would cost much and gain nothing measurable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from problems.quantization.formats.base import Calibrated, NumberFormat
from problems.quantization.formats.sample import ValueSample

MAX_FIT_BITS = 16
BLOCK_ELEMENTS = 1 << 24
_RTOL = 1e-9  # a relative drop smaller than this is "no longer decreasing" (rounding noise)


def code_matrix(k: int, signed: bool, device: torch.device | None = None) -> Tensor:
    """All 2^k codes as float64 rows: bit i of the row index is the code of v_(i+1)."""
    bits = (torch.arange(2**k, device=device)[:, None] >> torch.arange(k, device=device)) & 1
    return (2 * bits - 1 if signed else bits).double()


def _powers(k: int, x: Tensor) -> Tensor:
    """(2^(k-1), ..., 2, 1): a basis whose levels are a uniform grid."""
    return torch.exp2(torch.arange(k - 1, -1, -1, dtype=x.dtype, device=x.device))


def uniform_basis(x: Tensor, k: int, signed: bool) -> Tensor:
    """The geometric basis with top level max|x| (signed) or max x (unsigned): a uniform grid of
    2^k levels, odd multiples of v_k (signed) or multiples of v_k (unsigned)."""
    top = x.abs().amax(1, keepdim=True) if signed else x.amax(1, keepdim=True).clamp(min=0)
    return top * _powers(k, x) / (2**k - 1)


def initial_basis(x: Tensor, k: int, signed: bool, steps: int = 10) -> Tensor:
    """Deterministic start: the grid of `uniform_basis` with its scale refitted by `steps` rounds of
    1-D least squares (round to the grid, then the best scale for those codes: cheap, no 2^k
    levels). Why not LQ-Nets' mean|x|·2^-(i-1): it clips the tails from 4 bits up and ALS moves
    the levels slowly: on 64x576 Gaussian rows 8-bit LQ ended at MSE 8.0e-4 against 5.6e-5 for
    max-calibrated affine; from this start it ends at 5.2e-5. k = 1 signed: the codes are the signs
    and the scale mean|x|, the optimum."""
    n = 2**k - 1
    a = uniform_basis(x, k, signed).sum(1, keepdim=True)  # the top level
    for _ in range(steps):
        t = torch.where(a > 0, x / a.clamp(min=1e-300), 0.0) * n  # position on the grid
        j = ((t + n) / 2 if signed else t).round().clamp(0, n)  # grid index 0..n
        c = (2 * j - n) / n if signed else j / n  # level / top level
        a = (x * c).sum(1, keepdim=True) / (c * c).sum(1, keepdim=True).clamp(min=1e-300)
    return a * _powers(k, x) / n


def _assign(x: Tensor, v: Tensor, codes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Error of the nearest-level assignment under basis v, and the normal equations of its codes."""
    levels, order = (v @ codes.T).sort(1)
    idx = torch.searchsorted((levels[:, 1:] + levels[:, :-1]) / 2, x)  # ties go to the lower level
    err = (levels.gather(1, idx) - x).square_().mean(1)
    code = order.gather(1, idx)
    sums = torch.zeros_like(levels).scatter_add_(1, code, x)
    rhs = sums @ codes
    n, n_levels = x.shape[1], codes.shape[0]
    if n < n_levels:  # Gram over the values: C·n·k² instead of C·2^k·k²
        b = codes[code]
        gram = b.transpose(1, 2) @ b
    else:
        counts = torch.zeros_like(levels).scatter_add_(1, code, torch.ones_like(x))
        gram = (counts[:, :, None] * codes).transpose(1, 2) @ codes
    return err, gram, rhs


def fit_basis(x: Tensor, k: int, signed: bool = True, iterations: int = 20) -> tuple[Tensor, Tensor]:
    """Alternating least squares per row of x [channels, n]: (basis [channels, k], errors [T+1,
    channels]), errors[t] the MSE of the t-th basis (row 0: the initial one). Float64. Signed bases
    come back as |v| sorted descending (the same levels); a row stops updating once it stops
    improving, and the best basis of each row is returned."""
    if not 1 <= k <= MAX_FIT_BITS:
        raise ValueError(f"LQ fits 1..{MAX_FIT_BITS} bits, got {k}")
    x = x.detach().double().contiguous()
    channels, n = x.shape
    if n == 0:
        return x.new_zeros(channels, k), x.new_zeros(1, channels)
    codes = code_matrix(k, signed, x.device)
    per_row = min(n, 2**k) * k + 4 * 2**k + 4 * n
    block = max(1, BLOCK_ELEMENTS // per_row)
    v = initial_basis(x, k, signed)
    best_v, best_e = v.clone(), torch.full((channels,), torch.inf, dtype=x.dtype, device=x.device)
    active = torch.ones(channels, dtype=torch.bool, device=x.device)
    history = []
    for t in range(iterations + 1):
        parts = [_assign(x[i : i + block], v[i : i + block], codes) for i in range(0, channels, block)]
        err, gram, rhs = (torch.cat(p) for p in zip(*parts))
        history.append(err)
        improved = err < best_e * (1 - _RTOL)
        best_v[improved], best_e[improved] = v[improved], err[improved]
        active &= improved
        if not active.any() or t == iterations:
            break
        solved = (torch.linalg.pinv(gram, hermitian=True) @ rhs[:, :, None])[:, :, 0]
        v = torch.where(active[:, None], solved, v)
    if signed:
        best_v = best_v.abs().sort(1, descending=True).values
    return best_v, torch.stack(history)


class LQGrid:
    """Nearest level of each channel's codebook. Up to MAX_FIT_BITS: sorted levels [channels, 2^k]
    and a search among their midpoints; above: the uniform grid of the geometric basis, by rounding.
    `axis` None: one codebook for the whole tensor."""

    def __init__(self, basis: Tensor, signed: bool, axis: int | None, ndim: int) -> None:
        self.basis, self.signed, self.axis = basis, signed, axis
        k = basis.shape[1]
        self._uniform = k > MAX_FIT_BITS
        if self._uniform:
            step = basis[:, -1:] * (2 if signed else 1)
            low = -basis.sum(1, keepdim=True) if signed else torch.zeros_like(step)
            self._low, self._step, self._top = low.float(), step.float(), float(2**k - 1)
            lo, hi = low, low + step * (2**k - 1)
        else:
            levels = (basis @ code_matrix(k, signed, basis.device).T).sort(1).values
            self._levels = levels.float().contiguous()
            self._mids = ((levels[:, 1:] + levels[:, :-1]) / 2).float().contiguous()
            lo, hi = levels[:, 0], levels[:, -1]
        if axis is None:
            self._clip: tuple[Tensor | float, Tensor | float] = (float(lo.min()), float(hi.max()))
        else:
            shape = [1] * ndim
            shape[axis] = basis.shape[0]
            self._clip = (lo.float().reshape(shape), hi.float().reshape(shape))

    @property
    def clip(self) -> tuple[Tensor | float, Tensor | float]:
        return self._clip

    def _rows(self, x: Tensor) -> Tensor:
        rows = x.detach().float()
        rows = (
            rows.reshape(1, -1)
            if self.axis is None
            else rows.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)
        )
        return rows.contiguous()

    def quantize(self, x: Tensor) -> Tensor:
        rows = self._rows(x)
        if self._uniform:
            low, step = self._low.to(x.device), self._step.to(x.device)
            y = (
                torch.where(step > 0, (rows - low) / step, 0.0)
                .round_()
                .clamp_(0, self._top)
                .mul_(step)
                .add_(low)
            )
        else:
            levels, mids = self._levels.to(x.device), self._mids.to(x.device)
            y = levels.gather(1, torch.searchsorted(mids, rows))  # ties go to the lower level
        if self.axis is None:
            return y.reshape(x.shape).to(x.dtype)
        moved = list(x.movedim(self.axis, 0).shape)
        return y.reshape(moved).movedim(0, self.axis).to(x.dtype)

    def quantize_(self, x: Tensor) -> Tensor:
        return x.copy_(self.quantize(x))


class LQFormat(NumberFormat):
    """The LQ codebook of one quantizer. Keeps what calibration showed it, as `FixedPointFormat`
    does: weights (`sample_size` None) every value, activations a seeded uniform sample of at most
    `sample_size` values (each value gets a random key, the smallest keys stay; per tensor only).
    Fits lazily per (bits, mode, axis) and caches the basis; `collect` drops the cache."""

    name = "lq"
    modes = ("symmetric", "unsigned")

    def __init__(self, iterations: int = 20, sample_size: int | None = None, seed: int = 0) -> None:
        self.iterations, self.sample_size, self.seed = iterations, sample_size, seed
        self.reset()

    @classmethod
    def create(cls, role: str, seed: int, settings: dict[str, Any]) -> LQFormat:
        """Weights and biases keep every value; activations a sample of `samples` values."""
        sample = settings.get("samples", 65536) if role == "activation" else None
        return cls(settings.get("iterations", 20), sample, seed)

    def reset(self) -> None:
        self._tensors: list[Tensor] = []
        self._sample = ValueSample(self.sample_size, self.seed)
        self._bases: dict[tuple[int, str, int | None], Tensor] = {}
        self._ndim = 1

    def collect(self, x: Tensor) -> None:
        v = x.detach().float()
        self._bases.clear()
        self._ndim = v.dim()
        if self.sample_size is None:
            self._tensors.append(v.clone())
        else:
            self._sample.add(v.reshape(-1))

    def rows(self, axis: int | None) -> Tensor:
        """What the fit sees: [channels, values] (one row per tensor where axis is None)."""
        if self.sample_size is not None:
            if axis is not None:
                raise ValueError("per-channel LQ needs every value: use sample_size None (weights)")
            return self._sample.values.reshape(1, -1)
        if not self._tensors:
            raise ValueError("LQ saw no data: calibrate before asking for a grid")
        if axis is None:
            return torch.cat([t.reshape(1, -1) for t in self._tensors], 1)
        return torch.cat([t.movedim(axis, 0).reshape(t.shape[axis], -1) for t in self._tensors], 1)

    def basis(self, bits: int, mode: str, axis: int | None) -> Tensor:
        """The fitted basis [channels, bits] (float64), cached."""
        key = (bits, mode, axis)
        if key not in self._bases:
            x, signed = self.rows(axis), mode == "symmetric"
            if bits > MAX_FIT_BITS:
                self._bases[key] = uniform_basis(x.double(), bits, signed)
            else:
                self._bases[key] = fit_basis(x, bits, signed, self.iterations)[0]
        return self._bases[key]

    def grid(self, q: Calibrated, bits: int) -> LQGrid:
        if q.mode not in self.modes:
            raise ValueError(f"{q.label}: lq supports modes {', '.join(self.modes)}, not {q.mode!r}")
        return LQGrid(self.basis(bits, q.mode, q.axis), q.mode == "symmetric", q.axis, self._ndim)

    def describe(self, q: Calibrated, bits: int) -> dict[str, object]:
        return {"basis": self.basis(bits, q.mode, q.axis).tolist()}
