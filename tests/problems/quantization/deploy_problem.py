"""A small quantization problem with BatchNorm to fold (resnet8, width 8, digits 8x8) for the
fine-tuning and export tests; activations searched too, so that narrow grids need a Clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dse.core.config import parse_config
from dse.core.registry import PROBLEMS


def small_config(root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "experiment": {"name": "small"},
        "execution": {"threads": 2},
        "model": {"name": "resnet8", "options": {"width": 8}},
        "data": {"name": "digits", "image_size": 8},
        "training": {"epochs": 12},
        "search_space": {"weights": {"choices": [2, 3, 4, 8]}, "activations": {"choices": [3, 8]}},
        "objectives": ["accuracy", "weight_bits", "bops"],
        "output": {"root": str(root)},
        **extra,
    }


def small_problem(root: Path, **extra: Any):
    cfg = parse_config(small_config(root, **extra))
    return PROBLEMS.problem_class("layerwise_quantization").from_config(cfg, progress=False)
