"""`QuantizedModel`: a fake-quantized copy of a float model whose bits flip in place.

Built once (design rule: never deep-copy or rebuild per evaluation):

1. The model is deep-copied once (the original is never modified), put in eval mode and frozen.
2. BatchNorm folding (`fold_bn`, see `problems.quantization.folding`): BNs registered right after
   a matching conv/linear are folded into it; `calibrate()` checks on its first batch that the
   folded float model reproduces the original's outputs.
3. Weight quantizers (symmetric, narrow range, per output channel) on every Conv/Linear,
   ConvTranspose and Embedding weight and the parameters `weight_params` names (`weight_sites`).
   Fake-quantized weights are computed once per (weight, format, bits) and swapped in by reference
   (`weight_store`), so `set_bits` costs nothing per evaluation. Biases stay float.
4. Activation quantizers on module outputs (forward hooks) and on the model input. A hook fires at
   every call of its module (a module used twice shares one quantizer); `F.relu` is not seen.
5. Number formats (formats/registry.py): `number_format`, or `weight_format` / `act_format` per kind
   (several weight formats: all calibrated, switched per layer by `set_formats`). `quantize_biases`
   adds bias quantizers `bias_quantizers[name]` in the weights' format.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn

from problems.quantization.folding import check_same_outputs, eval_outputs, fold_batchnorms
from problems.quantization.formats.quantizer import (
    CalibrationError,
    QuantizationError,
    TensorQuantizer,
    UnknownQuantizerError,
    check_bit_changes,
)
from problems.quantization.graph import may_run_in_place
from problems.quantization.placement import (
    DEFAULT_WEIGHT_PARAMS,
    UNSIGNED_TYPES,
    QuantizerFactory,
    act_modules,
    output_hook,
    resolve_formats,
    weight_sites,
)
from problems.quantization.stats import Stats, measure
from problems.quantization.weight_store import WeightStore

INPUT = "input"


class QuantizedModel(nn.Module):
    """Weight quantizers `weight_quantizers[name]` and activation quantizers `act_quantizers[name]`
    (plus "input"), keyed by the qualified module names of the original model (a weight that is
    no module's `weight`, such as "...self_attn.in_proj_weight": by its qualified parameter name)."""

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
        weight_format: str | Sequence[str] | None = None,
        act_format: str | None = None,
        format_settings: Mapping[str, Mapping[str, Any]] | None = None,
        weight_params: str | None = DEFAULT_WEIGHT_PARAMS,
    ) -> None:
        super().__init__()
        formats = resolve_formats(number_format, weight_format, act_format, format_settings, act_samples)
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.__dict__["_original"] = model  # not a submodule; only for the folding check, then dropped
        acts = act_modules(self.model, act_types, act_names)
        self.folded: list[tuple[str, str]] = fold_batchnorms(self.model) if fold_bn else []
        current = dict(self.model.named_modules())  # folded BNs are Identity now
        self.weight_sites = weight_sites(self.model, weight_params)
        self._store = WeightStore(self.model, self.weight_sites, quantize_biases)
        self._float_biases = self._store.float_biases  # the folded biases that get quantizers
        self._float = False
        self.calibrated = False

        make = QuantizerFactory(
            weight_bits,
            act_bits,
            weight_per_channel,
            weight_calibrator,
            act_calibrator,
            percentile,
            *formats,
        )
        self.weight_quantizers = {n: make.weight(n, s.axis) for n, s in self.weight_sites.items()}
        self.bias_quantizers = {n: make.bias(n) for n in self._float_biases}
        self.act_quantizers: dict[str, TensorQuantizer] = {}
        self._input_q = make.activation(INPUT, None, seed=0) if quantize_input else None
        if self._input_q is not None:
            if INPUT in acts:
                raise QuantizationError(f"module '{INPUT}' clashes with the input quantizer's name")
            self.act_quantizers[INPUT] = self._input_q
        for n, m in acts.items():
            q = make.activation(n, m, seed=len(self.act_quantizers))
            self.act_quantizers[n] = q
            current[n].register_forward_hook(output_hook(q))
        for n in may_run_in_place(self.model, UNSIGNED_TYPES):  # no output allocated per call
            current[n].inplace = True
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
        self._store.clear()
        self.sync_weights()
        try:
            self._collect(batches, min_samples)
            for n, q in self.weight_quantizers.items():
                q.calibrate_on(self._store.float_weights[n])
            for n, q in self.bias_quantizers.items():
                q.calibrate_on(self._float_biases[n])
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
            if (
                not q.format.signed_only
                and q.mode == "symmetric"
                and low is not None
                and bool((low >= 0).all())
            ):
                q.mode = "unsigned"  # data proved non-negative: spend no bit on the sign
            q.end_calibration()

    def _check_folding(self, x: Tensor) -> None:
        """The folded float copy must reproduce the original model (eval mode) on one batch."""
        with torch.inference_mode(), self.float_mode():
            ref, got = eval_outputs(self._original, x), self(x)
        self.__dict__["_original"] = None
        check_same_outputs(ref, got, self.folded)

    # -- bits -------------------------------------------------------------------------------------
    def set_bits(
        self,
        weights: Mapping[str, int] | None = None,
        activations: Mapping[str, int] | None = None,
        biases: Mapping[str, int] | None = None,
    ) -> None:
        """Change bit widths in place; all names and values are checked before anything changes."""
        weights, activations, biases = dict(weights or {}), dict(activations or {}), dict(biases or {})
        check_bit_changes(
            [
                ("weight", self.weight_quantizers, weights),
                ("activation", self.act_quantizers, activations),
                ("bias", self.bias_quantizers, biases),
            ]
        )
        for n, b in activations.items():
            self.act_quantizers[n].num_bits = b
        for n, b in weights.items():
            self.weight_quantizers[n].num_bits = b
            self._sync_weight(n)
        for n, b in biases.items():
            self.bias_quantizers[n].num_bits = b
            self._sync_weight(n)

    def set_formats(self, weights: Mapping[str, str]) -> None:
        """Switch weights to another of their calibrated formats (search_space.formats), in place;
        all names are checked before anything changes."""
        for n, f in weights.items():
            if n not in self.weight_quantizers or f not in self.weight_quantizers[n].formats:
                raise UnknownQuantizerError(f"no weight quantizer '{n}' calibrated in format {f!r}")
        for n, f in weights.items():
            if self.weight_quantizers[n].format.name != f:
                self.weight_quantizers[n].use_format(f)
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
        return self._store.quantized_weight(name, q, q.num_bits if num_bits is None else num_bits)

    def quantized_bias(self, name: str, num_bits: int | None = None) -> Tensor:
        """The cached fake-quantized (folded) bias of a layer with a bias quantizer."""
        q = self.bias_quantizers[name]
        return self._store.quantized_bias(name, q, q.num_bits if num_bits is None else num_bits)

    def float_weight(self, name: str) -> Tensor:
        return self._store.float_weights[name]

    def _sync_weight(self, name: str) -> None:
        """Point the weight (and bias, where it has a bias quantizer) at what its quantizer asks."""
        on = not self._float and self.calibrated
        q, bq = self.weight_quantizers[name], self.bias_quantizers.get(name)
        self._store.point(name, q if on and q.enabled else None, bq if on and bq and bq.enabled else None)

    def sync_weights(self) -> None:
        """Re-point every weight at what its quantizer asks for (call after toggling `enabled`)."""
        for n in self.weight_sites:
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
    def layer_stats(self, example: Tensor) -> Stats:
        """Per weight quantizer, per sample of `example`: `params`, `macs`, `act_input`, `calls`
        (see `stats.measure`)."""
        return self._measure(example)[0]

    def activation_stats(self, example: Tensor) -> Stats:
        """Per activation quantizer, per sample of `example`: `numel`, `calls` (see `stats.measure`)."""
        return self._measure(example)[1]

    def _measure(self, example: Tensor) -> tuple[Stats, Stats]:
        with torch.inference_mode(), self.float_mode():
            modules = dict(self.model.named_modules())
            return measure(self, modules, self.weight_sites, self.act_quantizers, example)

    def parameter_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(numel per weight quantizer, numel per parameter left float) over every parameter of the
        model as evaluated (BatchNorm folded), each counted once (`WeightStore.parameter_counts`)."""
        return self._store.parameter_counts(self.model)


def _inputs(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch
