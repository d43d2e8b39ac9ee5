"""`quantization.backend: modelopt`: NVIDIA ModelOpt's fake quantizers behind `QuantizedModel`'s surface.

Why a second backend: a user who deploys with ModelOpt (TensorRT) wants the bits searched on the very
quantizers ModelOpt inserts, and a user whose model already holds ModelOpt (or NVIDIA
pytorch-quantization) `TensorQuantizer`s wants those searched, not a second set stacked on top.
`LayerwiseQuantizationProblem` sees the same surface as the native backend's (`weight_quantizers`,
`act_quantizers`, `set_bits`, `bits`, `layer_stats`, `float_mode`, `.model`), so the search,
the ties and include/exclude work unchanged, on the same layer names ("layer1.0.conv1").

Built once (`modelopt_quantized`): the model is deep-copied (the original stays as it is), BatchNorm
is folded as the native backend folds it (checked on the first calibration batch), and
`mtq.quantize` inserts quantizers from an explicit `quant_cfg`: every quantizer off, then on each
Conv1d/Conv2d/Linear (the native backend's layers) a weight quantizer (symmetric, narrow range as
the native one, per output channel or per tensor) and, unless no activation is quantized, an input
quantizer (per tensor, ModelOpt's signed full range), max-calibrated on the calibration split.
A model that already holds TensorQuantizers is deep-copied and taken as is (`holds_quantizers`):
its enabled quantizers become the variables. Bits flip in place: a quantizer's `num_bits`; ModelOpt
derives the scale from the calibrated amax at every forward, so nothing is rebuilt, but each weight is
fake-quantized again at every forward (the per-evaluation cost `dse bench` shows).
"""

from __future__ import annotations

import contextlib
import copy
import io
import operator
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dse.core.errors import DseError
from problems.quantization.folding import check_same_outputs, eval_outputs, fold_batchnorms
from problems.quantization.formats.quantizer import (
    BitsError,
    CalibrationError,
    check_bit_changes,
)
from problems.quantization.placement import WeightSite, weight_layers
from problems.quantization.stats import Stats, measure

MISSING = "quantization.backend: modelopt is not installed; install the extra: pip install 'dse[modelopt]'"
LIBRARIES = ("modelopt", "pytorch_quantization")  # whose TensorQuantizers a user's model may hold


def is_foreign_quantizer(m: nn.Module) -> bool:
    """A ModelOpt or pytorch-quantization TensorQuantizer (or subclass), told apart without importing
    either library (the native quantizer class has the same name)."""
    return any(
        c.__name__ == "TensorQuantizer" and c.__module__.split(".")[0] in LIBRARIES for c in type(m).__mro__
    )


def holds_quantizers(model: nn.Module) -> bool:
    return any(is_foreign_quantizer(m) for m in model.modules())


class ForeignQuantizer:
    """One library TensorQuantizer with the native quantizer's small surface (`num_bits`, `mode`,
    `enabled`, `check_bits`), so the problem's bookkeeping treats both alike."""

    def __init__(self, quantizer: nn.Module, label: str) -> None:
        if not isinstance(quantizer.num_bits, int):  # ModelOpt's FP8/FP4 formats: (exponent, mantissa)
            raise DseError(
                f"{label}: floating-point num_bits {quantizer.num_bits}; only integer bits are searched"
            )
        self.quantizer = quantizer
        self.label = label

    @property
    def num_bits(self) -> int:
        return int(self.quantizer.num_bits)

    @num_bits.setter
    def num_bits(self, value: int) -> None:
        self.quantizer.num_bits = int(value)

    @property
    def mode(self) -> str:
        return "unsigned" if self.quantizer.unsigned else "symmetric"

    @property
    def enabled(self) -> bool:
        return not self.quantizer._disabled  # both libraries keep the switch there

    @enabled.setter
    def enabled(self, on: bool) -> None:
        self.quantizer.enable() if on else self.quantizer.disable()

    def check_bits(self, num_bits: int, mode: str | None = None) -> int:
        """The validated bit width, or BitsError naming the quantizer (1 bit signed gives NaNs)."""
        try:
            b = operator.index(num_bits)
        except TypeError:
            raise BitsError(f"{self.label}: num_bits must be an integer, got {num_bits!r}") from None
        low = 1 if (mode or self.mode) == "unsigned" else 2
        if not low <= b <= 32:
            raise BitsError(
                f"{self.label}: {mode or self.mode} quantization needs num_bits in {low}..32, got {b}"
            )
        return b


class ForeignQuantizedModel(nn.Module):
    """A model holding library TensorQuantizers, searched through them. Keys: a `weight_quantizer` is
    named by its module ("layer1.0.conv1"), so is an `input_quantizer` (an activation quantizer: the
    input of that layer); any other enabled quantizer by its own qualified name."""

    def __init__(self, model: nn.Module, folded: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.model = model
        self.folded = list(folded)
        self.bias_quantizers: dict[str, ForeignQuantizer] = {}
        self.weight_quantizers: dict[str, ForeignQuantizer] = {}
        self.act_quantizers: dict[str, ForeignQuantizer] = {}
        modules = dict(model.named_modules())
        self._layers: dict[str, nn.Module] = {}
        for name, m in modules.items():
            if not is_foreign_quantizer(m) or m._disabled:
                continue
            parent, _, leaf = name.rpartition(".")
            if leaf == "weight_quantizer":
                self.weight_quantizers[parent] = ForeignQuantizer(m, f"weight quantizer '{parent}'")
                if isinstance(getattr(modules[parent], "weight", None), Tensor):
                    self._layers[parent] = modules[parent]
            else:
                key = parent if leaf == "input_quantizer" else name
                self.act_quantizers[key] = ForeignQuantizer(m, f"activation quantizer '{key}'")
        if not self.weight_quantizers and not self.act_quantizers:
            raise DseError("the model's TensorQuantizers are all disabled: nothing to search")

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        return self.model(x, *args, **kwargs)

    def set_bits(
        self,
        weights: Mapping[str, int] | None = None,
        activations: Mapping[str, int] | None = None,
        biases: Mapping[str, int] | None = None,
    ) -> None:
        """Change `num_bits` in place; every name and value is checked before anything changes."""
        tables = (
            ("weight", self.weight_quantizers, dict(weights or {})),
            ("activation", self.act_quantizers, dict(activations or {})),
            ("bias", self.bias_quantizers, dict(biases or {})),
        )
        check_bit_changes(tables)
        for _, table, new in tables:
            for n, b in new.items():
                table[n].num_bits = b

    def bits(self) -> dict[str, dict[str, int]]:
        return {
            "weights": {n: q.num_bits for n, q in self.weight_quantizers.items()},
            "activations": {n: q.num_bits for n, q in self.act_quantizers.items()},
            "biases": {},
        }

    @contextlib.contextmanager
    def float_mode(self) -> Iterator[ForeignQuantizedModel]:
        """Temporarily run the float model: every searched quantizer bypassed."""
        every = [*self.weight_quantizers.values(), *self.act_quantizers.values()]
        before = [q.enabled for q in every]
        for q in every:
            q.enabled = False
        try:
            yield self
        finally:
            for q, on in zip(every, before):
                q.enabled = on

    def layer_stats(self, example: Tensor) -> Stats:
        """Per weight-quantized layer, per sample: `params`, `macs`, `calls` (`stats.measure`), and
        `act_input`: the layer's own input quantizer where it has one (the activation its MACs take)."""
        sites = {n: WeightSite(n, "weight", 0, "layer", n) for n in self._layers}
        with torch.inference_mode(), self.float_mode():
            stats = measure(self, dict(self.model.named_modules()), sites, {}, example)[0]
        for name, st in stats.items():
            st["act_input"] = name if name in self.act_quantizers else None
        return stats

    def parameter_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(numel per quantized weight, numel per parameter left float, by qualified name)."""
        quantized = {n: m.weight.numel() for n, m in self._layers.items()}
        ids = {id(m.weight) for m in self._layers.values()}
        floats = {n: p.numel() for n, p in self.model.named_parameters() if id(p) not in ids}
        return quantized, floats


def quant_cfg(
    layers: Sequence[str], weight_bits: int, act_bits: int, per_channel: bool, activations: bool
) -> dict[str, Any]:
    """ModelOpt's config naming each layer's quantizers exactly (its names are fnmatch patterns)."""
    entries: list[dict[str, Any]] = [{"quantizer_name": "*", "enable": False}]
    for n in layers:
        prefix = f"{n}." if n else ""
        w = {"num_bits": weight_bits, "axis": 0 if per_channel else None, "narrow_range": True}
        entries.append({"quantizer_name": prefix + "weight_quantizer", "cfg": w, "enable": True})
        if activations:
            a = {"num_bits": act_bits, "axis": None}
            entries.append({"quantizer_name": prefix + "input_quantizer", "cfg": a, "enable": True})
    return {"quant_cfg": entries, "algorithm": "max"}


def modelopt_quantized(
    model: nn.Module,
    batches: Sequence[Tensor],
    *,
    fold_bn: bool = True,
    per_channel: bool = True,
    weight_bits: int = 8,
    act_bits: int = 8,
    activations: bool = True,
    min_samples: int = 1,
) -> ForeignQuantizedModel:
    """A quantized, calibrated copy of `model` (see the module docstring); `model` is left unchanged."""
    if holds_quantizers(model):
        return ForeignQuantizedModel(copy.deepcopy(model).eval().requires_grad_(False))
    seen = sum(len(x) for x in batches)
    if seen < min_samples:
        raise CalibrationError(f"calibration saw {seen} samples, fewer than min_samples={min_samples}")
    mtq = import_mtq()
    work = copy.deepcopy(model).eval().requires_grad_(False)
    folded = fold_batchnorms(work) if fold_bn else []
    if folded and batches:
        with torch.inference_mode():
            check_same_outputs(eval_outputs(model, batches[0]), eval_outputs(work, batches[0]), folded)
    layers = list(weight_layers(dict(work.named_modules())))
    if not layers:
        raise DseError("the model has no Conv1d/Conv2d/Linear layer for ModelOpt to quantize")
    cfg = quant_cfg(layers, weight_bits, act_bits, per_channel, activations)

    def loop(m: nn.Module) -> None:
        for x in batches:
            m(x)

    with torch.no_grad(), _quiet():
        work = mtq.quantize(work, cfg, forward_loop=loop)
    return ForeignQuantizedModel(work, folded)


def import_mtq() -> Any:
    """`modelopt.torch.quantization`, or the one-line error naming the extra."""
    try:
        with _quiet():
            import modelopt.torch.quantization as mtq
    except ImportError as e:
        raise DseError(f"{MISSING} ({e.name} missing)") from None
    return mtq


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ModelOpt prints "Inserted N quantizers" to stdout and warns (absent transformers, torch.jit
    deprecations): noise in a run's output (and stdout is `dse bench --json`'s)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*transformers.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.script in its import
        yield
