"""The searched variables of a quantization problem: its quantizers, selected by the search space's
include/exclude patterns and grouped by its ties, each with the bit choices of its kind; and, with
`search_space.formats`, a number-format variable per searched weight."""

from __future__ import annotations

import re

from dse.core.errors import DseError
from dse.core.problem import Variable
from problems.quantization.config import BitsSpec, QuantizationConfig
from problems.quantization.formats.registry import FORMATS

WEIGHT, ACT, BIAS = "w:", "a:", "b:"  # BIAS: fixed-point biases (quantization.fixed_point.biases)
FORMAT = "f:"  # the number format of a weight (search_space.formats)


def searched_variables(
    cfg: QuantizationConfig, weights: list[str], acts: list[str], biases: list[str] = ()
) -> list[Variable]:
    """Searched units in model order, grouped by the ties (a tie takes its first member's place).
    Biases (fixed point) follow the weights' spec; layers without a bias have no bias unit."""
    ss = cfg.search_space
    units: list[tuple[str, tuple[int, ...]]] = []
    kinds = ((WEIGHT, weights, ss.weights), (BIAS, biases, ss.weights), (ACT, acts, ss.activations))
    for prefix, names, spec in kinds:
        if spec is None or (prefix == BIAS and not names):
            continue
        chosen = [n for n in names if _selected(n, spec)]
        if not chosen and prefix == BIAS:
            continue
        if not chosen:
            raise DseError(
                f"search_space.{'weights' if prefix == WEIGHT else 'activations'}: "
                f"include/exclude leave no quantizer to search (known: {', '.join(names[:6])} ...)"
            )
        choices = tuple(spec.values())
        q = cfg.quantization
        for fmt in [q.activation_format] if prefix == ACT else [q.weight_format, *(ss.formats or ())]:
            low = 2 if fmt == "affine" else FORMATS.get(fmt).create("weight", 0, {}).min_bits("symmetric")
            if choices[0] < low:
                raise DseError(f"search_space: {fmt} quantizers need at least {low} bits, got {choices[0]}")
        units += [(prefix + n, choices) for n in chosen]
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    order: list[str] = []
    for unit, choices in units:
        tie = next((t for t, rx in ss.ties.items() if re.search(rx, unit[2:])), None)
        key = tie or unit
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((unit, choices))
    for tie in ss.ties:
        if tie not in groups:
            raise DseError(f"search_space.ties.{tie}: the pattern matches no searched quantizer")
    variables = []
    for key in order:
        members = groups[key]
        common = sorted(set.intersection(*(set(c) for _, c in members)))
        if not common:
            raise DseError(f"search_space.ties.{key}: weights and activations in the tie share no bit choice")
        variables.append(Variable(key, tuple(common), tuple(u for u, _ in members)))
    return variables + format_variables(cfg, variables)


def format_variables(cfg: QuantizationConfig, bit_variables: list[Variable]) -> list[Variable]:
    """With `search_space.formats`: per variable of searched weights, 'f:<layer>' (or 'f:<tie>'),
    whose value indexes that list. Categorical: formats have no accuracy order to rely on."""
    formats = cfg.search_space.formats
    if not formats:
        return []
    out = []
    for v in bit_variables:
        weights = tuple(FORMAT + u[2:] for u in v.members if u.startswith(WEIGHT))
        if weights:
            name = FORMAT + (v.name[2:] if v.name.startswith(WEIGHT) else v.name)
            out.append(Variable(name, tuple(range(len(formats))), weights, categorical=True))
    return out


def _selected(name: str, spec: BitsSpec) -> bool:
    if spec.include is not None and not re.search(spec.include, name):
        return False
    return not (spec.exclude is not None and re.search(spec.exclude, name))
