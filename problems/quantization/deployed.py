"""The deployable fake-quantized model: a float model (its own weights, e.g. fine-tuned ones) run with
the calibrated quantizers of a problem, BatchNorm folded, weights quantized once.

This module exists because fine-tuning and export need the quantized network for weights other than
the ones `QuantizedModel` was built from, without rebuilding or recalibrating it: ranges learned in
calibration stay what they were (QAT trained against them), so a fine-tuned checkpoint plus the run's
config reproduce the quantized model exactly. Built from the run's own float model it computes what
`QuantizedModel` computes (the tests check the accuracies match), so one path serves `finetune`'s
before/after numbers, `export`'s reference and its ONNX graph (`onnx_graph`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from problems.quantization.folding import fold_batchnorms
from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.placement import output_hook, site_parameter, weight_layers
from problems.quantization.qmodel import INPUT, QuantizedModel


class DeployedModel(nn.Module):
    """`model` (deep-copied, eval) folded as `qmodel` folds; each weight replaced by its fake-quantized
    value at its quantizer's current bits, the range calibrated on this weight by a copy of that quantizer
    (the run's calibrator: for the run's own weights, the run's very ranges); activations quantized by
    `qmodel`'s own quantizers (fixed ranges)."""

    def __init__(self, model: nn.Module, qmodel: QuantizedModel) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        folded = fold_batchnorms(self.model) if qmodel.folded else []
        if sorted(folded) != sorted(qmodel.folded):
            raise ValueError(f"the model folds {folded}, the quantized model {qmodel.folded}")
        modules = dict(self.model.named_modules())
        self.layers = weight_layers(modules)  # Conv/Linear: the ones whose biases may be quantized
        self.weight_sites = dict(qmodel.weight_sites)
        self.params = {n: site_parameter(modules, s) for n, s in self.weight_sites.items()}
        self.float_weights = {n: p.detach().clone() for n, p in self.params.items()}
        self.float_biases = {n: m.bias.detach().clone() for n, m in self.layers.items() if m.bias is not None}
        self.weight_quantizers = calibrated_copies(qmodel.weight_quantizers, self.float_weights)
        self.bias_quantizers = calibrated_copies(qmodel.bias_quantizers, self.float_biases)
        self.act_quantizers: dict[str, TensorQuantizer] = dict(qmodel.act_quantizers)
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.weight_quantizers[n].quantize_tensor(self.float_weights[n]))
            for n, q in self.bias_quantizers.items():
                self.layers[n].bias.copy_(q.quantize_tensor(self.float_biases[n]))
        for n, q in self.act_quantizers.items():
            if n != INPUT:
                modules[n].register_forward_hook(output_hook(q))
        self.input_quantizer = self.act_quantizers.get(INPUT)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        return self.model(x, *args, **kwargs)


def calibrated_copies(
    quantizers: Mapping[str, TensorQuantizer], tensors: Mapping[str, Tensor]
) -> dict[str, TensorQuantizer]:
    """Per name, a copy of the quantizer (same bits, format, calibrator) calibrated on the tensor: a
    weight's range is a function of the weight alone, so fine-tuned weights need no stored ranges."""
    out = {}
    for name, q in quantizers.items():
        if name not in tensors:
            continue
        mine = copy.deepcopy(q)
        mine.calibrate_on(tensors[name])
        out[name] = mine
    return out
