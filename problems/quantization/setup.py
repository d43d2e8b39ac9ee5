"""Data, float model and its accuracy: everything that precedes quantization (or pruning)."""

from __future__ import annotations

import sys
from abc import abstractmethod
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from dse.core.errors import DseError
from dse.core.problem import Problem
from problems.quantization.config import ModelProblemConfig
from problems.quantization.runtime import Runtime, apply_threads, place_model, resolve_device, tuned_forward
from problems.quantization.zoo.data import DATASETS, Split, Splits, load_dataset
from problems.quantization.zoo.models import MODELS, build_model, is_import_path, load_checkpoint
from problems.quantization.zoo.training import accuracy, cached_baseline


def check_model_data(cfg: ModelProblemConfig) -> None:
    """Cheap checks of the model and data sections (names that must exist, files that must be
    there), shared by every problem on a zoo model: nothing is loaded, trained or written."""
    if not is_import_path(cfg.model.name) and cfg.model.name not in MODELS:
        raise DseError(f"model.name: unknown model {cfg.model.name!r}; known: {', '.join(MODELS.names())}")
    if ":" not in cfg.data.name and "." not in cfg.data.name and cfg.data.name not in DATASETS:
        raise DseError(f"data.name: unknown dataset {cfg.data.name!r}; known: {', '.join(DATASETS.names())}")
    if cfg.model.checkpoint is not None and not cfg.model.checkpoint.is_file():
        raise DseError(f"model.checkpoint: {cfg.model.checkpoint} not found")
    if cfg.data.root is not None and not cfg.data.root.exists():
        raise DseError(f"data.root: {cfg.data.root} not found")
    resolve_device(cfg.execution.device)  # a CUDA device that is not there: refused before training


def prepare_baseline(
    cfg: ModelProblemConfig, progress: bool = True
) -> tuple[nn.Module, Splits, dict[str, Any], Runtime]:
    """The float model (given checkpoint, or trained once and cached under results/.cache) and its
    splits, on the execution device: the model and the evaluated splits (val, test, calib) there, in
    the tuned memory format (the training split stays where it was loaded; training moves batches)."""
    device = resolve_device(cfg.execution.device)
    apply_threads(cfg.execution.threads)
    splits = load_dataset(cfg.data, seed=cfg.data.seed)

    def build() -> nn.Module:
        return build_model(
            cfg.model.name,
            cfg.model.options,
            in_channels=splits.input_shape[0],
            num_classes=splits.num_classes,
            input_shape=splits.input_shape,
        ).to(device)

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
    key = {"name": cfg.model.name, "options": cfg.model.options, "classes": splits.num_classes}
    tuning = tuned_forward(model, splits.val.x, cfg.execution, cfg.output.root / ".cache", key, device)
    runtime = Runtime(device, tuning)
    model = place_model(model, device, tuning.memory_format)
    splits = replace(splits, **{s: _moved(getattr(splits, s), device) for s in ("calib", "val", "test")})
    bs = tuning.batch_size
    baseline = {
        "accuracy": accuracy(model, splits.val, bs),
        "test_accuracy": accuracy(model, splits.test, bs),
    }
    if progress:
        print(
            f"float baseline {source}: val {baseline['accuracy']:.2f}%, "
            f"test {baseline['test_accuracy']:.2f}%; evaluated on {runtime.describe()}",
            file=sys.stderr,
        )
    return model, splits, baseline, runtime


def _moved(split: Split, device: torch.device) -> Split:
    return Split(split.x.to(device), split.y.to(device))


class ZooModelProblem(Problem):
    """A problem over a trained float model of the zoo (the model, data and training sections).

    Checks those sections cheaply, then trains (or loads) the baseline once; a subclass builds
    itself from it in `_from_baseline`.
    """

    @classmethod
    def check_config(cls, cfg: ModelProblemConfig) -> None:
        check_model_data(cfg)

    @classmethod
    def from_config(cls, cfg: ModelProblemConfig, progress: bool = True) -> Problem:
        """Also fills `execution.batch_size` / `memory_format` of `cfg` with the tuned values, so the
        resolved config (the run folder's, the workers') records and reuses what this machine chose."""
        cls.check_config(cfg)
        model, splits, baseline, runtime = prepare_baseline(cfg, progress=progress)
        cfg.execution.batch_size, cfg.execution.memory_format = runtime.batch_size, runtime.memory_format
        return cls._from_baseline(cfg, model, splits, baseline, runtime)

    @classmethod
    @abstractmethod
    def _from_baseline(
        cls,
        cfg: ModelProblemConfig,
        model: nn.Module,
        splits: Splits,
        baseline: dict[str, Any],
        runtime: Runtime,
    ) -> Problem: ...
