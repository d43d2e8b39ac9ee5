"""Weight quantizers beyond Conv/Linear (issue 10, item 7): a small transformer's attention
projections become searched variables, ConvTranspose2d is quantized per output channel (dim 1),
Embedding per row, and `model_bits` counts every parameter, by hand below."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.core.config import parse_config
from dse.core.errors import ConfigError, DseError
from problems.quantization.backends import build_quantized_model
from problems.quantization.problem import LayerwiseQuantizationProblem
from problems.quantization.qat import check_trainable
from problems.quantization.qmodel import QuantizedModel

VOCAB, D, HEADS, FF, LAYERS, CLASSES, TOKENS = 11, 8, 2, 16, 2, 3, 5


class TinyTransformer(nn.Module):
    """tokens (N, TOKENS) -> embed -> 2 encoder layers -> mean over tokens -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(D, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(1))


# by hand, per encoder layer: in_proj_weight 3d x d, out_proj d x d, linear1 ff x d, linear2 d x ff
QUANTIZED = VOCAB * D + LAYERS * (3 * D * D + D * D + FF * D + D * FF) + CLASSES * D  # 1136
# left float, per layer: in_proj_bias 3d, out_proj.bias d, linear1.bias ff, linear2.bias d, two
# LayerNorms (weight, bias) 4d; and the head's bias
FLOAT = LAYERS * (3 * D + D + FF + D + 4 * D) + CLASSES  # 179
PROJ = [f"encoder.layers.{i}.self_attn.in_proj_weight" for i in range(LAYERS)]
OUT = [f"encoder.layers.{i}.self_attn.out_proj" for i in range(LAYERS)]


def _config(**weights):
    return parse_config(
        {
            "experiment": {"name": "transformer"},
            "quantization": {
                "weights": {"calibrator": "max", **weights},
                "activations": {"types": [], "names": r"(linear[12]|head)$", "input": False},
            },
            "search_space": {"weights": {"bounds": [2, 8]}},
        }
    )


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    model = TinyTransformer().eval()
    tokens = torch.randint(0, VOCAB, (32, TOKENS))
    cfg = _config()
    qmodel = build_quantized_model(cfg, model, tokens)
    stats = qmodel.layer_stats(tokens[:2])
    problem = LayerwiseQuantizationProblem(qmodel, None, cfg, {"accuracy": 100.0}, stats, model)
    return problem, tokens


def test_attention_projections_are_searched_variables(transformer):
    problem, _ = transformer
    per_layer = ["self_attn.in_proj_weight", "self_attn.out_proj", "linear1", "linear2"]
    layers = [f"w:encoder.layers.{i}.{p}" for i in range(LAYERS) for p in per_layer]
    assert [v.name for v in problem.variables] == ["w:embed", *layers, "w:head"]


def test_quantizing_the_projection_changes_the_outputs(transformer):
    problem, tokens = transformer
    qm = problem.qmodel
    high = {v.name: 8 for v in problem.variables}
    problem.apply(problem.unit_bits(high))
    with torch.inference_mode():
        before = qm(tokens)
        problem.apply(problem.unit_bits(high | {"w:" + PROJ[0]: 2}))
        after = qm(tokens)
    attn = qm.model.encoder.layers[0].self_attn
    assert attn.in_proj_weight.data_ptr() == qm.quantized_weight(PROJ[0], 2).data_ptr()
    assert all(len(row.unique()) <= 3 for row in attn.in_proj_weight)  # 2 bits, narrow: -s, 0, s per row
    assert not torch.allclose(before, after)


def test_attention_macs_and_parameters_by_hand(transformer):
    problem, _ = transformer
    stats = problem.stats
    assert stats[PROJ[0]] == {"params": 3 * D * D, "macs": TOKENS * 3 * D * D, "act_input": None, "calls": 1}
    assert stats[OUT[0]]["macs"] == TOKENS * D * D  # out_proj: never called, counted from the attention
    assert stats["encoder.layers.0.linear1"]["macs"] == TOKENS * FF * D
    assert (stats["embed"]["params"], stats["embed"]["macs"]) == (VOCAB * D, 0)  # a lookup


def test_model_bits_counts_every_parameter_by_hand(transformer):
    problem, _ = transformer
    values = {v.name: 6 for v in problem.variables} | {"w:" + p: 3 for p in PROJ}
    got = problem.evaluate(values, ["model_bits", "weight_bits"])
    proj = LAYERS * 3 * D * D
    assert (QUANTIZED, FLOAT, proj) == (1136, 179, 384)  # the hand counts above, as numbers
    assert got["model_bits"] == proj * 3 + (QUANTIZED - proj) * 6 + FLOAT * 32
    assert got["weight_bits"] == proj * 3 + (QUANTIZED - proj) * 6
    assert problem.size_baselines("model_bits") == {
        "float": (QUANTIZED + FLOAT) * 32,
        "8-bit": QUANTIZED * 8 + FLOAT * 32,
    }


def test_the_run_names_float_parameters_of_at_least_one_percent(transformer):
    problem, _ = transformer
    # of 1315 parameters, in_proj_bias (24: 1.8 %) and linear1.bias (16: 1.2 %) of each layer; 8 is 0.6 %
    shares = problem.cost_model.float_shares()
    names = [f"encoder.layers.{i}.self_attn.in_proj_bias" for i in range(LAYERS)]
    names += [f"encoder.layers.{i}.linear1.bias" for i in range(LAYERS)]
    assert [n for n, _ in shares] == names
    assert shares[0][1] == pytest.approx(24 / (QUANTIZED + FLOAT))
    (note,) = problem.notes()
    assert "encoder.layers.0.self_attn.in_proj_bias 1.8 %" in note and "linear1.bias 1.2 %" in note


def test_params_null_leaves_the_projections_float_and_counted_at_32_bits():
    torch.manual_seed(0)
    model = TinyTransformer().eval()
    tokens = torch.randint(0, VOCAB, (32, TOKENS))
    cfg = _config(params=None)
    qmodel = build_quantized_model(cfg, model, tokens)
    problem = LayerwiseQuantizationProblem(qmodel, None, cfg, {}, qmodel.layer_stats(tokens[:2]), model)
    assert not any("in_proj" in v.name for v in problem.variables)
    values = {v.name: 4 for v in problem.variables}
    proj = LAYERS * 3 * D * D
    assert (
        problem.evaluate(values, ["model_bits"])["model_bits"] == (QUANTIZED - proj) * 4 + (FLOAT + proj) * 32
    )
    with pytest.raises(ConfigError, match="params"):
        _config(params="(")


def test_finetune_refuses_them_in_one_line(transformer):
    problem, _ = transformer
    with pytest.raises(
        DseError,
        match=r"^dse finetune: .*Linear layers only, not the quantized weight 'embed' \(and 4 more\)$",
    ):
        check_trainable(problem.qmodel)


def test_export_refuses_them_in_one_line(transformer):
    problem, _ = transformer
    pytest.importorskip("onnx")
    from problems.quantization.deployed import DeployedModel
    from problems.quantization.onnx_graph import build_onnx

    deployed = DeployedModel(problem.float_model, problem.qmodel)
    with pytest.raises(
        DseError, match=r"^export: .*Linear weights only, not the quantized weight 'embed' \(and 4 more\)$"
    ):
        build_onnx(deployed, (TOKENS,), CLASSES)


def test_conv_transpose_is_quantized_per_output_channel_along_dim_1():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(2, 4, 3, stride=2), nn.ReLU()).eval()
    x = torch.randn(8, 2, 5, 5)
    qm = QuantizedModel(model, act_types=(), quantize_input=False)
    qm.calibrate([x])
    q, w = qm.weight_quantizers["0"], qm.float_weight("0")  # weight: (in 2, out 4, 3, 3)
    assert q.axis == 1
    assert torch.equal(q.amax.flatten(), w.abs().amax(dim=(0, 2, 3)))  # one range per output channel
    # each input value meets all 4 x 3 x 3 weights of its channel: 2 x 5 x 5 inputs x 36
    assert qm.layer_stats(x[:1])["0"] == {"params": 72, "macs": 50 * 36, "act_input": None, "calls": 1}
    with torch.inference_mode():
        before = qm(x)
        qm.set_bits(weights={"0": 2})
        assert not torch.equal(before, qm(x))


class Tied(nn.Module):
    """An embedding and a head sharing one weight (vocab x d), as language models tie them."""

    def __init__(self, tie: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, D)
        self.head = nn.Linear(D, VOCAB, bias=False)
        if tie:
            self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x).mean(1))


def test_embedding_is_quantized_per_row_and_a_tied_weight_counted_once():
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (16, TOKENS))
    qm = QuantizedModel(Tied(tie=False), act_types=(), quantize_input=False)
    qm.calibrate([x])
    q, w = qm.weight_quantizers["emb"], qm.float_weight("emb")
    assert q.axis == 0 and torch.equal(q.amax.flatten(), w.abs().amax(dim=1))  # one range per token
    assert qm.parameter_counts() == ({"emb": VOCAB * D, "head": VOCAB * D}, {})
    tied = QuantizedModel(Tied(tie=True), act_types=(), quantize_input=False)
    assert list(tied.weight_quantizers) == ["head"]  # the Linear keeps its quantizer; no second one
    assert tied.parameter_counts() == ({"head": VOCAB * D}, {})
