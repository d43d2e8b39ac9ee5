"""QuantizedModel on tiny models: folding, naming, bits in place, calibration errors, statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.core.errors import DseError
from problems.quantization.formats.quantizer import CalibrationError, QuantizationError, UnknownQuantizerError
from problems.quantization.qmodel import QuantizedModel


def randomise_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            assert m.running_mean.numel() == n
    return model.eval()


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))


class Block(nn.Module):
    """CIFAR ResNet pattern: conv1, bn1, relu1, conv2, bn2, Sequential(conv, bn) shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = (
            nn.Conv2d(2, 4, 3, padding=1, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),
        )
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.shortcut = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


@pytest.fixture
def data() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(64, 1, 8, 8)


@pytest.fixture
def tiny() -> Tiny:
    torch.manual_seed(1)
    return randomise_bn(Tiny())


def calibrated(model: nn.Module, x: torch.Tensor, **kw) -> QuantizedModel:
    qm = QuantizedModel(model, **kw)
    qm.calibrate([x[:32], x[32:]])
    return qm


def test_bn_folding_preserves_float_outputs(tiny, data):
    qm = QuantizedModel(tiny)
    assert qm.folded == [("conv", "bn")]
    assert isinstance(qm.model.bn, nn.Identity) and qm.model.conv.bias is not None
    with torch.inference_mode(), qm.float_mode():
        torch.testing.assert_close(qm(data), tiny(data), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (Block(), (8, 2, 6, 6)),
        (nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.ReLU()), (8, 2, 10)),
        (nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)), (8, 5)),
    ],
)
def test_folding_patterns(model, shape):
    torch.manual_seed(0)
    model = randomise_bn(model)
    qm = QuantizedModel(model)
    assert len(qm.folded) == sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if isinstance(model, Block):
        assert qm.folded == [("conv1", "bn1"), ("conv2", "bn2"), ("shortcut.0", "shortcut.1")]
    x = torch.randn(shape)
    with torch.inference_mode(), qm.float_mode():
        torch.testing.assert_close(qm(x), model(x), atol=1e-5, rtol=1e-5)
    qm.calibrate([x])  # includes the folding check against the original


def test_wrong_registration_order_is_caught():
    class PreNorm(nn.Module):  # conv registered before bn, but bn runs first
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.bn(x))

    torch.manual_seed(0)
    qm = QuantizedModel(randomise_bn(PreNorm()))
    with pytest.raises(QuantizationError, match="BatchNorm folding changed the float output"):
        qm.calibrate([torch.randn(4, 3, 5, 5)])
    assert QuantizedModel(PreNorm(), fold_bn=False).folded == []


def test_quantizer_names_and_modes(tiny, data):
    qm = calibrated(tiny, data)
    assert list(qm.weight_quantizers) == ["conv", "fc"]
    assert list(qm.act_quantizers) == ["input", "relu", "fc"]
    modes = {n: q.mode for n, q in qm.act_quantizers.items()}
    assert modes == {"input": "symmetric", "relu": "unsigned", "fc": "symmetric"}
    assert qm.weight_quantizers["conv"].amax.shape == (4, 1, 1, 1)
    assert qm.weight_quantizers["conv"].narrow_range and qm.weight_quantizers["conv"].mode == "symmetric"
    qm2 = calibrated(tiny, data.abs(), act_types=(), act_names=r"^pool$", weight_per_channel=False)
    assert list(qm2.act_quantizers) == ["input", "pool"]
    assert qm2.act_quantizers["input"].mode == "unsigned"  # non-negative data, seen in calibration
    assert qm2.weight_quantizers["conv"].amax.shape == ()
    assert QuantizedModel(tiny, act_types=(), quantize_input=False).act_quantizers == {}


def errors(qm: QuantizedModel, x: torch.Tensor, ref: torch.Tensor, bits: int) -> float:
    qm.set_bits({n: bits for n in qm.weight_quantizers}, {n: bits for n in qm.act_quantizers})
    with torch.inference_mode():
        return (qm(x) - ref).abs().mean().item()


def test_error_grows_as_bits_shrink(tiny, data):
    qm = calibrated(tiny, data, act_calibrator="max")
    with torch.inference_mode():
        ref = tiny(data)
    err = {b: errors(qm, data, ref, b) for b in (16, 8, 4, 2)}
    assert err[16] < 1e-3
    assert err[16] < err[8] < err[4] < err[2]


def test_set_bits_swaps_cached_weights_in_place(tiny, data):
    qm = calibrated(tiny, data)
    conv = qm.model.conv
    w4 = qm.quantized_weight("conv", 4)
    assert qm.quantized_weight("conv", 4) is w4
    qm.set_bits(weights={"conv": 4})
    assert conv.weight.data_ptr() == w4.data_ptr() and qm.model.conv is conv
    assert qm.weight_quantizers["conv"].num_bits == 4 and qm.bits()["weights"] == {"conv": 4, "fc": 8}
    qm.set_bits(weights={"conv": 8})
    qm.set_bits(weights={"conv": 4})
    assert conv.weight.data_ptr() == w4.data_ptr()
    assert len(torch.unique(w4[0])) <= 15  # at most 2 * 7 + 1 levels per output channel
    with qm.float_mode():
        assert conv.weight.data_ptr() == qm.float_weight("conv").data_ptr()
        assert not qm.act_quantizers["relu"].enabled
    assert conv.weight.data_ptr() == w4.data_ptr() and qm.act_quantizers["relu"].enabled


def test_set_bits_rejects_unknown_names_and_bad_bits_atomically(tiny, data):
    qm = calibrated(tiny, data)
    with pytest.raises(UnknownQuantizerError, match="unknown weight quantizer 'nope'") as err:
        qm.set_bits(weights={"conv": 4, "nope": 4})
    assert isinstance(err.value, DseError) and isinstance(err.value, KeyError)
    assert str(err.value) == "unknown weight quantizer 'nope'"
    with pytest.raises(UnknownQuantizerError, match="activation quantizer 'conv'"):
        qm.set_bits(activations={"conv": 4})
    with pytest.raises(ValueError, match="weight quantizer 'fc'"):
        qm.set_bits(weights={"conv": 4, "fc": 0})
    assert qm.weight_quantizers["conv"].num_bits == 8


def test_original_model_untouched(tiny, data):
    tiny.train()
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    qm = calibrated(tiny, data)
    qm.set_bits(weights={"conv": 2})
    with torch.inference_mode():
        qm(data)
    assert tiny.training and all(m.training for m in tiny.modules())
    assert isinstance(tiny.bn, nn.BatchNorm2d)
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_calibration_errors_name_the_culprit(tiny, data):
    class Unused(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.spare = nn.ReLU()

    with pytest.raises(CalibrationError, match="activation quantizer 'spare' saw no data during calibration"):
        calibrated(Unused(), data)
    with pytest.raises(CalibrationError, match=r"quantizer 'input' calibrated to amax 0 \(all-zero tensor\)"):
        calibrated(tiny, torch.zeros(8, 1, 8, 8))
    qm = QuantizedModel(tiny)
    with pytest.raises(CalibrationError, match="calibration saw 4 samples, fewer than min_samples=16"):
        qm.calibrate([data[:4]], min_samples=16)
    with pytest.raises(CalibrationError, match="saw 0 samples"):
        qm.calibrate([])
    with pytest.raises(CalibrationError, match="not calibrated"):
        qm(data)
    with torch.inference_mode(), qm.float_mode():  # the float model runs before calibration
        qm(data)


def test_all_zero_weight_is_exact(tiny, data):
    tiny.fc.weight.data.zero_()
    qm = calibrated(tiny, data)
    qm.set_bits(weights={"fc": 2})
    assert torch.count_nonzero(qm.model.fc.weight) == 0


def test_layer_stats_hand_checked(tiny):
    qm = QuantizedModel(tiny)
    stats = qm.layer_stats(torch.randn(2, 1, 8, 8))  # per sample: independent of the batch size
    # conv: 36 weights; output 4x8x8 = 256 values, each 1 channel x 3x3 = 9 MACs
    assert stats["conv"] == {"params": 36, "macs": 2304, "act_input": "input", "calls": 1}
    # fc: 16 x 3; fed by the pool, which has no quantizer
    assert stats["fc"] == {"params": 48, "macs": 48, "act_input": None, "calls": 1}
    acts = qm.activation_stats(torch.randn(1, 1, 8, 8))
    assert acts == {
        "input": {"numel": 64, "calls": 1},
        "relu": {"numel": 256, "calls": 1},
        "fc": {"numel": 3, "calls": 1},
    }


def test_layer_stats_grouped_conv_views_and_reused_modules():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 3, groups=2, bias=False)  # 3x3 over 2 input channels per group
            self.relu = nn.ReLU()
            self.fc = nn.Linear(6 * 4 * 4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.relu(self.conv(x)))  # one ReLU module, called twice
            return self.fc(x.flatten(1))  # a view: fc still reads the ReLU quantizer's output

    qm = QuantizedModel(Net(), act_types=("ReLU",))
    stats = qm.layer_stats(torch.randn(3, 4, 6, 6))
    assert stats["conv"] == {"params": 108, "macs": 96 * 18, "act_input": "input", "calls": 1}
    assert stats["fc"] == {"params": 480, "macs": 480, "act_input": "relu", "calls": 1}
    assert qm.activation_stats(torch.randn(1, 4, 6, 6))["relu"] == {"numel": 192, "calls": 2}


def test_aliasing_outputs_are_not_quantized_in_place(data):
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.skip = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.skip(x)  # the Identity output is x itself

    qm = QuantizedModel(Skip(), act_types=("Identity",), quantize_input=False, act_calibrator="max")
    qm.calibrate([data])
    qm.set_bits(activations={"skip": 2})
    with torch.inference_mode():
        out = qm(data)
        expected = data + qm.act_quantizers["skip"].quantize_tensor(data)
    torch.testing.assert_close(out, expected)


def test_forward_works_with_grad_enabled(tiny, data):
    qm = calibrated(tiny, data)
    out = qm(data)  # frozen parameters: no graph, the fast path
    assert not out.requires_grad


def test_recalibration_starts_from_scratch(tiny, data):
    qm = calibrated(tiny, data.abs())
    assert qm.act_quantizers["input"].mode == "unsigned"
    qm.calibrate([data])
    assert qm.act_quantizers["input"].mode == "symmetric"
    assert qm.act_quantizers["input"].amax.item() == pytest.approx(data.abs().max().item(), rel=0.05)


def test_mse_weight_calibrator_amax_depends_on_bits(tiny, data):
    qm = calibrated(tiny, data, weight_calibrator="mse", act_calibrator="mse")
    wq = qm.weight_quantizers["conv"]
    a8 = wq.amax
    qm.set_bits(weights={"conv": 2}, activations={"relu": 2})
    assert not torch.equal(wq.amax, a8) and bool((wq.amax <= a8 + 1e-6).all())
    assert qm.act_quantizers["relu"].amax < qm.act_quantizers["relu"].range(8)[1]
