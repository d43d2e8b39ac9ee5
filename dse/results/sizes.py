"""Sizes for people: "12.3 KiB (10.4x vs float, 2.6x vs 8-bit)" from a raw metric value.

A problem declares which of its metrics are sizes and their unit (`Problem.SIZE_METRICS`) and the
sizes the compression ratios are taken against (`Problem.size_baselines`); a run records both in
summary.json under "sizes", so plots, tables, the report and `dse pick` format sizes from the run
folder alone. The CSVs keep the raw values. Units "bits" and "bytes" are shown in B/KiB/MiB/GiB
(1 KiB = 1024 bytes = 8192 bits); any other unit (a count, e.g. "weights") as a plain number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BINARY_PREFIXES = ("B", "KiB", "MiB", "GiB", "TiB")
BITS_PER_BYTE = {"bits": 8.0, "bytes": 1.0}


@dataclass(frozen=True)
class SizeInfo:
    """How one size metric is shown: its unit and {label: baseline size} for the ratios."""

    unit: str
    baselines: dict[str, float] = field(default_factory=dict)

    def format(self, value: float) -> str:
        return format_size(value, self.unit)

    def describe(self, value: float) -> str:
        return describe_size(value, self.baselines, self.unit)

    def annotate(self, value: float) -> str:
        """E.g. "12.0 KiB, 10.7x vs float, 2.7x vs 8-bit": to follow a raw value in brackets."""
        return ", ".join(filter(None, [self.format(value), format_ratios(value, self.baselines)]))

    def ratios(self, value: float) -> dict[str, float]:
        return compression_ratios(value, self.baselines)

    def baselines_text(self) -> str:
        """E.g. "float 12.5 KiB, 8-bit 3.13 KiB": what the ratios are taken against."""
        return ", ".join(f"{label} {self.format(v)}" for label, v in self.baselines.items())

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "baselines": dict(self.baselines)}


def format_size(value: float, unit: str = "bits") -> str:
    """8192 bits -> "1.00 KiB"; 12.3 * 8192 -> "12.3 KiB"; 100 bits -> "12.5 B". Three significant digits."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if unit not in BITS_PER_BYTE:
        return f"{value:,.0f} {unit}" if value == int(value) else f"{value:,.4g} {unit}"
    scale, prefix = prefix_scale(value, unit)
    amount = value / scale
    if prefix == "B":
        return f"{amount:.4g} B"
    return f"{_three_digits(amount)} {prefix}"


def prefix_scale(value: float, unit: str = "bits") -> tuple[float, str]:
    """(metric units per shown unit, its name) for a size: 8192 bits -> (8192.0, "KiB")."""
    scale, prefix = BITS_PER_BYTE[unit], 0
    while abs(value) >= 1024 * scale and prefix < len(BINARY_PREFIXES) - 1:
        scale *= 1024
        prefix += 1
    return scale, BINARY_PREFIXES[prefix]


def compression_ratios(value: float, baselines: Mapping[str, float]) -> dict[str, float]:
    """{label: baseline / value}: how many times smaller than each baseline (empty where value <= 0)."""
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        return {}
    return {label: float(base) / value for label, base in baselines.items() if math.isfinite(float(base))}


def format_ratio(ratio: float) -> str:
    """10.42 -> "10.4x", 4 -> "4.0x", 0.5 -> "0.50x", 123.4 -> "123x"."""
    if ratio < 1:
        return f"{ratio:.2f}x"
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def format_ratios(value: float, baselines: Mapping[str, float]) -> str:
    """E.g. "10.4x vs float, 2.6x vs 8-bit" (empty without baselines)."""
    ratios = compression_ratios(value, baselines)
    return ", ".join(f"{format_ratio(r)} vs {label}" for label, r in ratios.items())


def describe_size(value: float, baselines: Mapping[str, float] | None = None, unit: str = "bits") -> str:
    """E.g. "12.3 KiB (10.4x vs float, 2.6x vs 8-bit)"; the size alone where there are no baselines."""
    ratios = format_ratios(value, baselines or {})
    return format_size(value, unit) + (f" ({ratios})" if ratios else "")


def size_infos(summary: Mapping[str, Any]) -> dict[str, SizeInfo]:
    """{metric: SizeInfo} from a summary.json's "sizes" (empty for runs written before it existed)."""
    out = {}
    for metric, entry in (summary.get("sizes") or {}).items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("unit"), str):
            continue
        try:
            baselines = {str(k): float(v) for k, v in (entry.get("baselines") or {}).items()}
        except (TypeError, ValueError, AttributeError):
            baselines = {}
        out[str(metric)] = SizeInfo(entry["unit"], baselines)
    return out


def problem_sizes(problem: Any) -> dict[str, SizeInfo]:
    """{metric: SizeInfo} of a problem's declared size metrics (what summary.json records)."""
    return {m: SizeInfo(unit, dict(problem.size_baselines(m))) for m, unit in problem.SIZE_METRICS.items()}


def size_columns(metric: str, values: list[float], info: SizeInfo) -> dict[str, list[str]]:
    """Table columns for a size metric: "<metric> size" ("12.3 KiB") and "<metric> vs <label>" ("10.4x")
    per baseline; empty cells where a value is missing."""
    values = [float(v) if v is not None else math.nan for v in values]
    columns = {f"{metric} size": [info.format(v) if math.isfinite(v) else "" for v in values]}
    for label in info.baselines:
        columns[f"{metric} vs {label}"] = [_ratio_cell(info.ratios(v).get(label)) for v in values]
    return columns


def _ratio_cell(ratio: float | None) -> str:
    return "" if ratio is None else format_ratio(ratio)


def _three_digits(amount: float) -> str:
    if abs(amount) < 10:
        return f"{amount:.2f}"
    return f"{amount:.1f}" if abs(amount) < 100 else f"{amount:.0f}"
