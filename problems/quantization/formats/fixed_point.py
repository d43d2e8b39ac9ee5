"""Fixed-point format: word length WL, fraction length FL, value = integer * 2^-FL.

The integer lies in [-2^(WL-1), 2^(WL-1)-1] (signed, two's complement), so the representable range
is [-2^(WL-1), 2^(WL-1)-1] * 2^-FL; FL may be negative (coarser than integers) or larger than WL
(every value below 1). This is an ordinary `QParams` grid with a power-of-two scale, so fixed-point
quantizers share `fake_quantize` (and its speed) with the affine ones.

The searched variable is WL; FL is derived per (quantizer, WL) by `search_fraction_length`: the FL
in [-32 - WL, 32 - WL] minimising mean |q(x) - x| over the tensor, found exactly (see there).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from problems.quantization.formats.affine import QParams
from problems.quantization.formats.base import Calibrated, NumberFormat
from problems.quantization.formats.sample import ValueSample

MAX_WL = 32


def fl_range(wl: int) -> tuple[int, int]:
    """Fraction lengths searched for a word length (both ends included)."""
    return -MAX_WL - wl, MAX_WL - wl


def int_limits(wl: int) -> tuple[int, int]:
    return -(2 ** (wl - 1)), 2 ** (wl - 1) - 1


def fixed_point_params(wl: int, fl: int) -> QParams:
    """fake_quantize(x) = clamp(round(x * 2^FL), -2^(WL-1), 2^(WL-1)-1) * 2^-FL."""
    if not 1 <= wl <= MAX_WL:
        raise ValueError(f"word length must be in 1..{MAX_WL}, got {wl}")
    qmin, qmax = int_limits(wl)
    return QParams(math.ldexp(1.0, -fl), math.ldexp(1.0, fl), float(qmin), float(qmax))


def errors(x: Tensor, wl: int, fl: int) -> tuple[float, float]:
    """(mean |q(x) - x|, the part of it from clipped elements) in float64.

    Multiplying by a power of two and rounding are exact, so each element's error is exact (or
    correctly rounded); both sums run over same-shaped tensors, which keeps them monotone wherever
    the element-wise errors are (the exactness argument of `search_fraction_length`).
    """
    qmin, qmax = int_limits(wl)
    k = (x * math.ldexp(1.0, fl)).round_()  # in place: out-of-place torch.round is ~100x slower here
    clipped = (k < qmin) | (k > qmax)
    err = (k.clamp_(qmin, qmax).mul_(math.ldexp(1.0, -fl)) - x).abs_()
    n = max(x.numel(), 1)
    return err.sum().item() / n, torch.where(clipped, err, 0.0).sum().item() / n


def _clips(extremes: Tensor, wl: int, fl: int) -> bool:
    qmin, qmax = int_limits(wl)
    k = (extremes * math.ldexp(1.0, fl)).round_()
    return bool(((k < qmin) | (k > qmax)).any())


def search_fraction_length(x: Tensor, wl: int) -> int:
    """The FL in `fl_range(wl)` minimising mean |q(x) - x|; ties go to the smallest FL.

    Exact, not a heuristic: the error is not unimodal in FL (a tensor of many 0.25s and one 7 at
    WL=4 has minima at FL=0 and FL=2 and a worse FL=1 between), so plain bisection on the error
    can miss. What does hold, element by element:

    - below the first FL at which anything clips (FL_c, found by bisection on the two extremes,
      since clipping only grows with FL), grids are nested (each FL's grid contains the previous
      one), so the rounding error never grows: the error is non-increasing on [lo, FL_c], and the
      smallest minimiser there is found by bisection for the first FL whose error equals E(FL_c);
    - above FL_c, an element's error once clipped only grows with FL, so the clipped part C(FL) of
      the error is non-decreasing and bounds every later error from below: scan upwards from
      FL_c + 1 and stop as soon as C(FL) reaches the best error found (later FLs cannot beat it).

    About 2*log2(64) + a few evaluations instead of 65 (checked against brute force in the tests).
    """
    lo, hi = fl_range(wl)
    x = x.detach().reshape(-1).double()
    if x.numel() == 0:
        return lo
    extremes = torch.stack([x.min(), x.max()])
    if not _clips(extremes, wl, lo):  # FL_c: the largest FL in [lo, hi] at which nothing clips
        a, b = lo, hi + 1  # invariant: a does not clip, b clips (or is past hi)
        while b - a > 1:
            m = (a + b) // 2
            a, b = (a, m) if _clips(extremes, wl, m) else (m, b)
        fl_c = a
        best_err, best_fl = errors(x, wl, fl_c)[0], fl_c
        a, b = lo - 1, fl_c  # first FL with E(FL) <= E(FL_c) lies in (a, b]
        while b - a > 1:
            m = (a + b) // 2
            a, b = (a, m) if errors(x, wl, m)[0] <= best_err else (m, b)
        best_fl = b
    else:
        fl_c, best_err, best_fl = lo - 1, math.inf, lo
    for fl in range(fl_c + 1, hi + 1):
        err, clip = errors(x, wl, fl)
        if err < best_err:
            best_err, best_fl = err, fl
        if clip >= best_err:
            break
    return best_fl


def brute_force_fraction_length(x: Tensor, wl: int) -> int:
    """Reference for tests: every FL in the range, the smallest of the minimisers."""
    x = x.detach().reshape(-1).double()
    lo, hi = fl_range(wl)
    errs = [errors(x, wl, fl)[0] for fl in range(lo, hi + 1)]
    return lo + min(range(len(errs)), key=errs.__getitem__)


def integer_bits(max_abs: float) -> int:
    """Bits left of the binary point, sign included: the smallest I >= 1 with max|x| < 2^(I-1)."""
    if not max_abs > 0 or not math.isfinite(max_abs):
        return 1
    return max(1, math.floor(math.log2(max_abs)) + 2)


def initial_word_length(max_abs: float, extra_fraction_bits: int = 6) -> int:
    """The seed's rule: integer bits needed for max|x| plus `extra_fraction_bits`, capped at 32."""
    return min(MAX_WL, integer_bits(max_abs) + extra_fraction_bits)


class FixedPointFormat(NumberFormat):
    """The fixed-point format of one `TensorQuantizer`: keeps the data seen in calibration and
    derives (and caches) the best FL per WL from it. Always signed (two's complement) and per tensor;
    bits are the word length.

    Weights keep every value (`sample_size` None); activations keep a uniform random sample of at
    most `sample_size` values over all calibration batches (each value gets a random key, the
    smallest keys stay), seeded, so the search costs the same however much data calibration saw.
    The sample always includes the smallest and largest value seen, so a searched FL never clips
    what calibration saw for want of having sampled it; `max_abs` is over all values seen too.
    """

    name: ClassVar[str] = "fixed_point"
    signed_only: ClassVar[bool] = True
    per_channel: ClassVar[bool] = False
    modes: ClassVar[tuple[str, ...]] = ("symmetric",)

    def __init__(self, sample_size: int | None = None, seed: int = 0, extra_fraction_bits: int = 6) -> None:
        self.sample_size = sample_size
        self.seed = seed
        self.extra_fraction_bits = extra_fraction_bits
        self.reset()

    @classmethod
    def create(cls, role: str, seed: int, settings: dict[str, Any]) -> FixedPointFormat:
        """Weights and biases keep every value; activations a sample of `samples` values."""
        sample = settings.get("samples", 65536) if role == "activation" else None
        return cls(sample, seed=seed, extra_fraction_bits=settings.get("extra_fraction_bits", 6))

    def reset(self) -> None:
        self._sample = ValueSample(self.sample_size, self.seed)
        self._extremes = torch.zeros(0)
        self.max_abs = 0.0
        self._fl: dict[int, int] = {}

    def collect(self, x: Tensor) -> None:
        v = x.detach().reshape(-1).float()
        if v.numel() == 0:
            return
        lo, hi = torch.aminmax(torch.cat([self._extremes.to(v.device), v]))
        self._extremes = torch.stack([lo, hi])
        self.max_abs = max(-lo.item(), hi.item())
        self._fl.clear()
        self._sample.add(v)

    @property
    def values(self) -> Tensor:
        """The values the FL search minimises the error over."""
        if self.sample_size is None:
            return self._sample.values
        return torch.cat([self._sample.values, self._extremes])

    def fraction_length(self, wl: int) -> int:
        if wl not in self._fl:
            self._fl[wl] = search_fraction_length(self.values, wl)
        return self._fl[wl]

    def params(self, wl: int) -> QParams:
        return fixed_point_params(wl, self.fraction_length(wl))

    def grid(self, q: Calibrated, bits: int) -> QParams:
        return self.params(bits)

    def initial_bits(self) -> int:
        """The seed's rule (`initial_word_length`) on the largest magnitude calibration saw."""
        return initial_word_length(self.max_abs, self.extra_fraction_bits)

    def describe(self, q: Calibrated, bits: int) -> dict[str, object]:
        return {"fraction_length": self.fraction_length(bits)}
