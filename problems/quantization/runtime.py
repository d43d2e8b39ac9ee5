"""Where and how the model runs: the device, torch threads, and the forward tuned to the machine.

The evaluation batch size and memory format change the speed of a forward pass a lot (on a 2-core
CPU `channels_last` is ~30 % faster and batch 128 beats 512), and which is best depends on the
machine and the model. `tuned_forward` times the float forward over the validation split for each
candidate setting once per (model, input shape, device, threads, machine) and caches the fastest
under `results/.cache/tuning/`; `execution.batch_size` / `execution.memory_format` fix either one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dse.core.errors import ConfigError
from dse.core.execution import ExecutionSection
from dse.core.files import write_json

BATCH_SIZES = (64, 128, 256, 512)
FORMATS = ("contiguous", "channels_last")
#: calibration's batch size, never tuned: histogram ranges depend on how the samples are batched
CALIBRATION_BATCH = 512
#: the settings before tuning existed: what `dse bench` reports as the default forward
DEFAULT = ("contiguous", 512)
TUNING_FORMAT = "dse-tuning/1"


@dataclass(frozen=True)
class Tuning:
    batch_size: int
    memory_format: str  # "contiguous" | "channels_last"
    source: str = "fixed"  # "tuned now" | "cached" | "fixed" (both given in the config)


@dataclass(frozen=True)
class Runtime:
    """The device and the tuned forward settings every evaluation of a problem uses."""

    device: torch.device
    tuning: Tuning

    @property
    def batch_size(self) -> int:
        return self.tuning.batch_size

    @property
    def memory_format(self) -> str:
        return self.tuning.memory_format

    def describe(self) -> str:
        t = self.tuning
        return f"{self.device}, batch {t.batch_size}, {t.memory_format} ({t.source})"


def resolve_device(spec: str) -> torch.device:
    """`execution.device` as a torch device: `auto` is CUDA where available, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"execution.device: {spec} requested, but this torch has no CUDA device")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ConfigError(f"execution.device: {spec} requested, but only {count} CUDA device(s) exist")
    return torch.device(spec)


def apply_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def to_format(x: torch.Tensor, memory_format: str) -> torch.Tensor:
    """`x` in the memory format (channels_last applies to 4-D tensors only; others stay as they are)."""
    if memory_format == "channels_last" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def place_model(model: nn.Module, device: torch.device, memory_format: str) -> nn.Module:
    """`model` on the device, its 4-D weights in the memory format (either way: a model moved to
    channels_last once keeps it otherwise, and its convolutions follow their weights' layout)."""
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    return model.to(device).to(memory_format=fmt)


def tuned_forward(
    model: nn.Module,
    x: torch.Tensor,
    execution: ExecutionSection,
    cache_root: Path,
    model_key: dict[str, Any],
    device: torch.device,
) -> Tuning:
    """The batch size and memory format for evaluations: the config's where it fixes them, else the
    fastest float forward over `x` (the validation inputs), cached per machine and model."""
    fixed_bs, fixed_fmt = execution.batch_size, execution.memory_format
    if fixed_bs is not None and fixed_fmt is not None:
        return Tuning(fixed_bs, fixed_fmt)
    formats = [fixed_fmt] if fixed_fmt else [f for f in FORMATS if f == "contiguous" or x.dim() == 4]
    sizes = [fixed_bs] if fixed_bs else sorted({min(b, len(x)) for b in BATCH_SIZES})
    key = _key(model_key, tuple(x.shape[1:]), device, torch.get_num_threads(), formats, sizes)
    path = Path(cache_root) / "tuning" / f"{key[:32]}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return Tuning(int(cached["batch_size"]), str(cached["memory_format"]), "cached")
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: tune again and overwrite it
    times = {(f, b): forward_seconds(model, x, f, b, device) for f in formats for b in sizes}
    fmt, bs = min(times, key=lambda k: (times[k], k))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        path,
        {
            "format": TUNING_FORMAT,
            "key": key,
            "batch_size": bs,
            "memory_format": fmt,
            "seconds": {f"{f}/{b}": round(t, 6) for (f, b), t in times.items()},
            "machine": _machine(device),
        },
    )
    return Tuning(bs, fmt, "tuned now")


@torch.inference_mode()
def forward_seconds(
    model: nn.Module,
    x: torch.Tensor,
    memory_format: str,
    batch_size: int,
    device: torch.device,
    repeats: int = 3,
) -> float:
    """Best-of-`repeats` seconds of one float pass over `x` in this setting (after a warm-up pass)."""
    trial = place_model(copy.deepcopy(model), device, memory_format).eval()
    batches = [
        to_format(x[i : i + batch_size].to(device), memory_format) for i in range(0, len(x), batch_size)
    ]
    time_pass(trial, batches)  # warms caches and the allocator
    return min(time_pass(trial, batches) for _ in range(repeats))


@torch.inference_mode()
def time_pass(model: Callable[[torch.Tensor], Any], inputs: Iterable[torch.Tensor]) -> float:
    """Seconds of one pass of `model` over `inputs`, queued device work included: the one timing loop
    of the tuning, `ModelEvaluator.time_forward` and `dse bench`."""
    inputs = list(inputs)
    device = inputs[0].device if inputs else torch.device("cpu")
    sync(device)
    start = time.perf_counter()
    for x in inputs:
        model(x)
    sync(device)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously): timings must include it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _machine(device: torch.device) -> dict[str, Any]:
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {"node": platform.node(), "device": str(device), "name": name, "cpus": os.cpu_count()}


def _key(
    model_key: dict[str, Any],
    shape: tuple[int, ...],
    device: torch.device,
    threads: int,
    formats: Sequence[str],
    sizes: Sequence[int],
) -> str:
    payload = {
        "model": model_key,
        "input_shape": list(shape),
        "machine": _machine(device),
        "threads": threads,
        "torch": torch.__version__,
        "candidates": {"formats": list(formats), "batch_sizes": list(sizes)},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
