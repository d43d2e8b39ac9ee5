"""The number formats a config can name, registered by import path (resolved on first use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.core.registry import Registry
from problems.quantization.formats.base import NumberFormat

FORMATS: Registry[type[NumberFormat]] = Registry("number format")
FORMATS.register("affine", "problems.quantization.formats.affine:AffineFormat")
FORMATS.register("fixed_point", "problems.quantization.formats.fixed_point:FixedPointFormat")
FORMATS.register("log2", "problems.quantization.formats.log2:Log2Format")
FORMATS.register("lq", "problems.quantization.formats.lq:LQFormat")


def make_format(
    name: str, role: str, seed: int = 0, settings: Mapping[str, Any] | None = None
) -> NumberFormat:
    """A fresh format instance for one quantizer of `role` ("weight", "bias" or "activation");
    `settings` holds the config's options of that format (e.g. `quantization.fixed_point`)."""
    return FORMATS.get(name).create(role, seed, dict(settings or {}))
