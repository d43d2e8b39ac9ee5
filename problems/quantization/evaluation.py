"""Runs the quantized model on fixed tensors: validation accuracy, output error, timing.

Batches are cut once; every evaluation reuses them, under inference mode, so an evaluation costs
one forward pass over the validation split and nothing else. A candidate's batches grow from
`first_batch_size` to `batch_size` (`batch_cuts`), so that exact early rejection (`top1` given a
limit) can stop after a small first batch; a full evaluation runs the very same batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dse.core.problem import Rejected
from problems.quantization.qmodel import QuantizedModel
from problems.quantization.runtime import time_pass, to_format
from problems.quantization.zoo.data import Split, Splits

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _batches(x: torch.Tensor, batch_size: int, memory_format: str = "contiguous") -> list[torch.Tensor]:
    return [to_format(x[i : i + batch_size], memory_format) for i in range(0, len(x), batch_size)]


def batch_cuts(n: int, first: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch over n samples: `first` samples, then twice as many each time up to
    `batch_size` (first >= batch_size: batches of batch_size throughout)."""
    cuts, start, size = [], 0, min(first, batch_size)
    while start < n:
        cuts.append((start, min(start + size, n)))
        start, size = start + size, min(2 * size, batch_size)
    return cuts


def split_batches(split: Split, first: int, batch_size: int, memory_format: str = "contiguous") -> Batches:
    """The split's batches (`batch_cuts`), inputs in the memory format the model runs fastest in."""
    return [
        (to_format(split.x[a:b], memory_format), split.y[a:b])
        for a, b in batch_cuts(len(split.y), first, batch_size)
    ]


def percent(correct: int, n: int) -> float:
    """Top-1 accuracy in percent, the float baseline's formula (zoo.training.accuracy)."""
    return 100.0 * correct / n if n else 0.0


def allowed_wrong(n: int, worse_than: float) -> int:
    """The most wrong predictions out of n whose accuracy (`percent`) is not below `worse_than`; -1
    where even none wrong is. Found on `percent` itself, so the decision is that of the full value."""
    if math.isnan(worse_than):
        return n
    estimate = worse_than * n / 100.0  # a start near the answer; the loops make it exact
    correct = 0 if estimate <= 0 else n + 1 if estimate > n else math.ceil(estimate)
    while correct > 0 and percent(correct - 1, n) >= worse_than:
        correct -= 1
    while correct <= n and percent(correct, n) < worse_than:
        correct += 1
    return n - correct


def top1(
    model: Callable[[torch.Tensor], torch.Tensor],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    worse_than: float | None = None,
) -> float:
    """Top-1 accuracy (%) over the batches. With `worse_than`: raise `Rejected` as soon as the wrong
    predictions so far prove the accuracy below it (bound: every sample left predicted right); a
    result that is returned is the full one."""
    n = sum(len(y) for _, y in batches)
    allowed = n if worse_than is None else allowed_wrong(n, worse_than)
    wrong = seen = 0
    for x, y in batches:
        if wrong > allowed:
            raise Rejected(
                "accuracy", percent(n - wrong, n), detail=f"{wrong} wrong in {seen} of {n} samples"
            )
        wrong += int((model(x).argmax(1) != y).sum())
        seen += len(y)
    return percent(n - wrong, n)


class ModelEvaluator:
    def __init__(
        self,
        qmodel: QuantizedModel,
        splits: Splits,
        batch_size: int,
        first_batch_size: int = 0,
        memory_format: str = "contiguous",
    ) -> None:
        self.qmodel = qmodel
        self.batch_size = batch_size
        self.memory_format = memory_format
        self.first_batch_size = first_batch_size or batch_size
        self.splits = splits
        self._split_batches: dict[str, Batches] = {}
        self._calib = _batches(splits.calib.x, batch_size, memory_format)
        self._float_calib_out: list[torch.Tensor] | None = None

    def _split(self, name: str) -> Batches:
        if name not in self._split_batches:
            split: Split = getattr(self.splits, name)
            self._split_batches[name] = split_batches(
                split, self.first_batch_size, self.batch_size, self.memory_format
            )
        return self._split_batches[name]

    @torch.inference_mode()
    def accuracy(
        self, split: str = "val", model: nn.Module | None = None, worse_than: float | None = None
    ) -> float:
        """Top-1 accuracy in percent of the quantized model (or `model`) on a split; with `worse_than`,
        `Rejected` as soon as it is proven below (`top1`)."""
        return top1(model or self.qmodel, self._split(split), worse_than)

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

    def time_forward(self, model: Callable[[torch.Tensor], torch.Tensor], repeats: int) -> float:
        """Best-of-`repeats` seconds for one pass over the validation split."""
        inputs = [x for x, _ in self._split("val")]
        return min(time_pass(model, inputs) for _ in range(repeats))
