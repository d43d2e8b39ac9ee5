"""`dse finetune`: quantization-aware training of one configuration, measured before and after.

Seed 000's "retrain the chosen word lengths" step: the configuration's bits are set, a `QATModel`
trains (the built-in loop: `zoo.training.train_baseline`'s recipe on the fake-quantized forward, or
the user's `finetune.tuner`), and the trained float weights are measured through `DeployedModel`,
BatchNorm folded, exactly as export will run them. `model.pt` holds those float weights (BatchNorm
unfolded, the zoo model's own state dict: loadable with `weights_only=True`); the calibrated ranges
are the run's, so the run's config plus `model.pt` reproduce the fine-tuned quantized model.

Checkpoint selection: after every epoch the weights are measured on validation exactly as "after" is
(deployed, BatchNorm folded), and the best epoch is kept, the starting post-training-quantization
weights counting as epoch 0 (ties go to the later epoch: the end of the schedule unless validation says
otherwise). Fine-tuning therefore never ends below PTQ on validation, and one unlucky last epoch (the
validation split has ~630 samples: one sample is 0.16 points) does not decide the result. Validation is
the split the search ranked configurations on; test stays held out. Training is seeded (torch, numpy,
random; `finetune.seed`, default `data.seed`) and runs in contiguous memory format with its own batch
size, so it does not depend on the evaluation settings tuned per machine (`execution.batch_size` /
`memory_format`): the same config, seed and thread count give the same weights.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dse.core.errors import DseError
from dse.core.files import atomic_write
from dse.core.registry import import_object
from problems.quantization.config import TrainingSection
from problems.quantization.deployed import DeployedModel
from problems.quantization.qat import QATModel, check_trainable
from problems.quantization.zoo.training import train_baseline

MODEL_FILE = "model.pt"


def finetune(
    problem: Any,
    values: Mapping[str, int],
    out_dir: Path,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Train `values` (QAT), write `out_dir/model.pt`, return finetune.json's record. `problem`: a
    `LayerwiseQuantizationProblem` (not imported: it imports this module through its hooks)."""
    check_trainable(problem.qmodel)  # before anything is measured or trained
    cfg = problem.cfg
    section = cfg.finetune.model_copy(
        update={k: options[k] for k in ("epochs", "lr", "seed") if options.get(k) is not None}
    )
    tuner = _tuner(section.tuner) if section.tuner else None
    bits = problem.unit_bits(values)
    before = measure(problem, values, None)  # applies `values`: QATModel copies the quantizers so
    steps = -(-len(problem.engine.splits.train) // section.batch_size)  # one epoch
    seed = section.seed if section.seed is not None else cfg.data.seed
    seed_everything(seed)
    qat = QATModel(problem.float_model, problem.qmodel, recalibrate_every=steps)
    keeper = BestEpoch(problem, qat, before["val_accuracy"])
    start = time.perf_counter()
    recipe = {
        "epochs": section.epochs,
        "lr": section.lr,
        "batch_size": section.batch_size,
        "weight_decay": section.weight_decay,
        "momentum": section.momentum,
        "shift": cfg.training.shift,
        "seed": seed,
    }
    if tuner is not None:
        tuner(qat, problem.engine.splits, dict(recipe))
        keeper(section.epochs)  # the tuner's result is one more candidate beside the PTQ weights
    else:
        training = TrainingSection(**{k: v for k, v in recipe.items() if k != "seed"})
        train_baseline(
            qat,
            problem.engine.splits,
            training,
            seed,
            progress=bool(options.get("progress")),
            on_epoch=keeper,
        )
    seconds = time.perf_counter() - start
    state = keeper.state
    out_dir = Path(out_dir)
    atomic_write(out_dir / MODEL_FILE, lambda p: torch.save(state, p))
    after = measure(problem, values, trained_model(problem, state))
    weight_bits = problem.costs(bits, values)["weight_bits"]
    return {
        "configuration": dict(values),
        "float": {
            "val_accuracy": problem.baseline["accuracy"],
            "test_accuracy": problem.baseline["test_accuracy"],
        },
        "before": before,
        "after": after,
        "weight_bits": weight_bits,
        "weight_bytes": weight_bits / 8,
        "training": {
            "tuner": section.tuner,
            **recipe,
            "threads": torch.get_num_threads(),
            "seconds": round(seconds, 3),
            "kept_epoch": keeper.epoch,
            "val_accuracy_by_epoch": keeper.history,  # [0]: the PTQ weights
        },
        "model": MODEL_FILE,
    }


def seed_everything(seed: int) -> None:
    """torch, numpy and random: the built-in loop seeds torch itself, a user's tuner may use any."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class BestEpoch:
    """Called after each epoch: measures the weights on validation as `measure` does (deployed,
    BatchNorm folded, the run's activation ranges) and keeps the best so far, the starting weights as
    epoch 0 with the PTQ accuracy. Reads the model only (no mode switch, no random numbers), so the
    training run is the one it would be without selection."""

    def __init__(self, problem: Any, qat: QATModel, ptq_val: float) -> None:
        self.problem, self.qat = problem, qat
        self.state, self.epoch, self.best = qat.float_state(), 0, ptq_val
        self.history = [ptq_val]

    def __call__(self, epoch: int) -> None:
        state = self.qat.float_state()
        deployed = DeployedModel(trained_model(self.problem, state), self.problem.qmodel)
        acc = self.problem.engine.accuracy("val", model=deployed)
        self.history.append(acc)
        if acc >= self.best:  # ties: the later epoch (further along the schedule)
            self.state, self.epoch, self.best = state, epoch, acc


def trained_model(problem: Any, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """The run's float model with `state` (a fine-tuned model.pt) loaded, on the model's device."""
    model = copy.deepcopy(problem.float_model)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise DseError(f"fine-tuned weights do not fit the run's model ({str(e).splitlines()[0]})") from None
    return model.eval()


def measure(problem: Any, values: Mapping[str, int], model: nn.Module | None) -> dict[str, float]:
    """Validation and test accuracy of the configuration: the run's quantized model (`model` None) or
    `model`'s weights deployed with the run's quantizers."""
    problem.apply(problem.unit_bits(values))
    deployed = None if model is None else DeployedModel(model, problem.qmodel)
    return {split_name: problem.engine.accuracy(split, model=deployed) for split, split_name in _SPLITS}


_SPLITS = (("val", "val_accuracy"), ("test", "test_accuracy"))


def _tuner(path: str) -> Callable[..., Any]:
    try:
        fn = import_object(path)
    except Exception as e:  # an import error of the user's module: name it on one line
        raise DseError(f"finetune.tuner: cannot import {path!r} ({str(e).splitlines()[0]})") from None
    if not callable(fn):
        raise DseError(f"finetune.tuner: {path!r} is not callable")
    return fn
