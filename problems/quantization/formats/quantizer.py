"""`TensorQuantizer`: calibrated fake quantization of one tensor (the role of NVIDIA
pytorch-quantization's TensorQuantizer), on plain tensor ops because `torch.fake_quantize_*` is
~2.5x slower on this CPU build.

What a value looks like is its `NumberFormat`'s business (formats/base.py); the quantizer runs
calibration, validates bits and caches each format's grid per bit width, so flipping bits (or the
format, where several are calibrated) during a search costs a dict lookup. The evaluation path (no
autograd) is the grid's in-place quantize on one fresh tensor; with autograd it uses a
straight-through estimator.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dse.core.errors import DseError
from problems.quantization.formats.affine import AffineFormat
from problems.quantization.formats.base import Grid, NumberFormat
from problems.quantization.formats.calibration import make_calibrator
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
    """Fake-quantizes a tensor in a number format, by default affine integers (`AffineFormat`):

    - symmetric: scale = amax / (2^(b-1)-1), grid [-(2^(b-1)-1), 2^(b-1)-1] (narrow) or
      [-2^(b-1), 2^(b-1)-1]; 1 bit is sign binarisation (+-amax).
    - unsigned: scale = amax / (2^b-1), grid [0, 2^b-1]; the clamp at 0 also acts as a ReLU.
    - asymmetric: scale = (amax-amin) / (2^b-1), rounded zero point, grid [0, 2^b-1]; b >= 2.

    `axis` None quantizes per tensor, else per index along `axis` (amax broadcasts over the rest).
    `label` names the quantizer in error messages. `format` (a `NumberFormat`, or several: all are
    calibrated, the first is used, `use_format` switches) replaces the affine grid; `fixed_point` is
    the older spelling of `format=FixedPointFormat(...)`. The range calibrator always runs: it gives
    affine and log2 their range and backs the "no data" / "all-zero" checks of every format.
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
        format: NumberFormat | Sequence[NumberFormat] | None = None,  # noqa: A002 - the config's word
    ) -> None:
        super().__init__()
        if fixed_point is not None and format is not None:
            raise ValueError(f"{label}: give format or fixed_point, not both")
        chosen = format if format is not None else (fixed_point or AffineFormat())
        listed = [chosen] if isinstance(chosen, NumberFormat) else list(chosen)
        self.formats: dict[str, NumberFormat] = {f.name: f for f in listed}
        if len(self.formats) != len(listed) or not listed:
            raise ValueError(f"{label}: formats must be distinct and at least one")
        self._format = listed[0]
        self.label = label
        self._check_mode(mode)
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
        self._params: dict[tuple[str, int], Grid] = {}
        self._p: Grid | None = None  # parameters of the current bits, None until calibrated

    # -- configuration ------------------------------------------------------------------------
    @property
    def format(self) -> NumberFormat:  # noqa: A003 - the config's word
        return self._format

    @property
    def fixed_point(self) -> FixedPointFormat | None:
        """The fixed-point format where that is the one in use (the accessor of the older API)."""
        return self._format if isinstance(self._format, FixedPointFormat) else None

    def use_format(self, name: str) -> None:
        """Quantize in another of the calibrated formats (bits stay; the grid comes from the cache)."""
        if name not in self.formats:
            raise ValueError(f"{self.label}: no format {name!r}; calibrated: {', '.join(self.formats)}")
        fmt = self.formats[name]
        self.check_bits(self._num_bits, self._mode, fmt)
        self._format = fmt
        self._refresh()

    def _check_mode(self, mode: str) -> None:
        for f in self.formats.values():
            if mode not in f.modes:
                known = ", ".join(f.modes)
                raise ValueError(f"{self.label}: unknown mode {mode!r} for {f.name}; known: {known}")

    def check_bits(self, num_bits: int, mode: str | None = None, fmt: NumberFormat | None = None) -> int:
        """The validated bit width for a mode and format (default: the current ones), or BitsError
        naming this quantizer."""
        try:
            b = operator.index(num_bits)
        except TypeError:
            raise BitsError(f"{self.label}: num_bits must be an integer, got {num_bits!r}") from None
        if not 1 <= b <= 32:
            raise BitsError(f"{self.label}: num_bits must be in 1..32, got {b}")
        fmt, mode = fmt or self._format, mode or self._mode
        low = fmt.min_bits(mode)
        if b < low:
            what = "asymmetric" if mode == "asymmetric" and fmt.name == "affine" else f"{mode} {fmt.name}"
            raise BitsError(f"{self.label}: {what} quantization needs num_bits >= {low}, got {b}")
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
        self._check_mode(value)
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
        for f in self.formats.values():
            f.reset()
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

    @torch.no_grad()
    def calibrate_on(self, tensor: Tensor) -> None:
        """Calibrate afresh on one tensor, e.g. a weight, whose range is a function of it alone (an
        all-zero weight is exact at any bits)."""
        self.begin_calibration()
        self(tensor.detach())
        self.end_calibration(allow_zero=True)

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

    def params(self, num_bits: int | None = None) -> Grid:
        """The current format's grid at a bit width (default: current), cached per (format, bits)."""
        bits = self.check_bits(self._num_bits if num_bits is None else num_bits, self._mode)
        key = (self._format.name, bits)
        if key not in self._params:
            if not self.calibrated:
                raise CalibrationError(f"{self.label} is not calibrated")
            self._params[key] = self._format.grid(self, bits)
        return self._params[key]

    @property
    def scale(self) -> Tensor | float | None:
        return getattr(self._p, "scale", None)

    # -- quantization -------------------------------------------------------------------------
    def quantize_tensor(self, x: Tensor, num_bits: int | None = None) -> Tensor:
        """Fake-quantized copy of x (no gradient), e.g. for weights; does not change num_bits."""
        with torch.no_grad():
            return self.params(num_bits).quantize(x.detach())

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        """Calibrating: collect and pass x through. Disabled: x. Else fake-quantize (in place on x
        if `inplace` and no gradient is needed; the caller promises nobody else reads x)."""
        if self._calibrating:
            self.calibrator.collect(x)
            for f in self.formats.values():
                f.collect(x)
            return x
        if not self.enabled:
            return x
        p = self._p
        if p is None:
            raise CalibrationError(f"{self.label} is not calibrated")
        if x.requires_grad and torch.is_grad_enabled():
            return _straight_through(x, p)
        return p.quantize_(x) if inplace else p.quantize(x)

    def extra_repr(self) -> str:
        axis = "" if self.axis is None else f", axis={self.axis}"
        state = "calibrating" if self._calibrating else ("calibrated" if self.calibrated else "uncalibrated")
        fmt = f"{self._format.name.replace('_', ' ')} {self._mode}"
        return f"{self.label}: {fmt}, num_bits={self._num_bits}{axis}, {state}, enabled={self.enabled}"


def _straight_through(x: Tensor, p: Grid) -> Tensor:
    """Value: the grid's quantize(x); gradient: 1 inside the representable range, 0 where clipped."""
    y = p.quantize(x.detach())
    lo, hi = p.clip
    mask = ((x.detach() >= lo) & (x.detach() <= hi)).to(x.dtype)
    return y + (x - x.detach()) * mask


def check_bit_changes(changes: Iterable[tuple[str, Mapping[str, Any], Mapping[str, int]]]) -> None:
    """Every (kind, quantizers, {name: bits}) checked before a model changes anything: an unknown
    name or invalid bits raise, naming the quantizer (each quantizer's `check_bits`)."""
    for kind, table, new in changes:
        for n, b in new.items():
            if n not in table:
                raise UnknownQuantizerError(f"unknown {kind} quantizer '{n}'")
            table[n].check_bits(b)
