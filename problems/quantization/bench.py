"""Evaluation cost against the float forward pass, measured side by side in one process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from problems.quantization.evaluation import ModelEvaluator

Evaluate = Callable[[dict[str, int], list[str]], dict[str, float]]


def benchmark(
    evaluate: Evaluate,
    engine: ModelEvaluator,
    float_model: nn.Module,
    metrics: list[str],
    candidates: list[dict[str, int]],
    repeats: int = 3,
) -> dict[str, float]:
    """Median seconds of: a float pass over the validation split, and a full candidate evaluation
    (set bits in place + the same pass through the quantized model + costs). Interleaved so drift
    in machine load hits both alike."""
    float_model = float_model.eval()
    evaluate(candidates[0], metrics)  # warm-up: weight caches, allocator
    engine.accuracy(model=float_model)
    float_times, eval_times, fwd_times = [], [], []
    for _ in range(repeats):
        for values in candidates:
            float_times.append(engine.time_forward(float_model, 1))
            t = time.perf_counter()
            evaluate(values, metrics)
            eval_times.append(time.perf_counter() - t)
            fwd_times.append(engine.time_forward(engine.qmodel, 1))
    f, e, q = (statistics.median(x) for x in (float_times, eval_times, fwd_times))
    return {
        "threads": float(torch.get_num_threads()),
        "val_samples": float(len(engine.splits.val.x)),
        "batch_size": float(engine.batch_size),
        "candidates": float(len(candidates)),
        "float_forward_s": f,
        "quantized_forward_s": q,
        "evaluation_s": e,
        "ratio_evaluation_to_float": e / f,
        "ratio_quantized_forward_to_float": q / f,
    }
