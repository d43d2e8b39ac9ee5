"""Quantizer placement: which tensors of a model get a quantizer, of which kind, and how it is applied.

This module exists to keep the quantization policy apart from `QuantizedModel`'s bookkeeping
(weight caches, calibration, bit flips): weights of every Conv1d/Conv2d/Linear get a symmetric,
narrow-range, per-output-channel quantizer, biases (optionally) a per-tensor one, and activations
(outputs of modules picked by type name or a name regex, plus the model input) one applied by a
forward hook, unsigned where the module's output is known to be non-negative. With
`fixed_point=True` every quantizer gets a per-tensor `FixedPointFormat` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from problems.quantization.formats.fixed_point import FixedPointFormat
from problems.quantization.formats.quantizer import TensorQuantizer

WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
UNSIGNED_TYPES = (nn.ReLU, nn.ReLU6)  # outputs known to be >= 0 before calibration


def act_modules(model: nn.Module, act_types: Sequence[str], act_names: str | None) -> dict[str, nn.Module]:
    """Modules whose output gets an activation quantizer: by class name, or qualified name regex."""
    rx = re.compile(act_names) if act_names else None
    return {
        n: m
        for n, m in model.named_modules()
        if n and (type(m).__name__ in act_types or (rx is not None and rx.search(n)))
    }


def weight_layers(modules: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    """The layers whose weight gets a quantizer."""
    return {n: m for n, m in modules.items() if isinstance(m, WEIGHT_TYPES)}


@dataclass(frozen=True)
class QuantizerFactory:
    """The settings every quantizer of one model shares; builds one quantizer per tensor."""

    weight_bits: int
    act_bits: int
    weight_per_channel: bool
    weight_calibrator: str
    act_calibrator: str
    percentile: float
    fixed_point: bool
    act_samples: int

    def weight(self, name: str) -> TensorQuantizer:
        return TensorQuantizer(
            self.weight_bits,
            "symmetric",
            axis=0 if self.weight_per_channel and not self.fixed_point else None,
            calibrator=self.weight_calibrator,
            percentile=self.percentile,
            label=f"weight quantizer '{name}'",
            fixed_point=FixedPointFormat() if self.fixed_point else None,
        )

    def bias(self, name: str) -> TensorQuantizer:
        return TensorQuantizer(
            self.weight_bits,
            label=f"bias quantizer '{name}'",
            fixed_point=FixedPointFormat() if self.fixed_point else None,
        )

    def activation(self, name: str, module: nn.Module | None, seed: int) -> TensorQuantizer:
        """For the output of `module` (None: the model input); `seed` picks the fixed-point
        format's calibration sample (one per quantizer)."""
        fixed = self.fixed_point
        unsigned = isinstance(module, UNSIGNED_TYPES)
        return TensorQuantizer(
            self.act_bits,
            "unsigned" if unsigned and not fixed else "symmetric",
            calibrator=self.act_calibrator,
            percentile=self.percentile,
            label=f"activation quantizer '{name}'",
            fixed_point=FixedPointFormat(self.act_samples, seed=seed) if fixed else None,
        )


def output_hook(q: TensorQuantizer):
    """Quantize a module's output; in place when it is fresh (shares no storage with an argument)
    or the module is declared in-place (ReLU(inplace=True)): saves an allocation per call."""

    def hook(m: nn.Module, args: Any, out: Any) -> Any:
        if not isinstance(out, Tensor):
            return None
        if getattr(m, "inplace", False) is True:
            return q(out, inplace=True)
        ptr = out.untyped_storage().data_ptr()
        shared = any(isinstance(a, Tensor) and a.untyped_storage().data_ptr() == ptr for a in args)
        return q(out, inplace=not shared)

    return hook
