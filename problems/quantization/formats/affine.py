"""The affine integer grid: `fake_quantize(x) = clamp(round(x / scale), qmin, qmax) * scale`.

This module exists so that the grid arithmetic (`int_range`, `QParams`, `qparams`, `fake_quantize`)
has one home shared by its three users: `TensorQuantizer` quantizes with it, the MSE calibrator
must quantize exactly the same way while searching for its amax, and fixed-point formats are
ordinary `QParams` grids with a power-of-two scale. It depends on nothing but torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

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
