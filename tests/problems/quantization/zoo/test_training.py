from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from problems.quantization.config import DataSection, ModelSection, TrainingSection
from problems.quantization.zoo import training
from problems.quantization.zoo.data import load_dataset
from problems.quantization.zoo.models import build_model
from problems.quantization.zoo.training import (
    accuracy,
    baseline_key,
    cached_baseline,
    random_shift,
    train_baseline,
)

DATA = DataSection(image_size=8)
MODEL = ModelSection(name="mlp", options={"hidden": [32]})
TRAIN = TrainingSection(epochs=3, batch_size=64, lr=0.05, shift=0)


@pytest.fixture(scope="module")
def splits():
    return load_dataset(DATA, seed=0)


def _build(splits):
    return lambda: build_model(
        MODEL.name,
        MODEL.options,
        in_channels=1,
        num_classes=splits.num_classes,
        input_shape=splits.input_shape,
    )


class _Constant(nn.Module):
    def __init__(self, cls: int) -> None:
        super().__init__()
        self.cls = cls
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(x.shape[0], 10)
        out[:, self.cls] = 1
        return out


def test_accuracy_percent_and_mode_restored(splits) -> None:
    m = _Constant(3).train()
    want = 100.0 * float((splits.val.y == 3).float().mean())
    assert accuracy(m, splits.val, batch_size=50) == pytest.approx(want)
    assert m.training


def test_training_improves_accuracy_and_is_deterministic(splits) -> None:
    torch.manual_seed(0)
    model = _build(splits)()
    before = accuracy(model, splits.val)
    info = train_baseline(model, splits, TRAIN, seed=0, progress=False)
    assert set(info) >= {"val_accuracy", "test_accuracy", "epochs", "seconds"}
    assert info["val_accuracy"] == pytest.approx(accuracy(model, splits.val))
    assert before < 30 and info["val_accuracy"] > 85 and info["epochs"] == 3
    torch.manual_seed(0)
    again = _build(splits)()
    train_baseline(again, splits, TRAIN, seed=0, progress=False)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_cache_is_reused_and_keyed(splits, tmp_path, monkeypatch) -> None:
    model, info = cached_baseline(MODEL, DATA, TRAIN, splits, 0, tmp_path, _build(splits))
    assert info["cached"] is False and info["val_accuracy"] > 85
    pt = tmp_path / "baselines" / f"{info['key']}.pt"
    assert pt.is_file() and pt.with_suffix(".json").is_file()
    assert json.loads(pt.with_suffix(".json").read_text())["config"]["training"]["epochs"] == 3
    assert not list((tmp_path / "baselines").glob(".*tmp"))

    def no_training(*a, **k):
        raise AssertionError("the cached baseline should have been reused")

    monkeypatch.setattr(training, "train_baseline", no_training)
    # the evaluation batch size does not change the trained weights, so it is not part of the key
    model2, info2 = cached_baseline(
        MODEL, DATA.model_copy(update={"batch_size": 7}), TRAIN, splits, 0, tmp_path, _build(splits)
    )
    assert info2["cached"] is True and info2["key"] == info["key"]
    assert info2["val_accuracy"] == info["val_accuracy"] == accuracy(model2, splits.val)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)


def test_key_changes_with_what_determines_the_weights() -> None:
    key = baseline_key(MODEL, DATA, TRAIN, 0)[0]
    assert key == baseline_key(MODEL, DATA, TrainingSection(epochs=3, batch_size=64, lr=0.05, shift=0), 0)[0]
    assert key != baseline_key(MODEL, DATA, TRAIN.model_copy(update={"epochs": 4}), 0)[0]
    assert key != baseline_key(MODEL, DATA, TRAIN.model_copy(update={"lr": 0.1}), 0)[0]
    assert key != baseline_key(MODEL, DATA, TRAIN.model_copy(update={"shift": 1}), 0)[0]
    assert key != baseline_key(MODEL, DATA, TRAIN, 1)[0]
    assert key != baseline_key(MODEL.model_copy(update={"options": {"hidden": [16]}}), DATA, TRAIN, 0)[0]
    assert key != baseline_key(MODEL, DATA.model_copy(update={"image_size": 16}), TRAIN, 0)[0]
    assert key == baseline_key(MODEL, DATA.model_copy(update={"batch_size": 1}), TRAIN, 0)[0]


def test_corrupt_cache_entry_is_retrained(splits, tmp_path) -> None:
    _, info = cached_baseline(
        MODEL, DATA, TRAIN.model_copy(update={"epochs": 1}), splits, 0, tmp_path, _build(splits)
    )
    (tmp_path / "baselines" / f"{info['key']}.pt").write_bytes(b"junk")
    _, info2 = cached_baseline(
        MODEL, DATA, TRAIN.model_copy(update={"epochs": 1}), splits, 0, tmp_path, _build(splits)
    )
    assert info2["cached"] is False and info2["val_accuracy"] == info["val_accuracy"]


def _shifted(x: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    """x (C, *spatial) moved by `offsets` per spatial dim, edge values repeated: out[i] = x[clamp(i + o)]."""
    out = x
    for d, o in enumerate(offsets):
        size = x.shape[1 + d]
        index = torch.tensor([min(max(i + o, 0), size - 1) for i in range(size)])
        out = out.index_select(1 + d, index)
    return out


@pytest.mark.parametrize("shape", [(64, 2, 7), (64, 3, 5, 6)])
def test_random_shift_moves_each_sample_by_one_offset_within_the_range(shape) -> None:
    shift = 2
    x = torch.randperm(int(torch.tensor(shape).prod())).float().view(shape)  # all values distinct
    y = random_shift(x, shift, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    spatial = len(shape) - 2
    grid = [
        tuple(o)
        for o in torch.cartesian_prod(*[torch.arange(-shift, shift + 1)] * spatial).view(-1, spatial).tolist()
    ]
    used = []
    for i in range(shape[0]):
        # the sample (every channel alike) is its input moved by exactly one offset in [-shift, shift]
        match = [o for o in grid if torch.equal(y[i], _shifted(x[i], o))]
        assert len(match) == 1, (i, match)
        used.append(match[0])
    # the offsets are random: with 64 samples every value of every dim turns up, zero is not the rule
    for d in range(spatial):
        assert {o[d] for o in used} == set(range(-shift, shift + 1))
    assert sum(o == (0,) * spatial for o in used) < shape[0] // 2
    # the generator decides: the same seed gives the same shifts, another seed others
    assert torch.equal(y, random_shift(x, shift, torch.Generator().manual_seed(0)))
    assert not torch.equal(y, random_shift(x, shift, torch.Generator().manual_seed(1)))


def test_random_shift_leaves_other_inputs_alone() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, 5, 6)
    assert random_shift(x, 0, g) is x
    flat = torch.randn(8, 30)
    assert random_shift(flat, 2, g) is flat
