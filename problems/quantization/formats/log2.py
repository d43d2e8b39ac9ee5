"""Logarithmic (power-of-two) format: levels 0 and ±s·2^-k, k = 0..kmax, s from calibration.

Why: weights and activations are roughly Laplacian, dense near zero, so levels spaced by ratios
rather than differences spend the codes where the values are, and a multiply by a level is a shift.

Codes at b bits:
- signed ("symmetric"): 1 sign bit and 2^(b-1) magnitude codes, one of them zero, so
  kmax = 2^(b-1) - 2 (b >= 2; 2 bits is {0, ±s});
- unsigned (after a ReLU): 2^b codes, one of them zero, so kmax = 2^b - 2 (b >= 1).

Rounding is to the nearest level in the linear domain (what minimises the squared error), not in the
log domain. For r = |x|/s > 0 the nearest level is 2^-k with k = -floor(log2(r·4/3)) (2^-k and
2^-(k+1) meet at 0.75·2^-k), clamped to [0, kmax]; r < 2^-(kmax+1), half the smallest level, goes to
zero. Ties go away from zero: r = 0.75·2^-k goes to 2^-k, r = 2^-(kmax+1) to the smallest level.
The rule is evaluated exactly on the float32 bits of r (r = 1.f·2^e; 1.f >= 1.5 is the top mantissa
bit): adding that bit and masking off the mantissa gives the nearest power of two, ties up, in two
integer ops, so ties do not depend on how log2 or 4/3 round (and it is 2x faster than `frexp`).
r is float32, so levels below s·2^-126 are not used: where kmax > 126 (unsigned from 8 bits,
signed from 9), r < 2^-127 goes to zero and [2^-127, 2^-126) to s·2^-126 (a 1e-38 relative range).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from problems.quantization.formats.base import Calibrated, NumberFormat

#: the smallest normal float32 is 2^-126: the bit rounding below needs a normal r
_K_LIMIT = 126
_HALF_MANTISSA, _EXPONENT = 1 << 22, 0x7F800000  # float32: bit 22 is 0.5 ulp of the exponent


def max_exponent(bits: int, signed: bool) -> int:
    """kmax: the smallest level is s·2^-kmax."""
    return 2 ** (bits - 1) - 2 if signed else 2**bits - 2


class Log2Grid:
    """The power-of-two grid at one bit width. `scale`: a float (per tensor) or a float32 tensor
    shaped to broadcast against the quantized tensor (per channel)."""

    def __init__(self, scale: Tensor | float, kmax: int, signed: bool) -> None:
        if kmax < 0:
            raise ValueError(f"log2 needs kmax >= 0, got {kmax}")
        self.scale = scale
        self.kmax = kmax
        self.signed = signed
        k = min(kmax, _K_LIMIT)
        self._smallest = math.ldexp(1.0, -k)
        self._zero_below = math.ldexp(1.0, -k - 1)  # 2^-127 at most: a float32 subnormal, exact
        self._on: dict[torch.device, Tensor] = {}

    @property
    def clip(self) -> tuple[Tensor | float, Tensor | float]:
        s = self.scale
        lo = -s if self.signed else (0.0 if isinstance(s, float) else torch.zeros_like(s))
        return lo, s

    def _scale(self, x: Tensor) -> Tensor | float:
        if isinstance(self.scale, float):
            return self.scale
        if x.device not in self._on:
            self._on[x.device] = self.scale.to(x.device, torch.float32)
        return self._on[x.device]

    def magnitude(self, x: Tensor) -> Tensor:
        """|q(x)| as a fresh float32 tensor: s·2^-k, or 0 below half the smallest level. A zero
        scale gives r = inf or nan, which round to some power of two, times s = 0: no special case."""
        s = self._scale(x)
        r = x.detach().abs().float().div_(s)  # a division, not a multiply by 1/s: exact ties
        zero = r < self._zero_below
        r.view(torch.int32).add_(_HALF_MANTISSA).bitwise_and_(_EXPONENT)  # nearest 2^e, ties up
        return r.clamp_(self._smallest, 1.0).masked_fill_(zero, 0.0).mul_(s)

    def quantize(self, x: Tensor) -> Tensor:
        y = self.magnitude(x)
        x = x.detach()
        y = y.mul_(torch.sign(x)) if self.signed else y.masked_fill_(x <= 0, 0.0)
        return y.to(x.dtype)

    def quantize_(self, x: Tensor) -> Tensor:
        y = self.magnitude(x)
        if not self.signed:
            x.clamp_(min=0)
        return x.sign_().mul_(y)


class Log2Format(NumberFormat):
    """Power-of-two levels scaled per channel (where `q.axis` is set) or per tensor.

    The scale is the quantizer's calibrated amax, or, with `fit` (weights: `create` turns it on),
    the one of `FIT_STEPS` candidates amax·2^(-j/16), three octaves down, with the least squared
    error on the tensor calibration showed, per channel and per bit width. Why: the range
    calibrators place amax for an evenly spaced grid; log2's top levels are an octave apart, so a
    weight at 0.7·amax costs 0.2·amax unless the scale moves (resnet20, mse calibrator: the weight
    MSE summed over layers falls 4-17 % at 3-8 bits, `dse formats`). Levels at b bits contain those
    at b-1 for one scale, so with the scale fitted per bit width the error never grows with the bits.
    """

    name = "log2"
    modes = ("symmetric", "unsigned")
    FIT_STEPS = 48

    def __init__(self, fit: bool = False) -> None:
        self.fit = fit
        self.reset()

    @classmethod
    def create(cls, role: str, seed: int, settings: dict[str, object]) -> Log2Format:
        return cls(fit=role != "activation")

    def reset(self) -> None:
        self._data: Tensor | None = None

    def collect(self, x: Tensor) -> None:
        if self.fit:  # a weight: seen once per calibration
            self._data = x.detach()

    def _fitted(self, amax: Tensor, axis: int | None, kmax: int, signed: bool) -> Tensor:
        """amax times each channel's best factor, in amax's shape."""
        assert self._data is not None
        data = self._data.float()
        rows = data.reshape(1, -1) if axis is None else data.movedim(axis, 0).reshape(data.shape[axis], -1)
        top = amax.reshape(-1, 1).to(rows.device)
        factors = torch.exp2(-torch.arange(self.FIT_STEPS, dtype=torch.float32, device=rows.device) / 16)
        errors = torch.stack(
            [((Log2Grid(top * f, kmax, signed).quantize(rows) - rows) ** 2).mean(1) for f in factors]
        )
        best = factors[errors.argmin(0)]  # the first (largest) of equal errors
        return (top.reshape(-1) * best).reshape(amax.shape)

    def min_bits(self, mode: str) -> int:
        return 2 if mode == "symmetric" else 1

    def grid(self, q: Calibrated, bits: int) -> Log2Grid:
        if q.mode not in self.modes:
            raise ValueError(f"{q.label}: log2 supports modes {', '.join(self.modes)}, not {q.mode!r}")
        if bits < self.min_bits(q.mode):
            raise ValueError(
                f"{q.label}: log2 {q.mode} needs at least {self.min_bits(q.mode)} bits, got {bits}"
            )
        signed, kmax = q.mode == "symmetric", max_exponent(bits, q.mode == "symmetric")
        amax = q.range(bits)[1].detach().float()
        if self._data is not None:
            amax = self._fitted(amax, q.axis, kmax, signed)
        scale: Tensor | float = float(amax) if q.axis is None and amax.numel() == 1 else amax
        return Log2Grid(scale, kmax, signed)

    def describe(self, q: Calibrated, bits: int) -> dict[str, object]:
        g = self.grid(q, bits)
        scale = g.scale if isinstance(g.scale, float) else g.scale.reshape(-1).tolist()
        return {"scale": scale, "max_exponent": g.kmax}
