"""`QuantizedModel`: a fake-quantized copy of a float model whose bits flip in place.

Built once (design rule: never deep-copy or rebuild per evaluation):

1. The model is deep-copied once (the original is never modified), put in eval mode and frozen.
2. BatchNorm folding (`fold_bn`): inside each parent module, a BatchNorm1d/2d registered right
   after a Conv2d (BatchNorm2d), Conv1d or Linear (BatchNorm1d) with matching channel count and
   running statistics is folded into that layer's weight and bias (a bias is added if missing) and
   replaced by `nn.Identity`. This covers `conv1, bn1, conv2, bn2` blocks and
   `nn.Sequential(conv, bn)` shortcuts. Registration order is only a heuristic, so `calibrate()`
   checks on its first batch that the folded float model reproduces the original's outputs.
3. Weight quantizers on every Conv1d/Conv2d/Linear weight (symmetric, narrow range, per output
   channel). Fake-quantized weights are computed once per (layer, bits) and swapped in by
   reference, so `set_bits` costs nothing per evaluation. Biases stay float.
4. Activation quantizers on module outputs (forward hooks) and on the model input. A hook fires at
   every call of its module, so a module used twice shares one quantizer and one calibration;
   functional ops (`F.relu`) are not seen.
5. `number_format="fixed_point"`: every quantizer gets a `FixedPointFormat` (per tensor, bits = word
   length, fraction length searched on the folded weight / a sample of the calibration outputs);
   `quantize_biases` adds bias quantizers `bias_quantizers[name]` (cached per (layer, bits) too).
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn

from problems.quantization.formats.fixed_point import FixedPointFormat
from problems.quantization.formats.quantizer import (
    CalibrationError,
    QuantizationError,
    TensorQuantizer,
    UnknownQuantizerError,
)

WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
UNSIGNED_TYPES = (nn.ReLU, nn.ReLU6)  # outputs known to be >= 0 before calibration
_FOLD_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv1d, nn.BatchNorm1d), (nn.Linear, nn.BatchNorm1d))
INPUT = "input"


class QuantizedModel(nn.Module):
    """Weight quantizers `weight_quantizers[name]` and activation quantizers `act_quantizers[name]`
    (plus "input"), keyed by the qualified module names of the original model."""

    def __init__(
        self,
        model: nn.Module,
        *,
        act_types: Sequence[str] = ("ReLU", "Linear"),
        act_names: str | None = None,
        quantize_input: bool = True,
        fold_bn: bool = True,
        weight_per_channel: bool = True,
        weight_calibrator: str = "max",
        act_calibrator: str = "percentile",
        percentile: float = 99.99,
        weight_bits: int = 8,
        act_bits: int = 8,
        number_format: str = "affine",
        quantize_biases: bool = False,
        act_samples: int = 65536,
    ) -> None:
        super().__init__()
        if number_format not in ("affine", "fixed_point"):
            raise ValueError(f"unknown number format {number_format!r}; known: affine, fixed_point")
        fixed = number_format == "fixed_point"
        self.number_format = number_format
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.__dict__["_original"] = model  # not a submodule; only for the folding check, then dropped
        rx = re.compile(act_names) if act_names else None
        act_modules = {
            n: m
            for n, m in self.model.named_modules()
            if n and (type(m).__name__ in act_types or (rx is not None and rx.search(n)))
        }
        self.folded: list[tuple[str, str]] = fold_batchnorms(self.model) if fold_bn else []
        current = dict(self.model.named_modules())  # folded BNs are Identity now
        self._layers = {n: m for n, m in current.items() if isinstance(m, WEIGHT_TYPES)}
        self._float_weights = {n: m.weight.detach() for n, m in self._layers.items()}
        self._wcache: dict[tuple[str, int], Tensor] = {}
        self._float_biases = {
            n: m.bias.detach() for n, m in self._layers.items() if quantize_biases and m.bias is not None
        }
        self._bcache: dict[tuple[str, int], Tensor] = {}
        self._float = False
        self.calibrated = False

        self.weight_quantizers = {
            n: TensorQuantizer(
                weight_bits,
                "symmetric",
                axis=0 if weight_per_channel and not fixed else None,
                calibrator=weight_calibrator,
                percentile=percentile,
                label=f"weight quantizer '{n}'",
                fixed_point=FixedPointFormat() if fixed else None,
            )
            for n in self._layers
        }
        self.bias_quantizers = {
            n: TensorQuantizer(
                weight_bits,
                label=f"bias quantizer '{n}'",
                fixed_point=FixedPointFormat() if fixed else None,
            )
            for n in self._float_biases
        }

        def act_quantizer(n: str, unsigned: bool) -> TensorQuantizer:
            return TensorQuantizer(
                act_bits,
                "unsigned" if unsigned and not fixed else "symmetric",
                calibrator=act_calibrator,
                percentile=percentile,
                label=f"activation quantizer '{n}'",
                fixed_point=FixedPointFormat(act_samples, seed=len(self.act_quantizers)) if fixed else None,
            )

        self.act_quantizers: dict[str, TensorQuantizer] = {}
        self._input_q = act_quantizer(INPUT, False) if quantize_input else None
        if self._input_q is not None:
            if INPUT in act_modules:
                raise QuantizationError(f"module '{INPUT}' clashes with the input quantizer's name")
            self.act_quantizers[INPUT] = self._input_q
        for n, m in act_modules.items():
            q = self.act_quantizers[n] = act_quantizer(n, isinstance(m, UNSIGNED_TYPES))
            current[n].register_forward_hook(_output_hook(q))
        self._act_modes = {n: q.mode for n, q in self.act_quantizers.items()}  # before calibration
        self._quantizers = nn.ModuleDict(
            {"w:" + n.replace(".", "/"): q for n, q in self.weight_quantizers.items()}
            | {"a:" + n.replace(".", "/"): q for n, q in self.act_quantizers.items()}
            | {"b:" + n.replace(".", "/"): q for n, q in self.bias_quantizers.items()}
        )  # registered so that .to(), repr() and named_modules() see the quantizers

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        if self._input_q is not None:
            x = self._input_q(x)
        return self.model(x, *args, **kwargs)

    # -- calibration ----------------------------------------------------------------------------
    def calibrate(self, batches: Iterable[Tensor], min_samples: int = 1) -> None:
        """Collect activation statistics on float outputs and weight ranges from the folded weights.

        Batches may also be (x, y) pairs. Raises CalibrationError naming the culprit. Bits changed
        later never recalibrate; calling calibrate() again starts from scratch.
        """
        self.calibrated, self._float = False, True
        self._wcache.clear()
        self._bcache.clear()
        self.sync_weights()
        try:
            self._collect(batches, min_samples)
            for n, q in self.weight_quantizers.items():
                q.begin_calibration()
                q(self._float_weights[n])
                q.end_calibration(allow_zero=True)  # an all-zero weight is exact at any bits
            for n, q in self.bias_quantizers.items():
                q.begin_calibration()
                q(self._float_biases[n])
                q.end_calibration(allow_zero=True)
            self.calibrated = True
        finally:
            self._float = False
            self.sync_weights()

    def _collect(self, batches: Iterable[Tensor], min_samples: int) -> None:
        it = iter(batches)
        first = next(it, None)
        if first is not None and self.folded and self._original is not None:
            self._check_folding(_inputs(first))
        seen = 0
        acts = self.act_quantizers.values()
        for n, q in self.act_quantizers.items():
            q.mode = self._act_modes[n]
            q.begin_calibration()
        try:
            with torch.inference_mode():
                for batch in chain([first] if first is not None else [], it):
                    x = _inputs(batch)
                    self(x)
                    seen += x.shape[0]
        finally:
            for q in acts:
                q.stop_calibration()
        if seen < min_samples:
            raise CalibrationError(f"calibration saw {seen} samples, fewer than min_samples={min_samples}")
        for q in acts:
            low = q.calibrator.min_seen
            if q.fixed_point is None and q.mode == "symmetric" and low is not None and bool((low >= 0).all()):
                q.mode = "unsigned"  # data proved non-negative: spend no bit on the sign
            q.end_calibration()

    def _check_folding(self, x: Tensor) -> None:
        """The folded float copy must reproduce the original model (eval mode) on one batch."""
        original = self._original
        training = {m: m.training for m in original.modules()}
        try:
            original.eval()
            with torch.inference_mode(), self.float_mode():
                ref, got = _tensors(original(x)), _tensors(self(x))
        finally:
            for m, mode in training.items():
                m.training = mode
        self.__dict__["_original"] = None
        same = [a.shape for a in ref] == [b.shape for b in got]
        diff = (
            max(((a.float() - b.float()).abs().max().item() for a, b in zip(ref, got)), default=0.0)
            if same
            else math.inf
        )
        size = max((a.float().abs().max().item() for a in ref), default=0.0)
        if diff > 1e-3 * max(1.0, size):
            pairs = ", ".join(f"{c}+{b}" for c, b in self.folded)
            raise QuantizationError(
                f"BatchNorm folding changed the float output by {diff:.3g} "
                f"(folded {pairs}); set quantization.fold_bn: false"
            )

    # -- bits -------------------------------------------------------------------------------------
    def set_bits(
        self,
        weights: Mapping[str, int] | None = None,
        activations: Mapping[str, int] | None = None,
        biases: Mapping[str, int] | None = None,
    ) -> None:
        """Change bit widths in place; all names and values are checked before anything changes."""
        weights, activations, biases = dict(weights or {}), dict(activations or {}), dict(biases or {})
        for kind, table, new in (
            ("weight", self.weight_quantizers, weights),
            ("activation", self.act_quantizers, activations),
            ("bias", self.bias_quantizers, biases),
        ):
            for n, b in new.items():
                if n not in table:
                    raise UnknownQuantizerError(f"unknown {kind} quantizer '{n}'")
                table[n].check_bits(b, table[n].mode)
        for n, b in activations.items():
            self.act_quantizers[n].num_bits = b
        for n, b in weights.items():
            self.weight_quantizers[n].num_bits = b
            self._sync_weight(n)
        for n, b in biases.items():
            self.bias_quantizers[n].num_bits = b
            self._sync_weight(n)

    def bits(self) -> dict[str, dict[str, int]]:
        return {
            "weights": {n: q.num_bits for n, q in self.weight_quantizers.items()},
            "activations": {n: q.num_bits for n, q in self.act_quantizers.items()},
            "biases": {n: q.num_bits for n, q in self.bias_quantizers.items()},
        }

    def quantized_weight(self, name: str, num_bits: int | None = None) -> Tensor:
        """The cached fake-quantized (folded) weight of a layer; the same object for the same bits."""
        q = self.weight_quantizers[name]
        bits = q.num_bits if num_bits is None else num_bits
        key = (name, bits)
        if key not in self._wcache:
            self._wcache[key] = q.quantize_tensor(self._float_weights[name], bits)
        return self._wcache[key]

    def quantized_bias(self, name: str, num_bits: int | None = None) -> Tensor:
        """The cached fake-quantized (folded) bias of a layer with a bias quantizer."""
        q = self.bias_quantizers[name]
        key = (name, q.num_bits if num_bits is None else num_bits)
        if key not in self._bcache:
            self._bcache[key] = q.quantize_tensor(self._float_biases[name], key[1])
        return self._bcache[key]

    def float_weight(self, name: str) -> Tensor:
        return self._float_weights[name]

    def _sync_weight(self, name: str) -> None:
        """Point the layer's weight (and bias, where it has a bias quantizer) at what its quantizer asks."""
        q = self.weight_quantizers[name]
        quantized = not self._float and q.enabled and self.calibrated
        self._layers[name].weight.data = (
            self.quantized_weight(name) if quantized else self._float_weights[name]
        )
        bq = self.bias_quantizers.get(name)
        if bq is not None:
            on = not self._float and bq.enabled and self.calibrated
            self._layers[name].bias.data = self.quantized_bias(name) if on else self._float_biases[name]

    def sync_weights(self) -> None:
        """Re-point every layer at the weight its quantizer asks for (call after toggling `enabled`)."""
        for n in self._layers:
            self._sync_weight(n)

    @contextlib.contextmanager
    def float_mode(self) -> Iterator[QuantizedModel]:
        """Temporarily run the float (folded) model: every quantizer off, float weights."""
        enabled = {n: q.enabled for n, q in self.act_quantizers.items()}
        previous, self._float = self._float, True
        for q in self.act_quantizers.values():
            q.enabled = False
        self.sync_weights()
        try:
            yield self
        finally:
            self._float = previous
            for n, e in enabled.items():
                self.act_quantizers[n].enabled = e
            self.sync_weights()

    # -- statistics -------------------------------------------------------------------------------
    def layer_stats(self, example: Tensor) -> dict[str, dict[str, Any]]:
        """Per weight-quantized layer, per sample of `example`: `params` (weight numel), `macs`
        (output numel x weight numel per output channel, summed over calls), `act_input` (key of the
        activation quantizer whose output the layer consumes, or None) and `calls`."""
        return self._measure(example)[0]

    def activation_stats(self, example: Tensor) -> dict[str, dict[str, Any]]:
        """Per activation quantizer, per sample: `numel` quantized (summed over calls) and `calls`."""
        return self._measure(example)[1]

    def _measure(self, example: Tensor) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        n = example.shape[0]
        layers = {
            k: {"params": m.weight.numel(), "macs": 0, "act_input": None, "calls": 0}
            for k, m in self._layers.items()
        }
        acts = {k: {"numel": 0, "calls": 0} for k in self.act_quantizers}
        producer: dict[int, str] = {}  # data_ptr of a quantizer output -> its key
        keep: list[Tensor] = []  # keeps those tensors alive so their addresses are not reused

        def act_hook(key: str):
            def hook(_m: nn.Module, _args: Any, out: Tensor) -> None:
                producer[out.data_ptr()] = key
                keep.append(out)
                acts[key]["numel"] += out.numel() // n
                acts[key]["calls"] += 1

            return hook

        def layer_hooks(key: str, per_out: int):
            def pre(_m: nn.Module, args: Any) -> None:
                if layers[key]["calls"] == 0 and args and isinstance(args[0], Tensor):
                    layers[key]["act_input"] = producer.get(args[0].data_ptr())

            def post(_m: nn.Module, _args: Any, out: Tensor) -> None:
                layers[key]["macs"] += out.numel() // n * per_out
                layers[key]["calls"] += 1

            return pre, post

        handles = [q.register_forward_hook(act_hook(k)) for k, q in self.act_quantizers.items()]
        for k, m in self._layers.items():
            pre, post = layer_hooks(k, m.weight[0].numel())
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        try:
            with torch.inference_mode(), self.float_mode():
                self(example)
        finally:
            for h in handles:
                h.remove()
        return layers, acts


def _output_hook(q: TensorQuantizer):
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


def _inputs(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


# -- BatchNorm folding ----------------------------------------------------------------------------
def fold_batchnorms(model: nn.Module) -> list[tuple[str, str]]:
    """Fold BNs registered right after a matching conv/linear of the same parent (see module doc).

    Modules registered in several places are left alone. Returns (layer, bn) qualified names.
    """
    uses = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    folded = []
    for pname, parent in list(model.named_modules()):
        kids = list(parent.named_children())
        for (lname, layer), (bname, bn) in zip(kids, kids[1:]):
            if _foldable(layer, bn) and uses[id(layer)] == 1 and uses[id(bn)] == 1:
                _fold(layer, bn)
                setattr(parent, bname, nn.Identity())
                folded.append((_join(pname, lname), _join(pname, bname)))
    return folded


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if not any(isinstance(layer, lt) and isinstance(bn, bt) for lt, bt in _FOLD_PAIRS):
        return False
    out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return bn.num_features == out and bn.track_running_stats and bn.running_mean is not None


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.Module) -> None:
    """W' = W * g/std per output channel, b' = (b - mean) * g/std + beta (eval-mode BN), in float64."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    factor = gamma / std
    w = layer.weight
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(std)
    w.copy_(w.double() * factor.reshape(-1, *[1] * (w.dim() - 1)))
    new_bias = ((bias - bn.running_mean.double()) * factor + beta).to(w.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias, requires_grad=False)
    else:
        layer.bias.copy_(new_bias)


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child
