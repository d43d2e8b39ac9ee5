"""`dse formats CONFIG`: every number format x bit width on one model, side by side.

The quick answer to "which format for this model?": the problem is built once with every format
calibrated on every weight (`search_space.formats` set to all of them), then for each format and
bit width every weight takes that format and width (activations at `activation_bits`, in their own
format) and the table gets the weight MSE summed over layers and the validation accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from problems.quantization.config import QuantizationConfig


def survey_config(cfg: QuantizationConfig, formats: Sequence[str]) -> QuantizationConfig:
    """`cfg` with every weight searched in `formats` (the weights' own format first)."""
    own = cfg.quantization.weight_format
    listed = [own, *(f for f in formats if f != own)]
    raw = cfg.model_dump(mode="json")
    raw["search_space"].update({"formats": listed, "activations": None, "ties": {}})
    raw["search_space"]["weights"] = {"choices": [8]}  # the survey sets bits itself
    raw["quantization"]["fixed_point"]["biases"] = False
    return type(cfg).model_validate(raw)


def survey(problem: Any, formats: Sequence[str], bits: Sequence[int]) -> list[dict[str, Any]]:
    """Rows {format, bits, weight_mse, accuracy} (accuracy None where the format cannot take the
    bits); the problem must have been built from `survey_config`."""
    qm = problem.qmodel
    names = list(qm.weight_quantizers)
    acts = {n: problem.cfg.quantization.activation_bits for n in qm.act_quantizers}
    rows = []
    for fmt in formats:
        qm.set_formats(dict.fromkeys(names, fmt))
        low = max(q.format.min_bits(q.mode) for q in qm.weight_quantizers.values())
        for b in bits:
            if b < low:
                rows.append({"format": fmt, "bits": b, "weight_mse": None, "accuracy": None})
                continue
            qm.set_bits(weights=dict.fromkeys(names, b), activations=acts)
            with torch.inference_mode():
                mse = sum(
                    float(torch.mean((qm.quantized_weight(n).double() - qm.float_weight(n).double()) ** 2))
                    for n in names
                )
            rows.append({"format": fmt, "bits": b, "weight_mse": mse, "accuracy": problem.engine.accuracy()})
    return rows
