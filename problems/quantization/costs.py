"""The cost metrics of a quantization configuration: arithmetic on statistics measured once.

This module exists so that a cost never runs the model: per-weight parameter counts and MACs
(`stats.measure`, one forward pass at build time) and the model's parameter counts
(`QuantizedModel.parameter_counts`) turn bit widths into
- `total_bits`: the sum of the searched quantizers' bit widths;
- `weight_bits`: every quantized weight (and fixed-point bias) at its bits: what the quantizers store;
- `model_bits`: every parameter of the model as evaluated (BatchNorm folded), each counted once, the
  quantized ones at their bits and every one left float at 32 bits: what deploying the model stores;
- `bops`: MACs x weight bits x bits of the activation quantizer feeding the weight's layer (32
  where none does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from problems.quantization.variables import ACT, BIAS, FORMAT, WEIGHT

FLOAT_BITS = 32


@dataclass(frozen=True)
class CostModel:
    """`stats`: per weight quantizer, `params`, `macs` and `act_input` (`stats.measure`);
    `bias_params`: numel per bias quantizer; `weight_params` / `float_params`: numel per weight
    quantizer / per parameter left float, each parameter of the model once; `members`: each
    variable's units ("w:layer", ...); `activation_bits`: the bits of an activation quantizer a
    configuration does not name; `value_bits(unit, bits, format)`: what one value of a weight or
    bias quantizer costs at `bits` in its format (the format's `value_bits`; format: the value of
    its 'f:' unit, None where it has none). Default: the bits themselves."""

    stats: Mapping[str, Mapping[str, Any]]
    bias_params: Mapping[str, int]
    weight_params: Mapping[str, int]
    float_params: Mapping[str, int]
    members: Mapping[str, Sequence[str]]
    activation_bits: int
    value_bits: Callable[[str, int, int | None], float] | None = None

    def stored(self, unit: str, bits: Mapping[str, int]) -> float:
        """Storage bits of one value of a weight ("w:") or bias ("b:") unit at `bits`."""
        if self.value_bits is None:
            return bits[unit]
        return self.value_bits(unit, bits[unit], bits.get(FORMAT + unit[2:]))

    def costs(self, bits: Mapping[str, int], values: Mapping[str, int]) -> dict[str, float]:
        """The cost metrics of every quantizer at `bits` ({unit: bits}); `values` are the searched
        variables, whose units `total_bits` sums (format choices excluded)."""
        weight_bits = 0.0
        bops = 0.0
        for name, st in self.stats.items():
            wb = bits[WEIGHT + name]
            weight_bits += st["params"] * self.stored(WEIGHT + name, bits)
            feed = st.get("act_input")
            ab = bits.get(ACT + feed, self.activation_bits) if feed else FLOAT_BITS
            bops += st["macs"] * wb * ab
        biases = sum(n * self.stored(BIAS + name, bits) for name, n in self.bias_params.items())
        weight_bits += biases
        model_bits = sum(n * self.stored(WEIGHT + name, bits) for name, n in self.weight_params.items())
        model_bits += biases
        model_bits += FLOAT_BITS * sum(self.float_params.values())
        total = sum(bits[u] for v in values for u in self.members[v] if not u.startswith(FORMAT))
        return {
            "total_bits": float(total),
            "weight_bits": weight_bits,
            "bops": bops,
            "model_bits": float(model_bits),
        }

    def float_shares(self, at_least: float = 0.01) -> list[tuple[str, float]]:
        """(name, share of the model's parameter count) of each parameter left float holding at least
        `at_least` of it, largest first."""
        total = sum(self.weight_params.values()) + sum(self.bias_params.values())
        total += sum(self.float_params.values())
        shares = [(n, k / total) for n, k in self.float_params.items() if total and k / total >= at_least]
        return sorted(shares, key=lambda s: -s[1])


def float_note(shares: Sequence[tuple[str, float]], shown: int = 8) -> str | None:
    """The line a run starts with where parameters left float hold >= 1 % of the model (None: none):
    a quantizer missing from a large tensor is otherwise easy to overlook."""
    if not shares:
        return None
    listed = ", ".join(f"{n} {100 * s:.1f} %" for n, s in shares[:shown])
    rest = shares[shown:]
    more = f" and {len(rest)} more ({100 * sum(s for _, s in rest):.1f} % together)" if rest else ""
    return (
        f"parameters left float (32 bits in model_bits) holding >= 1 % of the model: {listed}{more} "
        "(quantization.weights.params puts quantizers on more)"
    )
