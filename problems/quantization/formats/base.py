"""The `NumberFormat` protocol: how one tensor's values are represented at a bit width.

A format calibrates from the tensors it observes, gives the quantize-dequantize of a tensor at a
bit width (a `Grid`, computed once per bit width and cached by the `TensorQuantizer`), and states
what one value costs in bits. Affine integers, fixed point, log2 and the LQ codebook implement it;
`TensorQuantizer` knows nothing of any of them (torchao's `AffineQuantizedTensor` layouts and
ModelOpt's `QuantizerAttributeConfig` formats play the same role there).

The quantizer's range calibrator (max / percentile / mse) always runs beside the format: it gives
affine and log2 their range, and it is what the quantizer checks for "saw no data" and "all-zero".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

from torch import Tensor


class Calibrated(Protocol):
    """What a format reads of its quantizer (a `TensorQuantizer`): its calibrated range and layout.
    A protocol, so that formats never import the quantizer that imports them."""

    label: str
    axis: int | None
    narrow_range: bool

    @property
    def mode(self) -> str: ...

    def range(self, num_bits: int | None = None) -> tuple[Tensor, Tensor]: ...


class Grid(Protocol):
    """The quantize-dequantize of one format at one bit width, with its calibrated parameters."""

    @property
    def clip(self) -> tuple[Tensor | float, Tensor | float]:
        """The float range inside which the straight-through gradient passes."""
        ...

    def quantize(self, x: Tensor) -> Tensor:
        """Out of place, no gradient tricks."""
        ...

    def quantize_(self, x: Tensor) -> Tensor:
        """In place on `x` (a fresh tensor nobody else reads); returns it."""
        ...


class NumberFormat(ABC):
    """One tensor's number format. Stateful: it keeps what calibration showed it (one instance per
    quantizer). `grid` reads the quantizer's calibrated range, mode ("symmetric", "unsigned",
    "asymmetric"), axis (None: per tensor) and narrow_range where it needs them."""

    #: the name configs use (`quantization.weights.format`, `search_space.formats`)
    name: ClassVar[str]
    #: True where the format has no unsigned variant (a ReLU's output keeps its sign bit)
    signed_only: ClassVar[bool] = False
    #: False where the format always quantizes per tensor (the quantizer's axis is then None)
    per_channel: ClassVar[bool] = True
    #: the modes the format supports
    modes: ClassVar[tuple[str, ...]] = ("symmetric", "unsigned")

    @classmethod
    def create(cls, role: str, seed: int, settings: dict[str, Any]) -> NumberFormat:
        """One instance for a quantizer of `role` ("weight", "bias", "activation"); `seed` picks its
        calibration sample where it keeps one, `settings` are the config's options of the format."""
        return cls()

    def reset(self) -> None:
        """Forget what calibration showed (a new calibration starts)."""

    def collect(self, x: Tensor) -> None:
        """Observe one tensor during calibration (weights: once; activations: every batch)."""

    def min_bits(self, mode: str) -> int:
        """The smallest bit width the format represents in `mode`."""
        return 1

    @abstractmethod
    def grid(self, q: Calibrated, bits: int) -> Grid:
        """The calibrated quantize-dequantize at `bits` (the quantizer caches it per bit width)."""

    def value_bits(self, bits: int) -> float:
        """Storage bits of one value at `bits` (per-channel scales and codebooks not counted)."""
        return float(bits)

    def initial_bits(self) -> int | None:
        """The bit width a greedy search should start from where the format has a view (None: the
        highest choice)."""
        return None

    def describe(self, q: Calibrated, bits: int) -> dict[str, object]:
        """Format-specific fields of a deployment record (mpq.json) for `bits`."""
        return {}
