"""`TensorQuantizer`: calibrated fake quantization of one tensor (the role of NVIDIA
pytorch-quantization's TensorQuantizer), on plain tensor ops because `torch.fake_quantize_*` is
~2.5x slower on this CPU build.

Bits are a cheap mutable property: grid parameters are computed once per bit width and cached, so
flipping bits during a search costs a dict lookup. The evaluation path (no autograd) is
mul / round_ / clamp_ / mul_ on one fresh tensor; with autograd it uses a straight-through estimator.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dse.core.errors import DseError
from problems.quantization.formats.affine import MODES, QParams, fake_quantize, fake_quantize_, qparams
from problems.quantization.formats.calibration import make_calibrator

if TYPE_CHECKING:
    from problems.quantization.formats.fixed_point import FixedPointFormat


class QuantizationError(DseError):
    """A quantizer or quantized model cannot do what was asked; the message names it."""


class CalibrationError(QuantizationError):
    """Calibration data missing or degenerate (no samples, all-zero tensor)."""


class BitsError(QuantizationError, ValueError):
    """Invalid bit width for a quantizer."""


class UnknownQuantizerError(QuantizationError, KeyError):
    """A quantizer name that the model does not have."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class TensorQuantizer(nn.Module):
    """Fake-quantizes a tensor on a symmetric, unsigned or asymmetric integer grid.

    - symmetric: scale = amax / (2^(b-1)-1), grid [-(2^(b-1)-1), 2^(b-1)-1] (narrow) or
      [-2^(b-1), 2^(b-1)-1]; 1 bit is sign binarisation (+-amax).
    - unsigned: scale = amax / (2^b-1), grid [0, 2^b-1]; the clamp at 0 also acts as a ReLU.
    - asymmetric: scale = (amax-amin) / (2^b-1), rounded zero point, grid [0, 2^b-1]; b >= 2.

    `axis` None quantizes per tensor, else per index along `axis` (amax broadcasts over the rest).
    `label` names the quantizer in error messages. `fixed_point` (a `FixedPointFormat`) replaces the
    grid by a fixed-point one (num_bits = word length, power-of-two scale from the data it kept in
    calibration; `mode` is then ignored); the calibrator still runs for the range checks.
    """

    def __init__(
        self,
        num_bits: int = 8,
        mode: str = "symmetric",
        axis: int | None = None,
        narrow_range: bool = True,
        calibrator: str = "max",
        percentile: float = 99.99,
        label: str = "quantizer",
        fixed_point: FixedPointFormat | None = None,
    ) -> None:
        super().__init__()
        self.fixed_point = fixed_point
        if mode not in MODES:
            raise ValueError(f"{label}: unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.label = label
        self.axis = axis
        self.narrow_range = narrow_range
        self.calibrator = make_calibrator(calibrator, axis, percentile)
        self.enabled = True
        self._mode = mode
        self._num_bits = self.check_bits(num_bits, mode)
        self._calibrating = False
        self._calibrated = False
        self._fixed: tuple[Tensor, Tensor] | None = None  # set_amax(): the same range for all bits
        self._ranges: dict[int, tuple[Tensor, Tensor]] = {}
        self._params: dict[int, QParams] = {}
        self._p: QParams | None = None  # parameters of the current bits, None until calibrated

    # -- configuration ------------------------------------------------------------------------
    def check_bits(self, num_bits: int, mode: str) -> int:
        """The validated bit width for a mode, or BitsError naming this quantizer."""
        try:
            b = operator.index(num_bits)
        except TypeError:
            raise BitsError(f"{self.label}: num_bits must be an integer, got {num_bits!r}") from None
        if not 1 <= b <= 32:
            raise BitsError(f"{self.label}: num_bits must be in 1..32, got {b}")
        if mode == "asymmetric" and b < 2:
            raise BitsError(f"{self.label}: asymmetric quantization needs num_bits >= 2, got {b}")
        return b

    @property
    def num_bits(self) -> int:
        return self._num_bits

    @num_bits.setter
    def num_bits(self, value: int) -> None:
        self._num_bits = self.check_bits(value, self._mode)
        self._refresh()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"{self.label}: unknown mode {value!r}; known: {', '.join(MODES)}")
        self.check_bits(self._num_bits, value)
        self._mode = value
        self._ranges.clear()
        self._params.clear()
        self._refresh()

    def _refresh(self) -> None:
        self._p = self.params(self._num_bits) if self.calibrated and not self._calibrating else None

    # -- calibration --------------------------------------------------------------------------
    @property
    def calibrated(self) -> bool:
        return self._calibrated or self._fixed is not None

    @property
    def calibrating(self) -> bool:
        return self._calibrating

    def begin_calibration(self) -> None:
        """Forget earlier statistics; forward() now feeds the calibrator and passes x through."""
        self.calibrator.reset()
        if self.fixed_point is not None:
            self.fixed_point.reset()
        self._calibrating, self._calibrated, self._fixed = True, False, None
        self._ranges.clear()
        self._params.clear()
        self._p = None

    def stop_calibration(self) -> None:
        """Stop collecting without validating (end_calibration() validates and switches on)."""
        self._calibrating = False

    def end_calibration(self, allow_zero: bool = False) -> None:
        """Stop collecting; raise CalibrationError if nothing was seen or (unless `allow_zero`) the
        range is zero. A zero range never divides by zero: it quantizes everything to 0."""
        self._calibrating = False
        if self.calibrator.samples_seen == 0:
            raise CalibrationError(f"{self.label} saw no data during calibration")
        self._calibrated = True
        amin, amax = self.range()
        if not allow_zero and not bool((amax - amin).gt(0).any()):
            self._calibrated = False
            seen = (self.calibrator.min_seen, self.calibrator.max_seen)
            why = "all-zero tensor" if all(bool(t.eq(0).all()) for t in seen) else "no values in its range"
            raise CalibrationError(f"{self.label} calibrated to amax 0 ({why})")
        self._refresh()

    def set_amax(self, amax: Tensor | float, amin: Tensor | float | None = None) -> None:
        """Use a fixed range for every bit width (tests, imported ranges). amin: asymmetric only."""
        hi = torch.as_tensor(amax, dtype=torch.float32)
        lo = -hi if self._mode == "symmetric" else torch.zeros_like(hi)
        if amin is not None:
            lo = torch.as_tensor(amin, dtype=torch.float32)
        self._fixed = (lo, hi)
        self._params.clear()
        self._refresh()

    def range(self, num_bits: int | None = None) -> tuple[Tensor, Tensor]:
        """(amin, amax) for a bit width (default: current); computed lazily, cached per bits for MSE."""
        if self._fixed is not None:
            return self._fixed
        if not self._calibrated:
            raise CalibrationError(f"{self.label} is not calibrated")
        bits = self._num_bits if num_bits is None else num_bits
        key = bits if self.calibrator.bits_dependent else 0
        if key not in self._ranges:
            self._ranges[key] = self.calibrator.compute_range(bits, self._mode, self.narrow_range)
        return self._ranges[key]

    @property
    def amax(self) -> Tensor | None:
        return self.range()[1] if self.calibrated else None

    @property
    def amin(self) -> Tensor | None:
        return self.range()[0] if self.calibrated else None

    def params(self, num_bits: int | None = None) -> QParams:
        """Grid parameters for a bit width, cached: Python floats per tensor, float32 tensors per channel."""
        bits = self.check_bits(self._num_bits if num_bits is None else num_bits, self._mode)
        if bits not in self._params and self.fixed_point is not None:
            if not self._calibrated:
                raise CalibrationError(f"{self.label} is not calibrated")
            self._params[bits] = self.fixed_point.params(bits)
        if bits not in self._params:
            amin, amax = self.range(bits)
            p = qparams(amax, amin, bits, self._mode, self.narrow_range)
            conv = float if self.axis is None else (lambda t: t.float())
            fields = [conv(v) if isinstance(v, Tensor) else v for v in (p.scale, p.inv_scale, p.qmin, p.qmax)]
            self._params[bits] = QParams(*fields, binary=p.binary)
        return self._params[bits]

    @property
    def scale(self) -> Tensor | float | None:
        return self._p.scale if self._p is not None else None

    # -- quantization -------------------------------------------------------------------------
    def quantize_tensor(self, x: Tensor, num_bits: int | None = None) -> Tensor:
        """Fake-quantized copy of x (no gradient), e.g. for weights; does not change num_bits."""
        with torch.no_grad():
            return fake_quantize(x.detach(), self.params(num_bits))

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        """Calibrating: collect and pass x through. Disabled: x. Else fake-quantize (in place on x
        if `inplace` and no gradient is needed; the caller promises nobody else reads x)."""
        if self._calibrating:
            self.calibrator.collect(x)
            if self.fixed_point is not None:
                self.fixed_point.collect(x)
            return x
        if not self.enabled:
            return x
        p = self._p
        if p is None:
            raise CalibrationError(f"{self.label} is not calibrated")
        if x.requires_grad and torch.is_grad_enabled():
            return _straight_through(x, p)
        return fake_quantize_(x, p) if inplace else fake_quantize(x, p)

    def extra_repr(self) -> str:
        axis = "" if self.axis is None else f", axis={self.axis}"
        state = "calibrating" if self._calibrating else ("calibrated" if self.calibrated else "uncalibrated")
        mode = "fixed point" if self.fixed_point is not None else self._mode
        return f"{self.label}: {mode}, num_bits={self._num_bits}{axis}, {state}, enabled={self.enabled}"


def _straight_through(x: Tensor, p: QParams) -> Tensor:
    """Value: fake_quantize(x); gradient: 1 inside the representable range, 0 where clipped."""
    y = fake_quantize(x.detach(), p)
    lo, hi = p.clip
    mask = ((x.detach() >= lo) & (x.detach() <= hi)).to(x.dtype)
    return y + (x - x.detach()) * mask
