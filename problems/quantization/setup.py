"""Data, float model and its accuracy: everything that precedes quantization."""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from problems.quantization.config import QuantizationConfig
from problems.quantization.zoo.data import Splits, load_dataset
from problems.quantization.zoo.models import build_model, load_checkpoint
from problems.quantization.zoo.training import accuracy, cached_baseline


def prepare_baseline(
    cfg: QuantizationConfig, progress: bool = True
) -> tuple[nn.Module, Splits, dict[str, Any]]:
    """The float model (given checkpoint, or trained once and cached under results/.cache) and its splits."""
    splits = load_dataset(cfg.data, seed=cfg.data.seed)

    def build() -> nn.Module:
        return build_model(
            cfg.model.name,
            cfg.model.options,
            in_channels=splits.input_shape[0],
            num_classes=splits.num_classes,
            input_shape=splits.input_shape,
        )

    if cfg.model.checkpoint is not None:
        model = load_checkpoint(build(), cfg.model.checkpoint)
        source = str(cfg.model.checkpoint)
    else:
        model, info = cached_baseline(
            cfg.model,
            cfg.data,
            cfg.training,
            splits,
            cfg.data.seed,
            cfg.output.root / ".cache",
            build,
            progress=progress,
        )
        source = info["path"] + (" (cached)" if info.get("cached") else " (trained now)")
    model.eval()
    bs = cfg.data.batch_size
    baseline = {
        "accuracy": accuracy(model, splits.val, bs),
        "test_accuracy": accuracy(model, splits.test, bs),
    }
    if progress:
        print(
            f"float baseline {source}: val {baseline['accuracy']:.2f}%, "
            f"test {baseline['test_accuracy']:.2f}%",
            file=sys.stderr,
        )
    return model, splits, baseline
