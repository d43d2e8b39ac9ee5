from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dse.core.errors import DseError
from problems.quantization.config import DataSection
from problems.quantization.zoo.data import CIFAR10_MEAN, CIFAR10_STD, load_dataset, split_indices


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSection(), seed=0)


def test_digits_shapes_and_sizes(digits) -> None:
    s = digits
    assert s.name == "digits" and s.num_classes == 10 and s.input_shape == (1, 16, 16)
    sizes = [len(p) for p in (s.train, s.calib, s.val, s.test)]
    assert sizes == [1797 - 359 - 359 - 128, 128, 359, 359]
    for p in (s.train, s.calib, s.val, s.test):
        assert p.x.shape == (len(p), 1, 16, 16) and p.x.dtype == torch.float32 and p.y.dtype == torch.long
    # normalised with the train split's statistics
    assert abs(float(s.train.x.mean())) < 1e-4 and abs(float(s.train.x.std()) - 1) < 1e-3
    # stratified
    counts = torch.bincount(s.val.y, minlength=10)
    assert int(counts.max() - counts.min()) <= 1


def test_digits_deterministic_per_seed(digits) -> None:
    again = load_dataset(DataSection(), seed=0)
    for a, b in zip(
        (digits.train, digits.calib, digits.val, digits.test),
        (again.train, again.calib, again.val, again.test),
    ):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    other = load_dataset(DataSection(), seed=1)
    assert not torch.equal(digits.val.x, other.val.x)
    assert load_dataset(DataSection(image_size=8), seed=0).input_shape == (1, 8, 8)


def test_split_indices_disjoint_and_complete() -> None:
    y = np.repeat(np.arange(10), 50)
    cfg = DataSection(val_fraction=0.1, test_fraction=0.3, calib_samples=40)
    train, calib, val, test = split_indices(y, cfg, seed=3)
    assert (len(test), len(val), len(calib), len(train)) == (150, 50, 40, 260)
    allidx = np.concatenate([train, calib, val, test])
    assert len(np.unique(allidx)) == len(y) == len(allidx)
    assert np.array_equal(np.bincount(y[calib]), np.full(10, 4))  # stratified
    again = split_indices(y, cfg, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, calib, val, test), again))
    other = split_indices(y, cfg, seed=4)
    assert not np.array_equal(test, other[3])


def test_calib_is_capped_and_too_few_is_an_error() -> None:
    y = np.repeat(np.arange(4), 25)  # 100 samples: 20 test, 20 val, 60 rest -> at most 30 calib
    train, calib, _, _ = split_indices(y, DataSection(calib_samples=100), seed=0)
    assert len(calib) == 30 and len(train) == 30
    with pytest.raises(DseError, match=r"^data.calib_samples: only 30 .*min_calib_samples is 32"):
        split_indices(y, DataSection(calib_samples=100, min_calib_samples=32), seed=0)


def test_unknown_dataset_and_option() -> None:
    with pytest.raises(
        DseError, match=r"data.name: unknown dataset 'imagenet'; known: cifar10, digits, mnist1d"
    ):
        load_dataset(DataSection(name="imagenet"), 0)
    with pytest.raises(DseError, match=r"data.options: unknown option 'foo' for dataset 'digits'"):
        load_dataset(DataSection(options={"foo": 1}), 0)


def test_mnist1d_small_keeps_global_rng() -> None:
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    s = load_dataset(DataSection(name="mnist1d", options={"num_samples": 300}), seed=0)
    assert (np.random.rand(), random.random()) == expected
    assert s.input_shape == (1, 40) and s.num_classes == 10
    assert sum(len(p) for p in (s.train, s.calib, s.val, s.test)) == 300
    assert (len(s.test), len(s.val), len(s.calib), len(s.train)) == (60, 60, 90, 90)  # calib: half the rest
    t = load_dataset(DataSection(name="mnist1d", options={"num_samples": 300}), seed=0)
    assert torch.equal(s.train.x, t.train.x)


def _write_cifar(folder: Path, per_batch: int = 10) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.randint(0, 10, size=per_batch)]
        first = data if first is None else first
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return first


def test_cifar10_from_tiny_pickles(tmp_path) -> None:
    first = _write_cifar(tmp_path / "cifar-10-batches-py")
    cfg = DataSection(name="cifar10", root=tmp_path, calib_samples=16)
    s = load_dataset(cfg, seed=0)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 10
    assert sum(len(p) for p in (s.train, s.calib, s.val, s.test)) == 60
    assert (len(s.test), len(s.val), len(s.calib)) == (12, 12, 16)
    # root may also be the batches folder itself; max_samples keeps the first samples
    s2 = load_dataset(cfg.model_copy(update={"root": tmp_path / "cifar-10-batches-py"}), seed=0)
    assert torch.equal(s.train.x, s2.train.x)
    s3 = load_dataset(
        cfg.model_copy(update={"options": {"max_samples": 10}, "calib_samples": 2, "min_calib_samples": 1}), 0
    )
    assert sum(len(p) for p in (s3.train, s3.calib, s3.val, s3.test)) == 10
    # normalisation with the usual per-channel constants: find sample 0 of data_batch_1
    img = torch.tensor(first[0].reshape(3, 32, 32), dtype=torch.float32) / 255
    want = (img - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    allx = torch.cat([s3.train.x, s3.calib.x, s3.val.x, s3.test.x])
    assert any(torch.allclose(x, want, atol=1e-5) for x in allx)


def test_cifar10_missing_folder(tmp_path) -> None:
    with pytest.raises(DseError, match=r"^data.root: .*cifar-10-batches-py not found$"):
        load_dataset(DataSection(name="cifar10", root=tmp_path), 0)
    with pytest.raises(DseError, match=r"^data.root: cifar10 needs data.root"):
        load_dataset(DataSection(name="cifar10"), 0)
    folder = tmp_path / "c" / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DseError, match=r"data.root: .*data_batch_3 not found"):
        load_dataset(DataSection(name="cifar10", root=tmp_path / "c"), 0)
