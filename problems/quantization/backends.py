"""Building the calibrated fake-quantized copy a problem searches, with the configured backend.

This module exists so that `LayerwiseQuantizationProblem` does not care which library put the
quantizers in: the native `QuantizedModel` (the default) or another backend that offers the same
surface (`weight_quantizers`, `act_quantizers`, `set_bits`, `layer_stats`, ...): NVIDIA ModelOpt's
(`quantization.backend: modelopt`, `modelopt_backend.py`). ModelOpt is an optional extra: it is
imported only when that backend builds, and `check_backend` refuses a missing extra, or a setting
the backend cannot honour, before anything is trained.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from torch import Tensor, nn

from dse.core.errors import ConfigError, DseError
from problems.quantization.config import QuantizationConfig
from problems.quantization.modelopt_backend import MISSING, holds_quantizers, modelopt_quantized
from problems.quantization.qmodel import QuantizedModel
from problems.quantization.runtime import CALIBRATION_BATCH


def build_quantized_model(cfg: QuantizationConfig, model: nn.Module, calib: Tensor) -> Any:
    """The quantized copy of `model`, calibrated on `calib` in fixed batches (never tuned: the
    ranges must not depend on the machine): a `QuantizedModel`, or with `backend: modelopt` a
    `ForeignQuantizedModel` (also the user's model as is, where it already holds TensorQuantizers)."""
    q = cfg.quantization
    batches = [calib[i : i + CALIBRATION_BATCH] for i in range(0, len(calib), CALIBRATION_BATCH)]
    if q.backend == "modelopt":
        return modelopt_quantized(
            model,
            batches,
            fold_bn=q.fold_bn,
            per_channel=q.weights.per_channel,
            weight_bits=q.weight_bits,
            act_bits=q.activation_bits,
            activations=quantizes_activations(cfg),
            min_samples=cfg.data.min_calib_samples,
        )
    if holds_quantizers(model):  # native quantizers on top would quantize it twice
        raise ConfigError(
            "quantization.backend: the model already holds ModelOpt/pytorch-quantization TensorQuantizers; "
            "set it to modelopt to search them"
        )
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
        weight_format=[q.weight_format, *(f for f in cfg.search_space.formats or () if f != q.weight_format)],
        act_format=q.activation_format,
        format_settings=q.format_settings(),
        quantize_biases=q.fixed_point.biases,
        weight_params=q.weights.params,
    )
    qmodel.calibrate(batches, min_samples=cfg.data.min_calib_samples)
    return qmodel


def quantizes_activations(cfg: QuantizationConfig) -> bool:
    """Whether the activation section picks anything (the modelopt backend then quantizes every
    layer's input; `types: []`, `names: null`, `input: false` is weights only in both backends)."""
    a = cfg.quantization.activations
    return bool(a.types or a.names or a.input)


def check_backend(cfg: QuantizationConfig) -> None:
    """What `quantization.backend` refuses before anything is built: modelopt missing (the extra
    `dse[modelopt]`, which also brings requests and huggingface_hub, which ModelOpt imports without
    declaring them), or a setting only the native backend honours, named by its field."""
    q = cfg.quantization
    if q.backend != "modelopt":
        return
    missing = [m for m in ("modelopt", "requests", "huggingface_hub") if not _installed(m)]
    if missing:
        raise ConfigError(MISSING if "modelopt" in missing else f"{MISSING} ({missing[0]} missing)")
    formats = {"format": q.format, "weights.format": q.weights.format}
    formats["activations.format"] = q.activations.format
    for field, fmt in formats.items():
        if fmt not in (None, "affine"):
            raise ConfigError(f"quantization.{field}: the modelopt backend is affine only, not {fmt}")
    if cfg.search_space.formats:
        raise ConfigError("search_space.formats: the modelopt backend has one number format (affine)")
    calibrators = {"weights": q.weights.calibrator}
    if quantizes_activations(cfg):
        calibrators["activations"] = q.activations.calibrator
    for kind, name in calibrators.items():
        if name != "max":
            raise ConfigError(
                f"quantization.{kind}.calibrator: the modelopt backend calibrates with max only, got {name}"
            )


def require_native(qmodel: nn.Module, feature: str) -> None:
    """One line where `feature` (mpq.json, finetune, ONNX export) meets quantizers it does not know."""
    if not isinstance(qmodel, QuantizedModel):
        raise DseError(f"quantization.backend: {feature} needs the native backend, not ModelOpt's quantizers")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        return False
