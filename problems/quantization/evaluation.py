"""Runs the quantized model on fixed tensors: validation accuracy, output error, timing.

Batches are cut once; every evaluation reuses them, under inference mode, so an evaluation costs
one forward pass over the validation split and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from problems.quantization.qmodel import QuantizedModel
from problems.quantization.zoo.data import Split, Splits


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return [x[i : i + batch_size].contiguous() for i in range(0, len(x), batch_size)]


class ModelEvaluator:
    def __init__(self, qmodel: QuantizedModel, splits: Splits, batch_size: int) -> None:
        self.qmodel = qmodel
        self.batch_size = batch_size
        self.splits = splits
        self._split_batches: dict[str, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self._calib = _batches(splits.calib.x, batch_size)
        self._float_calib_out: list[torch.Tensor] | None = None

    def _split(self, name: str) -> tuple[list[torch.Tensor], torch.Tensor]:
        if name not in self._split_batches:
            split: Split = getattr(self.splits, name)
            self._split_batches[name] = (_batches(split.x, self.batch_size), split.y)
        return self._split_batches[name]

    @torch.inference_mode()
    def accuracy(self, split: str = "val", model: nn.Module | None = None) -> float:
        """Top-1 accuracy in percent of the quantized model (or `model`) on a split."""
        model = model or self.qmodel
        xs, y = self._split(split)
        preds = torch.cat([model(x).argmax(1) for x in xs])
        return 100.0 * (preds == y).double().mean().item()

    @torch.inference_mode()
    def qerror(self) -> float:
        """Mean |y_float - y_quant| over the model outputs on the calibration samples (circle-mpqsolver)."""
        if self._float_calib_out is None:
            with self.qmodel.float_mode():
                self._float_calib_out = [self.qmodel(x) for x in self._calib]
        total = sum(
            (self.qmodel(x) - f).abs().sum().item() for x, f in zip(self._calib, self._float_calib_out)
        )
        count = sum(f.numel() for f in self._float_calib_out)
        return total / count

    @torch.inference_mode()
    def time_forward(self, model: Callable[[torch.Tensor], torch.Tensor], repeats: int) -> float:
        """Best-of-`repeats` seconds for one pass over the validation split."""
        xs, _ = self._split("val")
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for x in xs:
                model(x)
            best = min(best, time.perf_counter() - t)
        return best
