"""Datasets, split deterministically from the experiment seed into train / calib / val / test.

All samples of a dataset are pooled and re-split (also for mnist1d and cifar10, whose files come
with their own train/test split), stratified by class where the class counts allow it:

- test: `test_fraction` of all samples, val: `val_fraction` of all samples;
- calib: `calib_samples` from the rest (at most half of it), disjoint from train;
- train: the remainder.

Registered datasets:

- `digits`: scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn), upsampled
  bilinearly to `image_size`; shape (N, 1, S, S). Normalised with the mean and std of the *train*
  split (one scalar each).
- `mnist1d`: generated locally with `mnist1d.data.make_dataset` (never downloaded); shape
  (N, 1, 40). `options` override its generation arguments (`num_samples`, default 5000, ...).
  Already standardised by the generator.
- `cifar10`: the `cifar-10-batches-py` folder under `root` (or `root` itself); shape (N, 3, 32, 32),
  normalised with the usual per-channel CIFAR-10 mean/std. `options.max_samples` keeps the first
  that many pooled samples (data_batch_1..5 then test_batch), for speed.

A user loader is named `package.module:function`; it gets the DataSection and returns `(x, y)` or
`(x, y, num_classes)` (x float (N, ...), y integer labels 0..C-1); the split is then done here.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dse.core.errors import DseError
from dse.core.registry import Registry, import_object
from problems.quantization.config import DataSection


@dataclass
class Split:
    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    train: Split
    calib: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    name: str = ""


@dataclass
class RawData:
    """What a loader returns: the pooled samples, before splitting."""

    x: Tensor
    y: Tensor
    num_classes: int
    normalize: str = "none"  # "none" (already normalised) or "train" (scalar mean/std of the train split)


Loader = Callable[[DataSection], RawData]
DATASETS: Registry[Loader] = Registry("dataset")


def _options(cfg: DataSection, known: dict[str, Any]) -> dict[str, Any]:
    """cfg.options merged over `known` defaults; unknown keys are errors."""
    bad = [k for k in cfg.options if k not in known]
    if bad:
        raise DseError(
            f"data.options: unknown option {bad[0]!r} for dataset {cfg.name!r}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
    return {**known, **cfg.options}


@DATASETS.register("digits")
def load_digits(cfg: DataSection) -> RawData:
    from sklearn.datasets import load_digits as sk_load_digits

    _options(cfg, {})
    d = sk_load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8), values 0..16
    if cfg.image_size != 8:
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False)
    return RawData(x, torch.tensor(d.target, dtype=torch.long), 10, normalize="train")


@DATASETS.register("mnist1d")
def load_mnist1d(cfg: DataSection) -> RawData:
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    defaults = get_dataset_args(as_dict=True)
    defaults.pop("url", None)  # never downloaded
    opts = _options(cfg, defaults)
    if int(opts["num_samples"]) < 10:
        raise DseError(f"data.options: num_samples={opts['num_samples']} is below 10 (one per class)")
    # make_dataset seeds Python's and numpy's global generators: keep the caller's state.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(ObjectView(dict(opts)))
    except Exception as e:
        raise DseError(f"data.options: mnist1d generation failed: {e}") from None
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return RawData(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y), 10, normalize="none")


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _cifar_folder(root: Path | None) -> Path:
    if root is None:
        raise DseError("data.root: cifar10 needs data.root (the folder holding cifar-10-batches-py)")
    root = Path(root).expanduser()
    if (root / "cifar-10-batches-py").is_dir():
        return root / "cifar-10-batches-py"
    if (root / "data_batch_1").is_file():
        return root
    raise DseError(f"data.root: {root / 'cifar-10-batches-py'} not found")


@DATASETS.register("cifar10")
def load_cifar10(cfg: DataSection) -> RawData:
    opts = _options(cfg, {"max_samples": None})
    max_samples = opts["max_samples"]
    if max_samples is not None and int(max_samples) < 1:
        raise DseError(f"data.options: max_samples={max_samples} must be >= 1")
    folder = _cifar_folder(cfg.root)
    xs, ys, n = [], [], 0
    for fname in CIFAR10_FILES:
        if max_samples is not None and n >= int(max_samples):
            break
        path = folder / fname
        if not path.is_file():
            raise DseError(f"data.root: {path} not found")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as e:
            raise DseError(f"data.root: {path} is not a CIFAR-10 batch: {e}") from None
        if len(data) != len(labels):
            raise DseError(f"data.root: {path} has {len(data)} images but {len(labels)} labels")
        xs.append(data)
        ys.append(labels)
        n += len(labels)
    x_u8 = np.concatenate(xs)
    y = np.concatenate(ys)
    if max_samples is not None:
        x_u8, y = x_u8[: int(max_samples)], y[: int(max_samples)]
    x = torch.from_numpy(x_u8).float().div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x.sub_(mean).div_(std)
    return RawData(x, torch.from_numpy(y), 10, normalize="none")


def _user_loader(name: str) -> Loader:
    try:
        fn = import_object(name)
    except ImportError as e:
        raise DseError(f"data.name: {e}") from None

    def load(cfg: DataSection) -> RawData:
        out = fn(cfg)
        if isinstance(out, RawData):
            return out
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise DseError(f"data.name: {name} must return (x, y) or (x, y, num_classes)")
        x = torch.as_tensor(out[0]).float()
        y = torch.as_tensor(out[1]).long()
        num_classes = int(out[2]) if len(out) == 3 else int(y.max()) + 1
        return RawData(x, y, num_classes, normalize="none")

    return load


def _take(
    rng: np.random.RandomState, idx: np.ndarray, y: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split `idx` into (n taken, the rest), stratified by y[idx] when every class can be sampled."""
    from sklearn.model_selection import train_test_split

    if n <= 0:
        return idx[:0], idx
    if n >= len(idx):
        return idx, idx[:0]
    _, counts = np.unique(y[idx], return_counts=True)
    stratify = y[idx] if counts.min() >= 2 and len(counts) <= min(n, len(idx) - n) else None
    rest, taken = train_test_split(idx, test_size=n, random_state=rng, stratify=stratify)
    return np.sort(taken), np.sort(rest)


def split_indices(
    y: np.ndarray, cfg: DataSection, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, calib, val, test) indices of the pooled samples; depends only on y, cfg and seed."""
    n = len(y)
    rng = np.random.RandomState(seed)
    idx = np.arange(n)
    test, rest = _take(rng, idx, y, round(cfg.test_fraction * n))
    val, rest = _take(rng, rest, y, round(cfg.val_fraction * n))
    n_calib = min(cfg.calib_samples, len(rest) // 2)
    if n_calib < cfg.min_calib_samples:
        raise DseError(
            f"data.calib_samples: only {n_calib} calibration samples can be drawn from {n} samples "
            f"(after val/test, keeping half of the rest for training); min_calib_samples is "
            f"{cfg.min_calib_samples}: use more data or smaller val/test fractions"
        )
    calib, train = _take(rng, rest, y, n_calib)
    return train, calib, val, test


def load_dataset(cfg: DataSection, seed: int) -> Splits:
    """Load dataset `cfg.name` and split it deterministically from `seed`."""
    if cfg.name in DATASETS:
        loader = DATASETS.get(cfg.name)
    elif ":" in cfg.name or "." in cfg.name:
        loader = _user_loader(cfg.name)
    else:
        raise DseError(
            f"data.name: unknown dataset {cfg.name!r}; known: {', '.join(DATASETS.names())} "
            f"(or a user loader 'package.module:function')"
        )
    raw = loader(cfg)
    if raw.x.shape[0] != raw.y.shape[0] or raw.y.dim() != 1:
        raise DseError(
            f"data.name: {cfg.name} gave {raw.x.shape[0]} samples but labels of shape {tuple(raw.y.shape)}"
        )
    if len(raw.y) and (int(raw.y.min()) < 0 or int(raw.y.max()) >= raw.num_classes):
        raise DseError(f"data.name: {cfg.name} labels fall outside 0..{raw.num_classes - 1}")

    train, calib, val, test = split_indices(raw.y.numpy(), cfg, seed)
    x = raw.x.float()
    if raw.normalize == "train":
        mean, std = x[train].mean(), x[train].std().clamp_min(1e-8)
        x = (x - mean) / std

    def part(i: np.ndarray) -> Split:
        t = torch.from_numpy(i)
        return Split(x[t].contiguous(), raw.y[t].contiguous())

    return Splits(
        train=part(train),
        calib=part(calib),
        val=part(val),
        test=part(test),
        num_classes=raw.num_classes,
        input_shape=tuple(x.shape[1:]),
        name=cfg.name,
    )
