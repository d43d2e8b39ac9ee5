"""Quantizer placement: which tensors of a model get a quantizer, of which kind, and how it is applied.

This module exists to keep the quantization policy apart from `QuantizedModel`'s bookkeeping
(weight caches, calibration, bit flips): the weights of every Conv1d/Conv2d/Linear,
ConvTranspose1d/2d and Embedding, and the parameters a name regex picks (by default
MultiheadAttention's projections; `weight_sites`), get a symmetric, narrow-range,
per-output-channel quantizer, biases (optionally) a per-tensor one, and activations
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

from dse.core.errors import DseError
from problems.quantization.config import DEFAULT_WEIGHT_PARAMS
from problems.quantization.formats.base import NumberFormat
from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.formats.registry import FORMATS, make_format

WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
TRANSPOSED_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d)
#: nn.MultiheadAttention's projection weights that are its own parameters (its out_proj is a Linear)
ATTENTION_PARAMS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
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
    """The Conv1d/Conv2d/Linear layers: their weights get quantizers named by the module (BatchNorm
    folding, quantization-aware training and ONNX export handle exactly these)."""
    return {n: m for n, m in modules.items() if isinstance(m, WEIGHT_TYPES)}


@dataclass(frozen=True)
class WeightSite:
    """Where one weight quantizer's tensor lives: parameter `attr` of module `module` (qualified
    name), quantized per channel along `axis` (its output-channel axis; None: per tensor).

    `use` says how `stats.measure` counts its MACs, from hooks on module `caller`: "layer" (conv,
    linear: output numel x weights per output), "transposed" (input numel x weights per input
    channel), "embedding" (a lookup: 0), "attention" (a MultiheadAttention projection: its inputs'
    numel x output features), "attention_out" (its out_proj, which it never calls: the attention
    output's numel x in_features) or "unknown" (a parameter matched by name only: 0)."""

    module: str
    attr: str
    axis: int | None
    use: str
    caller: str


def weight_sites(model: nn.Module, params: str | None = DEFAULT_WEIGHT_PARAMS) -> dict[str, WeightSite]:
    """Every weight that gets a quantizer, in model order, keyed by the quantizer's name.

    By type: Conv1d/Conv2d/Linear (named by the module, as always), ConvTranspose1d/2d (axis 1:
    their weight is (in, out/groups, *k)) and Embedding (per row, as torch.ao quantizes embeddings:
    each looked-up vector keeps its own scale), named by the module. By name: every other parameter
    whose qualified name `params` matches (named by that qualified name). A parameter already
    claimed (tied weights) gets no second quantizer, Conv/Linear claiming first."""
    rx = re.compile(params) if params else None
    modules = list(model.named_modules())
    outs = {id(m.out_proj): n for n, m in modules if isinstance(m, nn.MultiheadAttention)}
    claimed = {id(m.weight) for _, m in modules if isinstance(m, WEIGHT_TYPES)}
    sites: dict[str, WeightSite] = {}
    for n, m in modules:
        if isinstance(m, WEIGHT_TYPES):
            via = outs.get(id(m))  # the attention whose out_proj this is (its name may be "")
            use = "layer" if via is None else "attention_out"
            sites[n] = WeightSite(n, "weight", 0, use, n if via is None else via)
        elif isinstance(m, (*TRANSPOSED_TYPES, nn.Embedding)) and id(m.weight) not in claimed:
            claimed.add(id(m.weight))
            use = "embedding" if isinstance(m, nn.Embedding) else "transposed"
            sites[n] = WeightSite(n, "weight", 0 if use == "embedding" else 1, use, n)
        for attr, p in m.named_parameters(recurse=False) if rx is not None else ():
            name = f"{n}.{attr}" if n else attr
            if id(p) in claimed or not rx.search(name):
                continue
            claimed.add(id(p))
            attention = isinstance(m, nn.MultiheadAttention) and attr in ATTENTION_PARAMS
            axis = 0 if p.dim() >= 2 else None
            sites[name] = WeightSite(n, attr, axis, "attention" if attention else "unknown", n)
    return sites


def require_layer_weights(sites: Mapping[str, WeightSite], refusal: str) -> None:
    """One line refusing a quantized weight that is not a Conv/Linear layer's own (an Embedding's, a
    ConvTranspose's, an attention's): `refusal` says who cannot handle it."""
    others = [n for n, s in sites.items() if s.use != "layer"]
    if others:
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        raise DseError(f"{refusal}, not the quantized weight '{others[0]}'{more}")


def site_parameter(modules: Mapping[str, nn.Module], site: WeightSite) -> nn.Parameter:
    """The parameter a site names, in a model whose `named_modules()` are `modules`."""
    return getattr(modules[site.module], site.attr)


def resolve_formats(
    default: str,
    weights: str | Sequence[str] | None,
    activations: str | None,
    settings: Mapping[str, Mapping[str, Any]] | None,
    act_samples: int,
) -> tuple[tuple[str, ...], str, dict[str, dict[str, Any]]]:
    """(weight formats, activation format, per-format settings) from `QuantizedModel`'s arguments:
    `default` where a kind names none; unknown names are refused."""
    weight_formats = ((weights,) if isinstance(weights, str) else tuple(weights or ())) or (default,)
    for f in (*weight_formats, activations or default):
        if f not in FORMATS:
            raise ValueError(f"unknown number format {f!r}; known: {', '.join(FORMATS.names())}")
    out = {k: dict(v) for k, v in (settings or {}).items()}
    out.setdefault("fixed_point", {}).setdefault("samples", act_samples)
    return weight_formats, activations or default, out


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

    def weight(self, name: str, axis: int | None = 0) -> TensorQuantizer:
        """`axis`: the weight's output-channel axis (per channel where the config and formats are)."""
        formats = self._formats(self.weight_formats, "weight")
        # per channel where the weights' own format is: the range calibrator serves every format,
        # and a per-tensor format (fixed point) keeps its own statistics whatever the axis
        per_channel = self.weight_per_channel and formats[0].per_channel
        return TensorQuantizer(
            self.weight_bits,
            "symmetric",
            axis=axis if per_channel else None,
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
