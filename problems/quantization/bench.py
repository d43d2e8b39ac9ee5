"""Evaluation cost against the float forward pass, measured side by side in one process: the float
pass both in the default setting (contiguous, batches up to 512, what evaluations ran in before
tuning) and in the tuned one (`runtime.tuned_forward`) that evaluations now run in."""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from dse.core.problem import Rejected
from problems.quantization.evaluation import ModelEvaluator, split_batches
from problems.quantization.runtime import DEFAULT, model_device, place_model, time_pass

Evaluate = Callable[..., dict[str, float]]


def benchmark(
    evaluate: Evaluate,
    engine: ModelEvaluator,
    float_model: nn.Module,
    metrics: list[str],
    candidates: list[dict[str, int]],
    repeats: int = 3,
    reject_worse_than: Mapping[str, float] | None = None,
) -> dict[str, float | str]:
    """Median seconds of: a float pass over the validation split, and a full candidate evaluation
    (set bits in place + the same pass through the quantized model + costs). Interleaved so drift
    in machine load hits both alike. With `reject_worse_than` (the constraint's limit), each
    candidate is also evaluated with early rejection: for those it rejects, the mean seconds of the
    rejected evaluation beside the mean of their full evaluations, and the ratio."""
    float_model = float_model.eval()
    default_fmt, default_bs = DEFAULT
    default_model = place_model(copy.deepcopy(float_model), model_device(float_model), default_fmt).eval()
    default_batches = split_batches(engine.splits.val, engine.first_batch_size, default_bs, default_fmt)
    evaluate(candidates[0], metrics)  # warm-up: weight caches, allocator
    engine.accuracy(model=float_model)
    time_pass(default_model, [x for x, _ in default_batches])
    float_times, eval_times, fwd_times, default_times = [], [], [], []
    full: dict[int, list[float]] = {}  # candidate -> seconds of its full evaluations
    rejected: dict[int, list[float]] = {}  # candidate -> seconds of its rejected evaluations
    for _ in range(repeats):
        for i, values in enumerate(candidates):
            default_times.append(time_pass(default_model, [x for x, _ in default_batches]))
            float_times.append(engine.time_forward(float_model, 1))
            t = time.perf_counter()
            evaluate(values, metrics)
            eval_times.append(time.perf_counter() - t)
            full.setdefault(i, []).append(eval_times[-1])
            fwd_times.append(engine.time_forward(engine.qmodel, 1))
            if reject_worse_than:
                t = time.perf_counter()
                try:
                    evaluate(values, metrics, reject_worse_than=reject_worse_than)
                except Rejected:
                    rejected.setdefault(i, []).append(time.perf_counter() - t)
    f, e, q, d = (statistics.median(x) for x in (float_times, eval_times, fwd_times, default_times))
    return {
        "threads": float(torch.get_num_threads()),
        "device": str(model_device(float_model)),
        "val_samples": float(len(engine.splits.val.x)),
        "batch_size": float(engine.batch_size),
        "memory_format": engine.memory_format,
        "candidates": float(len(candidates)),
        "float_forward_default_s": d,
        "float_forward_s": f,  # tuned: the setting evaluations run in
        "quantized_forward_s": q,
        "evaluation_s": e,
        "ratio_tuned_to_default_float": f / d,
        "ratio_evaluation_to_default_float": e / d,
        "ratio_evaluation_to_float": e / f,
        "ratio_quantized_forward_to_float": q / f,
        **(_rejection(full, rejected) if reject_worse_than else {}),
    }


def _rejection(full: dict[int, list[float]], rejected: dict[int, list[float]]) -> dict[str, Any]:
    """Mean seconds of a rejected evaluation and of the same candidates' full ones (NaN: none rejected)."""
    if not rejected:
        return {
            "rejected_candidates": 0.0,
            "rejected_evaluation_s": math.nan,
            "ratio_rejected_to_full": math.nan,
        }
    r = statistics.mean(t for i in rejected for t in rejected[i])
    e = statistics.mean(t for i in rejected for t in full[i])
    return {
        "rejected_candidates": float(len(rejected)),
        "rejected_evaluation_s": r,
        "full_evaluation_of_rejected_s": e,
        "ratio_rejected_to_full": r / e,
    }
