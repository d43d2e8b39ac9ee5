"""Float baseline: accuracy, seeded training, and a content-addressed checkpoint cache.

Training: SGD with Nesterov momentum, linear warm-up for the first epoch then cosine decay to 0,
label smoothing 0.1, weight decay on conv/linear weights only (not on BN parameters or biases).
Shuffling uses a generator seeded from `seed`, so a run is reproducible on the same machine and
torch version (threaded CPU kernels may still differ in the last bits across machines).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from dse.core.errors import DseError
from dse.core.files import atomic_write
from problems.quantization.config import DataSection, ModelSection, TrainingSection
from problems.quantization.runtime import model_device
from problems.quantization.zoo.data import Split, Splits

CACHE_FORMAT = 1  # bump when the training recipe changes, so old cached baselines are not reused


def accuracy(model: nn.Module, split: Split, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent (0..100), in eval mode; the model's train/eval mode is restored."""
    n = len(split)
    if n == 0:
        return 0.0
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = 0
    try:
        with torch.inference_mode():
            for i in range(0, n, batch_size):
                xb = split.x[i : i + batch_size].to(device)
                yb = split.y[i : i + batch_size].to(device)
                correct += int((model(xb).argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    return 100.0 * correct / n


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each sample of (N, C, L) or (N, C, H, W) by up to `shift` steps along each spatial
    dim, repeating the edge values; other shapes are returned unchanged."""
    spatial = x.dim() - 2
    if shift <= 0 or spatial not in (1, 2):
        return x
    n = x.shape[0]
    offsets = torch.randint(0, 2 * shift + 1, (spatial, n), generator=gen)
    out = x
    for d in range(spatial):
        dim = 2 + d
        size = x.shape[dim]
        pad = [0, 0] * (spatial - 1 - d) + [shift, shift] + [0, 0] * d  # F.pad lists the last dim first
        padded = nn.functional.pad(out, pad, mode="replicate")
        index = offsets[d].view(n, 1) + torch.arange(size).view(1, size)  # (N, size)
        view = [n] + [1] * (x.dim() - 1)
        view[dim] = size
        index = index.view(view).expand(*out.shape[:dim], size, *out.shape[dim + 1 :])
        out = padded.gather(dim, index)
    return out


def train_baseline(
    model: nn.Module,
    splits: Splits,
    cfg: TrainingSection,
    seed: int,
    progress: bool = True,
    on_epoch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train `model` in place on `splits.train`; return val/test accuracy, epochs and seconds.
    `on_epoch(epoch)` (1-based) runs after each epoch: fine-tuning keeps its best epoch that way; it must
    leave the model's weights, mode and the random streams alone, so training is the same with or without."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = model_device(model)
    x, y = splits.train.x, splits.train.y
    n = len(y)
    if n == 0:
        raise DseError("data: the training split is empty; use more data or smaller val/test fractions")
    bs = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = cfg.epochs * steps_per_epoch
    warmup = min(steps_per_epoch, max(total // 10, 1))

    opt = torch.optim.SGD(
        _param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0
    )

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    show = progress and sys.stderr.isatty()
    bar = tqdm(range(cfg.epochs), desc="baseline", unit="epoch", disable=not show, leave=False)
    model.train()
    last_loss = float("nan")
    for epoch in bar:
        perm = torch.randperm(n, generator=gen)
        running, seen = 0.0, 0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if len(idx) < 2 and n >= 2:  # BatchNorm cannot train on a batch of one
                continue
            xb, yb = random_shift(x[idx], cfg.shift, gen).to(device), y[idx].to(device)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
            seen += len(idx)
        last_loss = running / max(seen, 1)
        if on_epoch is not None:
            on_epoch(epoch + 1)
        if show:
            bar.set_postfix(loss=f"{last_loss:.3f}", val=f"{accuracy(model, splits.val):.1f}%")
            model.train()
    bar.close()
    model.eval()
    return {
        "val_accuracy": accuracy(model, splits.val),
        "test_accuracy": accuracy(model, splits.test),
        "train_loss": last_loss,
        "epochs": cfg.epochs,
        "seconds": round(time.perf_counter() - start, 3),
    }


def baseline_key(
    model_cfg: ModelSection, data_cfg: DataSection, training_cfg: TrainingSection, seed: int
) -> tuple[str, dict[str, Any]]:
    """sha256 of everything that determines the trained weights, and the payload it hashes."""
    major, minor = torch.__version__.split(".")[:2]
    payload = {
        "format": CACHE_FORMAT,
        "model": {"name": model_cfg.name, "options": model_cfg.options},
        "data": data_cfg.model_dump(mode="json", exclude={"batch_size", "first_batch_size"}),
        "training": training_cfg.model_dump(mode="json"),
        "seed": seed,
        "torch": f"{major}.{minor}",
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


def baseline_path(cache_root: Path, key: str) -> Path:
    """Where the baseline of `key` (`baseline_key`) is cached; its metadata sits beside it (.json)."""
    return Path(cache_root) / "baselines" / f"{key}.pt"


def cached_baseline(
    model_cfg: ModelSection,
    data_cfg: DataSection,
    training_cfg: TrainingSection,
    splits: Splits,
    seed: int,
    cache_root: Path,
    build: Callable[[], nn.Module],
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained float model for this config: loaded from `cache_root/baselines/<key>.pt` if there,
    else trained (seeded) and stored. `info` has the accuracies, `key`, `path` and `cached`
    (True when loaded from the cache)."""
    key, payload = baseline_key(model_cfg, data_cfg, training_cfg, seed)
    pt = baseline_path(cache_root, key)
    folder, meta = pt.parent, pt.with_suffix(".json")

    torch.manual_seed(seed)  # deterministic initialisation
    model = build()
    if pt.is_file() and meta.is_file():
        try:
            sd = torch.load(pt, map_location="cpu", weights_only=True)
            model.load_state_dict(sd)
            info = json.loads(meta.read_text())
            info.update(cached=True, key=key, path=str(pt))
            model.eval()
            return model, info
        except Exception as e:  # unreadable or stale entry: retrain and overwrite it
            print(f"warning: ignoring cached baseline {pt}: {str(e).splitlines()[0]}", file=sys.stderr)
            torch.manual_seed(seed)
            model = build()

    info = train_baseline(model, splits, training_cfg, seed, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(pt, lambda p: torch.save(state, p))
    stored = {**info, "config": payload}
    atomic_write(meta, lambda p: p.write_text(json.dumps(stored, indent=2) + "\n"))
    info.update(cached=False, key=key, path=str(pt))
    return model, info
