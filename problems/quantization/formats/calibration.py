"""Calibrators turn observed tensors into a clipping range (amax, and amin for asymmetric).

Every calibrator tracks the signed min/max it saw, so the quantization mode (symmetric, unsigned,
asymmetric) can be chosen *after* calibration (e.g. unsigned once the data proved non-negative).
Per-tensor histogram calibrators keep a sign-split histogram over all batches; per-channel ones
(meant for weights, collected once) keep the raw values. The MSE calibrator quantizes on the
affine grid (`affine.qparams` / `affine.fake_quantize`), exactly as `TensorQuantizer` does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from problems.quantization.formats.affine import fake_quantize, qparams


class Calibrator:
    """Base: running signed min/max per tensor (axis None) or per index along `axis`."""

    bits_dependent = False  # True when amax depends on num_bits (MSE)

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis
        self.reset()

    def reset(self) -> None:
        self.samples_seen = 0  # items along the first dimension, summed over collect() calls
        self.batches_seen = 0
        self._min: Tensor | None = None
        self._max: Tensor | None = None
        self._shape: tuple[int, ...] | None = None

    @property
    def min_seen(self) -> Tensor | None:
        return self._min

    @property
    def max_seen(self) -> Tensor | None:
        return self._max

    def collect(self, x: Tensor) -> None:
        x = x.detach().float()
        if x.numel() == 0:
            return
        rows = self._as_rows(x)
        lo, hi = torch.aminmax(rows, dim=1)
        lo, hi = lo.reshape(self._shape), hi.reshape(self._shape)
        self._min = lo if self._min is None else torch.minimum(self._min, lo)
        self._max = hi if self._max is None else torch.maximum(self._max, hi)
        self.samples_seen += x.shape[0] if x.dim() else 1
        self.batches_seen += 1
        self._collect(rows)

    def _as_rows(self, x: Tensor) -> Tensor:
        """(channels, values) view; one row when per tensor. Also fixes the amax broadcast shape."""
        if self.axis is None:
            self._shape = ()
            return x.reshape(1, -1)
        axis = self.axis % x.dim()
        shape = [1] * x.dim()
        shape[axis] = x.shape[axis]
        if self._shape is not None and tuple(shape) != self._shape:
            raise ValueError(f"per-channel calibrator got shape {tuple(x.shape)}, expected {self._shape}")
        self._shape = tuple(shape)
        return x.movedim(axis, 0).reshape(x.shape[axis], -1)

    def _collect(self, rows: Tensor) -> None:
        """Hook for subclasses that keep more than min/max."""

    def _top(self, mode: str) -> tuple[Tensor, Tensor]:
        """(amin, amax) of the data for a mode: amin = -amax (symmetric) or 0 (unsigned)."""
        if self._min is None or self._max is None:
            raise ValueError("calibrator saw no data")
        lo, hi = self._min.clamp(max=0), self._max.clamp(min=0)
        if mode == "symmetric":
            hi = torch.maximum(-lo, hi)
            return -hi, hi
        if mode == "unsigned":
            return torch.zeros_like(hi), hi
        return lo, hi

    def compute_amax(self, num_bits: int, mode: str = "symmetric", narrow_range: bool = True) -> Tensor:
        """amax for symmetric / unsigned quantization (asymmetric: the upper end of the range)."""
        return self.compute_range(num_bits, mode, narrow_range)[1]

    def compute_range(
        self, num_bits: int, mode: str = "asymmetric", narrow_range: bool = True
    ) -> tuple[Tensor, Tensor]:
        """(amin, amax) with amin <= 0 <= amax; max calibration: the observed extremes."""
        return self._top(mode)


class MaxCalibrator(Calibrator):
    """Running absolute max (the same amax for every bit width)."""


class _Histogram:
    """Counts of x > 0 and of -x for x < 0 (plus a zero count) in bins of one common width.

    The width is fixed by the first non-zero batch; bins are appended as the range grows and merged
    2:1 (exactly: edges stay aligned) whenever there are more than 2 * num_bins of them.
    """

    def __init__(self, num_bins: int) -> None:
        self.num_bins = num_bins
        self.width: float | None = None
        self.pos = torch.zeros(0, dtype=torch.float64)
        self.neg = torch.zeros(0, dtype=torch.float64)
        self.zeros = 0.0

    def add(self, x: Tensor) -> None:
        pos, neg = x[x > 0], -x[x < 0]
        self.zeros += float(x.numel() - pos.numel() - neg.numel())
        top = max(pos.max().item() if pos.numel() else 0.0, neg.max().item() if neg.numel() else 0.0)
        if top == 0.0:
            return
        if self.width is None:
            self.width = top / self.num_bins
            self.pos = self.neg = x.new_zeros(0, dtype=torch.float64)  # counted where x lives
        n = max(math.ceil(top / self.width), 1)
        while n > 2 * self.num_bins:
            self.pos, self.neg = _merge_pairs(self.pos), _merge_pairs(self.neg)
            self.width *= 2
            n = max(math.ceil(top / self.width), 1)
        n = max(n, len(self.pos))
        self.pos = _pad(self.pos, n) + self._count(pos, n)
        self.neg = _pad(self.neg, n) + self._count(neg, n)

    def _count(self, x: Tensor, n: int) -> Tensor:
        idx = torch.floor(x / self.width).long().clamp_(0, n - 1)  # the top value lands in the last bin
        return torch.bincount(idx, minlength=n).double()

    def values(self) -> tuple[Tensor, Tensor]:
        """Signed bin centres (one row) and their counts; zeros sit exactly at 0."""
        if self.width is None:
            return torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), self.zeros, dtype=torch.float64)
        centres = (
            torch.arange(len(self.pos), dtype=torch.float64, device=self.pos.device) + 0.5
        ) * self.width
        v = torch.cat([-centres.flip(0), centres.new_zeros(1), centres])
        w = torch.cat([self.neg.flip(0), centres.new_full((1,), self.zeros), self.pos])
        return v.unsqueeze(0), w.unsqueeze(0)


def _pad(h: Tensor, n: int) -> Tensor:
    return torch.cat([h, h.new_zeros(n - len(h))]) if len(h) < n else h


def _merge_pairs(h: Tensor) -> Tensor:
    return _pad(h, len(h) + len(h) % 2).reshape(-1, 2).sum(1)


class _DistributionCalibrator(Calibrator):
    """Keeps the value distribution: a histogram per tensor, raw values per channel."""

    def __init__(self, axis: int | None = None, num_bins: int = 2048) -> None:
        self.num_bins = num_bins
        super().__init__(axis)

    def reset(self) -> None:
        super().reset()
        self._hist = _Histogram(self.num_bins)
        self._raw: list[Tensor] = []

    def _collect(self, rows: Tensor) -> None:
        if self.axis is None:
            self._hist.add(rows.reshape(-1))
        else:
            self._raw.append(rows.double().clone())

    def _values(self) -> tuple[Tensor, Tensor | None]:
        """(rows, values) and matching weights (None = all ones)."""
        if self.axis is None:
            return self._hist.values()
        return torch.cat(self._raw, dim=1), None

    def _shaped(self, t: Tensor) -> Tensor:
        return t.float().reshape(self._shape or ())


class PercentileCalibrator(_DistributionCalibrator):
    """amax = the given percentile of |x| (symmetric), of max(x, 0) (unsigned); asymmetric takes
    the p-th and (100-p)-th percentiles of x itself. Never beyond the observed extremes."""

    def __init__(self, percentile: float = 99.99, axis: int | None = None, num_bins: int = 2048) -> None:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile
        super().__init__(axis, num_bins)

    def compute_range(
        self, num_bits: int, mode: str = "asymmetric", narrow_range: bool = True
    ) -> tuple[Tensor, Tensor]:
        lo_top, hi_top = (t.double().reshape(-1, 1) for t in self._top(mode))
        if self.percentile == 100:
            return self._shaped(lo_top), self._shaped(hi_top)
        v, w = self._values()
        q = self.percentile / 100
        if mode == "asymmetric":
            hi = _weighted_quantile(v, w, q).clamp(min=0)
            lo = _weighted_quantile(v, w, 1 - q).clamp(max=0)
        else:
            hi = _weighted_quantile(v.abs() if mode == "symmetric" else v.clamp(min=0), w, q)
            lo = -hi if mode == "symmetric" else torch.zeros_like(hi)
        return self._shaped(torch.maximum(lo, lo_top)), self._shaped(torch.minimum(hi, hi_top))


def _weighted_quantile(v: Tensor, w: Tensor | None, q: float) -> Tensor:
    """Per row: the smallest value whose cumulative weight reaches q of the row total."""
    v, order = v.sort(dim=1)
    w = torch.ones_like(v) if w is None else w.gather(1, order)
    cdf = w.cumsum(1)
    k = torch.searchsorted(cdf, q * cdf[:, -1:]).clamp(max=v.shape[1] - 1)
    return v.gather(1, k)


class MseCalibrator(_DistributionCalibrator):
    """amax minimising the mean squared fake-quantization error at a given bit width.

    Candidates scale the observed range by t in (0, 1]: a geometric grid (1e-3..1) finds the basin,
    a linear grid between its neighbours refines it. Results are cached per (bits, mode, narrow).
    """

    bits_dependent = True
    COARSE, FINE = 96, 48

    def reset(self) -> None:
        super().reset()
        self._cache: dict[tuple[int, str, bool], tuple[Tensor, Tensor]] = {}

    def _collect(self, rows: Tensor) -> None:
        self._cache.clear()
        super()._collect(rows)

    def compute_range(
        self, num_bits: int, mode: str = "asymmetric", narrow_range: bool = True
    ) -> tuple[Tensor, Tensor]:
        key = (num_bits, mode, narrow_range)
        if key not in self._cache:
            self._cache[key] = self._search(num_bits, mode, narrow_range)
        return self._cache[key]

    def _search(self, num_bits: int, mode: str, narrow_range: bool) -> tuple[Tensor, Tensor]:
        lo_top, hi_top = (t.double().reshape(-1, 1) for t in self._top(mode))
        v, w = self._values()

        def errors(t: Tensor) -> Tensor:  # t: (rows, 1) -> (rows,)
            p = qparams(t * hi_top, t * lo_top, num_bits, mode, narrow_range)
            d = fake_quantize(v, p) - v
            return (d * d * w).sum(1) if w is not None else (d * d).sum(1)

        rows = v.shape[0]
        coarse = torch.logspace(-3, 0, self.COARSE, dtype=torch.float64, device=v.device)
        err = torch.stack([errors(t.expand(rows, 1)) for t in coarse], dim=1)
        best = err.argmin(1)
        left = coarse[(best - 1).clamp(min=0)]
        right = coarse[(best + 1).clamp(max=self.COARSE - 1)]
        fine = left[:, None] + (right - left)[:, None] * torch.linspace(
            0, 1, self.FINE, dtype=torch.float64, device=v.device
        )
        err = torch.stack([errors(fine[:, i : i + 1]) for i in range(self.FINE)], dim=1)
        t = fine.gather(1, err.argmin(1, keepdim=True))
        return self._shaped(t * lo_top), self._shaped(t * hi_top)


CALIBRATORS = {"max": MaxCalibrator, "percentile": PercentileCalibrator, "mse": MseCalibrator}


def make_calibrator(name: str, axis: int | None = None, percentile: float = 99.99) -> Calibrator:
    if name == "percentile":
        return PercentileCalibrator(percentile, axis=axis)
    if name not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {name!r}; known: {', '.join(CALIBRATORS)}")
    return CALIBRATORS[name](axis=axis)
