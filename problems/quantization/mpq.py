"""The quantization problem's part of mpq.json: every quantizer of one configuration, as deployed.

One entry per quantizer (weights, activations, the model input, fixed-point biases), named as the run
names it (`w:<module>`, `a:<module>`, `b:<module>`: the columns of evaluations.csv), so names are
unique even where a module has a weight and an output quantizer. ONE's fields (`dtype`, `granularity`)
come first; ours follow: bits, format, mode, axis, scale and amax (lists per channel), the fraction
length of fixed point, and the searched variable that sets the bits (null: not searched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from problems.quantization.formats.quantizer import TensorQuantizer

KINDS = {"w:": "weight", "a:": "output", "b:": "bias"}


def describe(problem: Any, values: Mapping[str, int], deployed: Any) -> list[dict[str, Any]]:
    """mpq.json `layers` for `values`, with the ranges `deployed` quantizes with (built after
    `problem.apply(values)`: its quantizers are copies, in the formats in use when it was built)."""
    setter = {unit: var for var, members in problem._members.items() for unit in members}
    tables = {"w:": deployed.weight_quantizers, "a:": deployed.act_quantizers, "b:": deployed.bias_quantizers}
    modules = dict(deployed.model.named_modules())
    layers = []
    for unit, bits in problem.unit_bits(values).items():
        prefix, module = unit[:2], unit[2:]
        if prefix not in tables:  # a weight's format ('f:'): its quantizer's entry says it
            continue
        q = tables[prefix][module]
        kind = "input" if prefix == "a:" and module not in modules else KINDS[prefix]
        layers.append(
            {
                "name": unit,
                **quantizer_fields(q, bits),
                "module": module,
                "tensor": kind,
                "variable": setter.get(unit),
            }
        )
    return layers


def dtype(bits: int, signed: bool) -> str:
    """ONE's dtype names ("uint8", "int16"), at the quantizer's own width ("int4", "uint2")."""
    return f"{'int' if signed else 'uint'}{bits}"


def quantizer_fields(q: TensorQuantizer, bits: int) -> dict[str, Any]:
    """ONE's fields, ours, then the format's own (scale and amax, a fraction length, a codebook)."""
    p = q.params(bits)
    signed = q.format.signed_only or q.mode == "symmetric"
    out: dict[str, Any] = {
        "dtype": dtype(bits, signed),
        "granularity": "channel" if q.axis is not None and q.format.per_channel else "layer",
        "bits": int(bits),
        "format": q.format.name,
        "mode": "symmetric" if q.format.signed_only else q.mode,
        "axis": q.axis if q.format.per_channel else None,
    }
    for field in ("scale", "qmin", "qmax"):
        if hasattr(p, field):
            out[field] = _plain(getattr(p, field))
    return out | {
        k: _plain(v) if isinstance(v, torch.Tensor | float) else v
        for k, v in q.format.describe(q, bits).items()
    }


def _plain(v: Any) -> float | list[float]:
    if isinstance(v, torch.Tensor):
        flat = v.detach().double().reshape(-1).cpu().tolist()
        return flat[0] if v.numel() == 1 and v.dim() == 0 else flat
    return float(v)
