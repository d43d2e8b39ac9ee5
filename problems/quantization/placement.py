"""Quantizer placement: which tensors of a model get a quantizer, of which kind, and how it is applied.

This module exists to keep the quantization policy apart from `QuantizedModel`'s bookkeeping
(weight caches, calibration, bit flips): weights of every Conv1d/Conv2d/Linear get a symmetric,
narrow-range, per-output-channel quantizer, biases (optionally) a per-tensor one, and activations
(outputs of modules picked by type name or a name regex, plus the model input) one applied by a
forward hook, unsigned where the module's output is known to be non-negative. Each quantizer gets
fresh instances of the configured number formats (per tensor where a format has no per-channel form).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from problems.quantization.formats.base import NumberFormat
from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.formats.registry import make_format

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
    weight_formats: tuple[str, ...]  # several: every one calibrated, the first used (search_space.formats)
    act_format: str
    #: per format name, the config's options of that format (e.g. fixed_point: {samples: ...})
    format_settings: Mapping[str, Mapping[str, Any]]

    def _formats(self, names: Sequence[str], role: str, seed: int = 0) -> list[NumberFormat]:
        return [make_format(n, role, seed, self.format_settings.get(n)) for n in names]

    def weight(self, name: str) -> TensorQuantizer:
        formats = self._formats(self.weight_formats, "weight")
        per_channel = self.weight_per_channel and all(f.per_channel for f in formats)
        return TensorQuantizer(
            self.weight_bits,
            "symmetric",
            axis=0 if per_channel else None,
            calibrator=self.weight_calibrator,
            percentile=self.percentile,
            label=f"weight quantizer '{name}'",
            format=formats,
        )

    def bias(self, name: str) -> TensorQuantizer:
        return TensorQuantizer(
            self.weight_bits,
            label=f"bias quantizer '{name}'",
            format=self._formats(self.weight_formats[:1], "bias"),
        )

    def activation(self, name: str, module: nn.Module | None, seed: int) -> TensorQuantizer:
        """For the output of `module` (None: the model input); `seed` picks the format's calibration
        sample where it keeps one (one per quantizer)."""
        (fmt,) = self._formats([self.act_format], "activation", seed)
        unsigned = isinstance(module, UNSIGNED_TYPES) and not fmt.signed_only
        return TensorQuantizer(
            self.act_bits,
            "unsigned" if unsigned else "symmetric",
            calibrator=self.act_calibrator,
            percentile=self.percentile,
            label=f"activation quantizer '{name}'",
            format=fmt,
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
