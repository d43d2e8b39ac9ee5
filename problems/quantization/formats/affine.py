"""The affine integer format: `fake_quantize(x) = clamp(round(x / scale), qmin, qmax) * scale`.

The grid arithmetic (`int_range`, `QParams`, `qparams`, `fake_quantize`) has one home shared by its
three users: `AffineFormat` quantizes with it, the MSE calibrator must quantize exactly the same way
while searching for its amax, and fixed-point formats are ordinary `QParams` grids with a
power-of-two scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from problems.quantization.formats.base import Calibrated, NumberFormat

MODES = ("symmetric", "unsigned", "asymmetric")


def int_range(num_bits: int, mode: str, narrow_range: bool = True) -> tuple[int, int]:
    """Integer grid [qmin, qmax]: symmetric +-(2^(b-1)-1) (narrow) else [0, 2^b-1]."""
    if mode == "symmetric":
        hi = 2 ** (num_bits - 1) - 1
        return (-hi if narrow_range else -hi - 1), hi
    return 0, 2**num_bits - 1


@dataclass(frozen=True)
class QParams:
    """fake_quantize(x) = clamp(round(x * inv_scale), qmin, qmax) * scale.

    Asymmetric zero points are folded into qmin/qmax (they are integers), so every mode shares one
    formula. `binary` (1-bit symmetric) means sign binarisation: +-scale with scale = amax.
    """

    scale: Tensor | float
    inv_scale: Tensor | float
    qmin: Tensor | float
    qmax: Tensor | float
    binary: bool = False

    @property
    def clip(self) -> tuple[Tensor | float, Tensor | float]:
        """Float range inside which the straight-through gradient passes."""
        if self.binary:
            return -self.scale, self.scale
        return self.qmin * self.scale, self.qmax * self.scale

    def quantize(self, x: Tensor) -> Tensor:
        return fake_quantize(x, self)

    def quantize_(self, x: Tensor) -> Tensor:
        return fake_quantize_(x, self)


def qparams(
    amax: Tensor, amin: Tensor | None, num_bits: int, mode: str, narrow_range: bool = True
) -> QParams:
    """Grid parameters from a calibrated range; a zero range gives scale 0 (the output is then 0)."""
    amax = amax.double()
    if mode == "symmetric" and num_bits == 1:
        return QParams(amax, _safe_inv(amax), -1.0, 1.0, binary=True)
    qmin, qmax = int_range(num_bits, mode, narrow_range)
    if mode == "asymmetric":
        amin = torch.zeros_like(amax) if amin is None else amin.double()
        scale = (amax - amin) / qmax
        inv = _safe_inv(scale)
        zero_point = torch.round(-amin * inv)
        return QParams(scale, inv, -zero_point, qmax - zero_point)
    scale = amax / qmax
    return QParams(scale, _safe_inv(scale), float(qmin), float(qmax))


def _safe_inv(scale: Tensor) -> Tensor:
    return torch.where(scale > 0, 1.0 / scale.clamp(min=1e-300), torch.zeros_like(scale))


def fake_quantize(x: Tensor, p: QParams) -> Tensor:
    """Out-of-place fake quantization without gradient tricks (reference and fast path)."""
    if p.binary:
        s = p.scale
        return torch.where(x >= 0, s, -s) if isinstance(s, float) else torch.where(x >= 0, s, -s).to(x.dtype)
    return _grid_(x * p.inv_scale, p)


def fake_quantize_(x: Tensor, p: QParams) -> Tensor:
    """In-place variant: no allocation, for tensors nobody else reads (fresh module outputs)."""
    if p.binary:
        return x.copy_(fake_quantize(x, p))
    return _grid_(x.mul_(p.inv_scale), p)


def _grid_(y: Tensor, p: QParams) -> Tensor:
    y.round_()
    y.clamp_(p.qmin, p.qmax)
    return y.mul_(p.scale)


class AffineFormat(NumberFormat):
    """Integers times a scale from the quantizer's calibrated range: symmetric (narrow or full),
    unsigned, or asymmetric with a rounded zero point; 1-bit symmetric is sign binarisation."""

    name: ClassVar[str] = "affine"
    modes: ClassVar[tuple[str, ...]] = MODES

    def min_bits(self, mode: str) -> int:
        return 2 if mode == "asymmetric" else 1

    def grid(self, q: Calibrated, bits: int) -> QParams:
        """Python floats per tensor (cheapest to broadcast), float32 tensors per channel."""
        amin, amax = q.range(bits)
        p = qparams(amax, amin, bits, q.mode, q.narrow_range)
        conv = float if q.axis is None else (lambda t: t.float())
        fields = [conv(v) if isinstance(v, Tensor) else v for v in (p.scale, p.inv_scale, p.qmin, p.qmax)]
        return QParams(*fields, binary=p.binary)

    def describe(self, q: Calibrated, bits: int) -> dict[str, object]:
        lo, hi = q.range(bits)
        return {"amax": hi} | ({"amin": lo} if q.mode == "asymmetric" else {})
