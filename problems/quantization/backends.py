"""Building the calibrated fake-quantized copy a problem searches, with the configured backend.

This module exists so that `LayerwiseQuantizationProblem` does not care which library put the
quantizers in: the native `QuantizedModel` (the default) or another backend that offers the same
surface (`weight_quantizers`, `act_quantizers`, `set_bits`, `layer_stats`, ...).
"""

from __future__ import annotations

from torch import Tensor, nn

from problems.quantization.config import QuantizationConfig
from problems.quantization.qmodel import QuantizedModel
from problems.quantization.runtime import CALIBRATION_BATCH


def build_quantized_model(cfg: QuantizationConfig, model: nn.Module, calib: Tensor) -> QuantizedModel:
    """The quantized copy of `model`, calibrated on `calib` in fixed batches (never tuned: the
    ranges must not depend on the machine)."""
    q = cfg.quantization
    qmodel = QuantizedModel(
        model,
        act_types=q.activations.types,
        act_names=q.activations.names,
        quantize_input=q.activations.input,
        fold_bn=q.fold_bn,
        weight_per_channel=q.weights.per_channel,
        weight_calibrator=q.weights.calibrator,
        act_calibrator=q.activations.calibrator,
        percentile=q.activations.percentile,
        weight_bits=q.weight_bits,
        act_bits=q.activation_bits,
        weight_format=q.weight_format,
        act_format=q.activation_format,
        format_settings=q.format_settings(),
        quantize_biases=q.fixed_point.biases,
    )
    bs = CALIBRATION_BATCH
    qmodel.calibrate(
        (calib[i : i + bs] for i in range(0, len(calib), bs)), min_samples=cfg.data.min_calib_samples
    )
    return qmodel
