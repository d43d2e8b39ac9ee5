"""`quantization.backend: modelopt`: ModelOpt's quantizers agree with the native ones at equal
settings, flip bits in place, a user's ModelOpt model is searched as is, and a missing extra (or a
setting the backend cannot honour) is one line, exit code 2, before anything is trained. The tests
that need ModelOpt skip where it is not installed; the missing-extra ones run everywhere."""

from __future__ import annotations

import copy
import re
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn

from dse.cli import main
from dse.core.config import parse_config
from dse.core.errors import ConfigError, DseError
from problems.quantization import backends
from problems.quantization.backends import build_quantized_model
from problems.quantization.deployment import DeploymentHooks
from problems.quantization.formats.quantizer import BitsError, UnknownQuantizerError
from problems.quantization.modelopt_backend import MISSING, holds_quantizers, import_mtq
from tests.problems.quantization.bench_config import write_bench_config
from tests.problems.quantization.test_qmodel import Tiny, randomise_bn

WEIGHTS_ONLY = {"types": [], "input": False, "calibrator": "max"}


@pytest.fixture(scope="module")
def mtq():
    return pytest.importorskip("modelopt.torch.quantization")


def config(backend: str, activations: dict | None = None):
    """Max calibration, per channel: the settings both backends share."""
    q = {"backend": backend, "weights": {"calibrator": "max", "per_channel": True}}
    return parse_config({"quantization": {**q, "activations": activations or WEIGHTS_ONLY}})


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return randomise_bn(Tiny()), torch.randn(64, 1, 6, 6)


def test_agrees_with_the_native_backend_at_8_and_4_bit_weights(mtq, tiny):
    model, x = tiny
    state = copy.deepcopy(model.state_dict())
    native = build_quantized_model(config("native"), model, x)
    ours = build_quantized_model(config("modelopt"), model, x)
    assert list(ours.weight_quantizers) == list(native.weight_quantizers) == ["conv", "fc"]
    assert ours.act_quantizers == {} and ours.folded == native.folded == [("conv", "bn")]
    with torch.inference_mode(), native.float_mode():
        y_float = native(x)
    for bits in (8, 4):
        native.set_bits(weights={"conv": bits, "fc": bits})
        ours.set_bits(weights={"conv": bits, "fc": bits})
        with torch.inference_mode():
            a, b = native(x), ours(x)
        effect = (a - y_float).abs().max().item()
        assert (a - b).abs().max().item() <= 1e-3 * effect, bits  # the same grid, up to float rounding
        assert torch.equal(a.argmax(1), b.argmax(1))
    assert effect > 0.01  # 4 bits changes the outputs: the agreement is not vacuous
    # the original is left as it was: no quantizers, BatchNorm not folded
    assert not holds_quantizers(model) and type(model.conv) is nn.Conv2d
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_flipping_bits_changes_the_output_and_flipping_back_restores_it_exactly(mtq, tiny):
    model, x = tiny
    ours = build_quantized_model(config("modelopt", {"calibrator": "max"}), model, x)
    assert list(ours.act_quantizers) == ["conv", "fc"]  # each layer's input, per tensor
    with torch.inference_mode():
        y8 = ours(x)
        ours.set_bits(weights={"conv": 3})
        assert ours.model.conv.weight_quantizer.num_bits == 3  # ModelOpt's own quantizer, in place
        y3 = ours(x)
        ours.set_bits(activations={"fc": 2})
        y2 = ours(x)
        ours.set_bits(weights={"conv": 8}, activations={"fc": 8})
        back = ours(x)
    assert not torch.equal(y8, y3) and not torch.equal(y3, y2)
    assert torch.equal(back, y8)
    with pytest.raises(BitsError, match="weight quantizer 'fc': symmetric .* 2..32, got 1"):
        ours.set_bits(weights={"conv": 4, "fc": 1})
    with pytest.raises(UnknownQuantizerError):
        ours.set_bits(activations={"bn": 4})
    assert ours.bits()["weights"] == {"conv": 8, "fc": 8}  # nothing changed by the refused calls
    with torch.inference_mode(), ours.float_mode():
        assert (ours(x) - model(x)).abs().max().item() < 1e-5
    with torch.inference_mode():
        assert torch.equal(ours(x), y8)  # float_mode restored every quantizer


def test_layer_stats_by_hand(mtq, tiny):
    model, x = tiny
    stats = build_quantized_model(config("modelopt", {"calibrator": "max"}), model, x).layer_stats(x[:1])
    # conv: 4 x 1 x 3 x 3 weights, 4 x 6 x 6 outputs of 9 MACs each; fc: 16 -> 3
    assert stats["conv"] == {"params": 36, "macs": 144 * 9, "act_input": "conv", "calls": 1}
    assert stats["fc"] == {"params": 48, "macs": 48, "act_input": "fc", "calls": 1}


def test_a_model_the_user_quantized_with_modelopt_is_searched_as_is(mtq, tiny):
    model, x = tiny
    user = copy.deepcopy(model)
    cfg = {
        "quant_cfg": [
            {"quantizer_name": "*", "enable": False},
            {"quantizer_name": "*weight_quantizer", "cfg": {"num_bits": 6, "axis": 0}},
            {"quantizer_name": "*input_quantizer", "cfg": {"num_bits": 8, "axis": None}},
        ],
        "algorithm": "max",
    }
    user = mtq.quantize(user, cfg, forward_loop=lambda m: m(3 * x))  # its own data: 3x the ranges
    ours = build_quantized_model(config("modelopt"), user, x)
    assert list(ours.weight_quantizers) == ["conv", "fc"]
    assert list(ours.act_quantizers) == ["conv", "bn", "pool", "fc"]  # its pattern caught those inputs too
    assert ours.folded == [] and isinstance(ours.model.bn, nn.BatchNorm2d)  # not refolded
    amax = user.conv.input_quantizer.amax
    assert torch.equal(ours.act_quantizers["conv"].quantizer.amax, amax)  # not recalibrated on x
    assert amax.item() == pytest.approx(3 * x.abs().max().item(), rel=1e-6)
    with torch.inference_mode():
        assert torch.equal(ours(x), user(x))
        ours.set_bits(weights={"conv": 2})
        assert not torch.equal(ours(x), user(x)) and user.conv.weight_quantizer.num_bits == 6
    with pytest.raises(ConfigError, match=r"TensorQuantizers; set it to modelopt to search them$"):
        build_quantized_model(config("native"), user, x)


def write_config(tmp_path, **quantization):
    path = write_bench_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["quantization"] = {"backend": "modelopt", **quantization}
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("command", ["validate", "run", "bench"])
def test_the_backend_missing_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "modelopt", None)  # import modelopt fails, as where it is not installed
    path = write_config(tmp_path, weights={"calibrator": "max"}, activations={"calibrator": "max"})
    capsys.readouterr()
    assert main([command, str(path)]) == 2
    assert capsys.readouterr().err == f"error: {MISSING}\n"
    assert MISSING.endswith("install the extra: pip install 'dse[modelopt]'")
    assert not (tmp_path / "results").exists()  # refused before training anything


def test_the_build_refuses_a_missing_modelopt_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "modelopt.torch.quantization", None)
    with pytest.raises(DseError, match=f"^{re.escape(MISSING)} \\(modelopt.torch.quantization missing\\)$"):
        import_mtq()


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ({"weights": {"calibrator": "mse"}}, "quantization.weights.calibrator: .* max only, got mse"),
        ({"activations": {"calibrator": "percentile"}}, "quantization.activations.calibrator: .*"),
        ({"format": "fixed_point"}, "quantization.format: the modelopt backend is affine only, .*"),
    ],
)
def test_settings_only_the_native_backend_honours_are_refused(tmp_path, monkeypatch, capsys, setting, why):
    monkeypatch.setattr(backends, "_installed", lambda module: True)
    quantization = {"weights": {"calibrator": "max"}, "activations": {"calibrator": "max"}}
    for key, value in setting.items():
        quantization[key] = {**quantization.get(key, {}), **value} if isinstance(value, dict) else value
    path = write_config(tmp_path, **quantization)
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(f"error: {why}\n", err), err


def test_mpq_finetune_and_export_refuse_modelopt_quantizers(mtq, tiny, tmp_path):
    model, x = tiny
    problem = SimpleNamespace(qmodel=build_quantized_model(config("modelopt"), model, x))
    calls = {
        "mpq.json": lambda: DeploymentHooks.describe_quantizers(problem, {}),
        "dse finetune": lambda: DeploymentHooks.finetune(problem, {}, tmp_path, {}),
        "dse export": lambda: DeploymentHooks.export_onnx(problem, {}, tmp_path / "m.onnx"),
    }
    for feature, call in calls.items():
        with pytest.raises(DseError, match=f"^quantization.backend: {feature} needs the native backend"):
            call()


@pytest.mark.slow
def test_bench_prints_the_cost_of_a_modelopt_evaluation(mtq, tmp_path, capsys):
    path = write_config(tmp_path, weights={"calibrator": "max"}, activations={"calibrator": "max"})
    capsys.readouterr()
    assert main(["bench", str(path), "--candidates", "2", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    figures = dict(re.findall(r"^(\w+) +([0-9.e+-]+)$", out, re.M))
    assert float(figures["evaluation_s"]) > 0 and float(figures["float_forward_s"]) > 0
    assert re.search(r"^evaluation / float forward = \d+\.\d{3}$", out, re.M)
