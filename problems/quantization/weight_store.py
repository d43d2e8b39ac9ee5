"""The quantized weights of a `QuantizedModel`: where each lives, its float value and its cached
fake-quantized values, swapped into the model by reference.

Why swap `param.data` rather than `torch.nn.utils.parametrize` (which would also put a quantizer on
any parameter): a parametrization recomputes its tensor at every access (or, under
`parametrize.cached()`, at every forward), renames the state dict keys (`weight` becomes
`parametrizations.weight.original`) and swaps the module's class. Pointing the parameter's data at a
tensor computed once per (weight, format, bits) costs nothing per evaluation, keeps the model's own
modules and names (its state dict still loads into the zoo model), and every reader of the parameter
sees it, also code that reads it without calling its module (nn.MultiheadAttention reads
`out_proj.weight` and `in_proj_weight` directly, as does the fused TransformerEncoderLayer path).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.placement import WeightSite, site_parameter, weight_layers


class WeightStore:
    """Per weight site (`placement.weight_sites`): the parameter, its float (folded) value and its
    fake-quantized values; per Conv/Linear bias with a quantizer (`quantize_biases`), the same."""

    def __init__(self, model: nn.Module, sites: Mapping[str, WeightSite], quantize_biases: bool) -> None:
        modules = dict(model.named_modules())
        self.sites = dict(sites)
        self.params = {n: site_parameter(modules, s) for n, s in self.sites.items()}
        self.float_weights = {n: p.detach() for n, p in self.params.items()}
        layers = weight_layers(modules) if quantize_biases else {}
        self.biases = {n: m.bias for n, m in layers.items() if m.bias is not None}
        self.float_biases = {n: b.detach() for n, b in self.biases.items()}
        self._weights: dict[tuple[str, str, int], Tensor] = {}
        self._biases: dict[tuple[str, int], Tensor] = {}

    def clear(self) -> None:
        """Forget the fake-quantized values (the quantizers were calibrated again)."""
        self._weights.clear()
        self._biases.clear()

    def quantized_weight(self, name: str, q: TensorQuantizer, bits: int) -> Tensor:
        """The weight fake-quantized by `q` at `bits`: computed once, the same object afterwards."""
        key = (name, q.format.name, bits)
        if key not in self._weights:
            self._weights[key] = q.quantize_tensor(self.float_weights[name], bits)
        return self._weights[key]

    def quantized_bias(self, name: str, q: TensorQuantizer, bits: int) -> Tensor:
        key = (name, bits)
        if key not in self._biases:
            self._biases[key] = q.quantize_tensor(self.float_biases[name], bits)
        return self._biases[key]

    def point(self, name: str, weight: TensorQuantizer | None, bias: TensorQuantizer | None) -> None:
        """Make the weight hold its value fake-quantized at `weight`'s bits (None: its float value),
        and its bias likewise where it has one in the store."""
        if weight is None:
            self.params[name].data = self.float_weights[name]
        else:
            self.params[name].data = self.quantized_weight(name, weight, weight.num_bits)
        if name in self.biases:
            b = self.float_biases[name] if bias is None else self.quantized_bias(name, bias, bias.num_bits)
            self.biases[name].data = b

    def parameter_counts(self, model: nn.Module) -> tuple[dict[str, int], dict[str, int]]:
        """(numel per quantized weight, numel per parameter left float, by qualified name) over every
        parameter of `model`, each counted once: a weight two quantizers share (tied Conv/Linear
        weights) under the first, biases with a quantizer in neither."""
        first: dict[int, str] = {}
        for n, p in self.params.items():
            first.setdefault(id(p), n)
        quantized = {n: self.params[n].numel() for n in first.values()}
        with_bias_quantizer = {id(b) for b in self.biases.values()}
        floats = {
            n: p.numel()
            for n, p in model.named_parameters()
            if id(p) not in first and id(p) not in with_bias_quantizer
        }
        return quantized, floats
