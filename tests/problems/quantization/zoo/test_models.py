from __future__ import annotations

import pickle

import pytest
import torch
import yaml
from torch import nn

from dse.cli import main
from dse.core.errors import DseError
from problems.quantization.zoo.models import MODELS, build_model, load_checkpoint


def _relus(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]


@pytest.mark.parametrize("name,blocks", [("resnet8", 1), ("resnet20", 3), ("resnet32", 5)])
def test_resnet_forward_and_structure(name: str, blocks: int) -> None:
    model = build_model(name, {"width": 4}, in_channels=1, num_classes=7)
    out = model(torch.randn(2, 1, 16, 16))
    assert out.shape == (2, 7)
    # stem relu + two per block, every one its own module
    assert len(_relus(model)) == 1 + 2 * 3 * blocks
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 1 and model.fc.in_features == 16
    # option-B projection shortcut exactly where the shape changes
    assert model.layer1[0].shortcut is None
    for stage in (model.layer2, model.layer3):
        sc = stage[0].shortcut
        assert (
            isinstance(sc[0], nn.Conv2d) and sc[0].kernel_size == (1, 1) and isinstance(sc[1], nn.BatchNorm2d)
        )
        assert all(b.shortcut is None for b in list(stage)[1:])


def test_resnet_defaults_and_sizes() -> None:
    sizes = {}
    for name in ("resnet8", "resnet20", "resnet32"):
        model = build_model(name, {}, in_channels=3, num_classes=10)
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        sizes[name] = sum(p.numel() for p in model.parameters())
    assert sizes["resnet8"] < sizes["resnet20"] < sizes["resnet32"]
    assert 0.25e6 < sizes["resnet20"] < 0.3e6  # ~0.27M as in He et al.


def test_every_relu_fires_once_per_forward() -> None:
    for name, shape in [("resnet8", (2, 3, 8, 8)), ("cnn1d", (2, 1, 40)), ("mlp", (2, 1, 8, 8))]:
        model = build_model(name, {}, in_channels=shape[1], num_classes=10, input_shape=shape[1:])
        calls: dict[str, int] = {}
        for n, m in model.named_modules():
            if isinstance(m, nn.ReLU):
                m.register_forward_hook(lambda _m, _i, _o, n=n, c=calls: c.__setitem__(n, c.get(n, 0) + 1))
        model(torch.randn(*shape))
        assert calls and set(calls.values()) == {1}, (name, calls)
        assert sorted(calls) == sorted(_relus(model))


def test_cnn1d_and_mlp() -> None:
    m = build_model("cnn1d", {"channels": 8}, in_channels=1, num_classes=10)
    assert m(torch.randn(3, 1, 40)).shape == (3, 10)
    m = build_model("cnn1d", {}, in_channels=2, num_classes=4, input_shape=(2, 33))
    assert m(torch.randn(3, 2, 33)).shape == (3, 4)
    m = build_model("mlp", {"hidden": [16, 8]}, in_channels=1, num_classes=5, input_shape=(1, 6, 6))
    assert m(torch.randn(3, 1, 6, 6)).shape == (3, 5)
    assert len(_relus(m)) == 2
    m = build_model("mlp", {"in_features": 12}, in_channels=1, num_classes=3)
    assert m(torch.randn(2, 12)).shape == (2, 3)


def test_registry_names() -> None:
    assert {"resnet8", "resnet20", "resnet32", "cnn1d", "mlp"} <= set(MODELS.names())


def test_options_override_data() -> None:
    m = build_model(
        "resnet8", {"in_channels": 2, "num_classes": 3, "width": 4}, in_channels=1, num_classes=10
    )
    assert m(torch.randn(1, 2, 8, 8)).shape == (1, 3)


def test_user_factory_gets_only_options() -> None:
    m = build_model("torch.nn:Linear", {"in_features": 4, "out_features": 2}, in_channels=1, num_classes=10)
    assert isinstance(m, nn.Linear) and m.out_features == 2


def test_build_model_errors() -> None:
    with pytest.raises(DseError, match=r"model.name: unknown model 'resnet99'; known: cnn1d, mlp, resnet20"):
        build_model("resnet99", {}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.name: .*no_such_pkg"):
        build_model("no_such_pkg.models:net", {}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.name: .*no attribute 'Nope'"):
        build_model("torch.nn:Nope", {}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.options: resnet20: .*depth"):
        build_model("resnet20", {"depth": 3}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.options: resnet8: .*width"):
        build_model("resnet8", {"width": 0}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.options: torch.nn:Linear"):
        build_model("torch.nn:Linear", {"in_features": 4}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"not a torch.nn.Module"):
        build_model("builtins:dict", {}, in_channels=1, num_classes=10)
    with pytest.raises(DseError, match=r"model.options: mlp: .*in_features"):
        build_model("mlp", {}, in_channels=1, num_classes=10)


def _net(width: int = 4) -> nn.Module:
    return build_model("resnet8", {"width": width}, in_channels=1, num_classes=10)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_checkpoint_round_trip(tmp_path, wrap: str | None) -> None:
    torch.manual_seed(0)
    src = _net()
    src.bn1.running_mean.add_(1.0)
    sd = src.state_dict()
    path = tmp_path / "ck.pt"
    torch.save(sd if wrap is None else {wrap: sd, "epoch": 3}, path)
    torch.manual_seed(1)
    dst = _net()
    assert load_checkpoint(dst, path) is dst
    for k, v in dst.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_checkpoint_module_prefix_and_missing_bn_counter(tmp_path) -> None:
    torch.manual_seed(0)
    src = _net()
    src.bn1.running_var.mul_(3.0)
    sd = {f"module.{k}": v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "ck.pt")
    torch.manual_seed(1)
    dst = _net()
    assert not torch.equal(dst.conv1.weight, src.conv1.weight)
    counters = {k: v.clone() for k, v in dst.state_dict().items() if k.endswith("num_batches_tracked")}
    assert load_checkpoint(dst, tmp_path / "ck.pt") is dst
    for k, v in dst.state_dict().items():
        if k in counters:  # absent from the file: the model keeps its own
            assert torch.equal(v, counters[k]), k
        else:  # every other tensor comes from the file, its "module." prefix stripped
            assert torch.equal(v, sd[f"module.{k}"]), k
    assert len(counters) > 0 and len(sd) + len(counters) == len(dst.state_dict())


def _legacy_save(obj, path) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=False)


class _NotATensor:
    pass


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not a checkpoint\n", id="text"),
        pytest.param(
            bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).tolist()),
            id="random-bytes",
        ),
        pytest.param(pickle.dumps({"fc.weight": [1.0, 2.0]}), id="plain-pickle"),
        pytest.param(b"\x80\x02garbage after a pickle header", id="pickle-header"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path, content: bytes) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(DseError) as ei:
        load_checkpoint(_net(), bad)
    # one line, and never torch's advice to retry with weights_only=False
    assert str(ei.value) == f"model.checkpoint: {bad}: not a PyTorch state_dict file"


def test_torch_files_that_are_no_state_dict_never_suggest_weights_only_false(tmp_path) -> None:
    path = tmp_path / "ck.pt"
    for save in (torch.save, _legacy_save):
        save({"weights": _NotATensor()}, path)
        with pytest.raises(DseError) as ei:
            load_checkpoint(_net(), path)
        msg = str(ei.value)
        assert msg == (
            f"model.checkpoint: {path} could not be read: it pickles objects other than tensors "
            f"(save the model's state_dict() instead)"
        )
    # the legacy (pre-zip) torch format is still a checkpoint
    sd = _net().state_dict()
    _legacy_save(sd, path)
    loaded = load_checkpoint(_net(), path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())


def test_garbage_checkpoint_exits_2_from_the_cli(tmp_path, capsys) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("weights: see the other file\n")
    config = tmp_path / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": "tiny"},
                "execution": {"threads": 1},
                "model": {"name": "mlp", "options": {"hidden": [16]}, "checkpoint": str(bad)},
                "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
                "objectives": ["accuracy", "weight_bits"],
                "algorithm": {"name": "random", "budget": 4},
                "output": {"root": str(tmp_path / "results"), "plots": False},
            }
        )
    )
    capsys.readouterr()
    assert main(["run", str(config), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"error: model.checkpoint: {bad}: not a PyTorch state_dict file"]


def test_checkpoint_errors(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(DseError, match=rf"^model.checkpoint: {missing} not found$"):
        load_checkpoint(_net(), missing)

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 a zip header, then nothing")  # looks like torch's format, is not
    with pytest.raises(DseError, match=r"model.checkpoint: .*bad.pt could not be read: .*zip") as ei:
        load_checkpoint(_net(), bad)
    assert "\n" not in str(ei.value)

    sd = _net().state_dict()
    path = tmp_path / "ck.pt"

    sd_missing = dict(sd)
    del sd_missing["layer1.0.conv2.weight"]
    del sd_missing["fc.bias"]
    torch.save(sd_missing, path)
    with pytest.raises(DseError, match=r"does not fit the model: missing tensor 'layer1.0.conv2.weight'$"):
        load_checkpoint(_net(), path)

    torch.save({**sd, "extra.weight": torch.zeros(1)}, path)
    with pytest.raises(DseError, match=r"unexpected tensor 'extra.weight'$"):
        load_checkpoint(_net(), path)

    torch.save(_net(width=8).state_dict(), path)
    with pytest.raises(DseError, match=r"tensor 'conv1.weight' has shape \(8, 1, 3, 3\) .* \(4, 1, 3, 3\)"):
        load_checkpoint(_net(width=4), path)

    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(DseError, match=r"is not a state_dict"):
        load_checkpoint(_net(), path)
