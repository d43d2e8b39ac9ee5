"""QDQ ONNX export checked in ONNX Runtime (runs where onnxruntime is installed)."""

import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.slow  # trains a small baseline (shared with test_deployed)


def test_onnx_runtime_agrees_with_the_fake_quantized_model(deploy_problem, tmp_path):
    problem = deploy_problem
    # weights at 3, 4 and 8 bits in turn (int4 and int8 storage); activations at 8 bits, the model's
    # output at 3 (a Clip on the integers; input and output are signed narrow-range: Clip in int8 too)
    values = {
        v.name: [3, 4, 8][i % 3] if v.name.startswith("w:") else 8 for i, v in enumerate(problem.variables)
    }
    values["a:fc"] = 3
    check = problem.export_onnx(values, tmp_path / "m.onnx")
    assert check["agreement"] >= 99.0  # a weak small model: near-tie logits (the resnet run: 100 %)
    assert abs(check["torch_accuracy"] - check["onnxruntime_accuracy"]) <= 0.6
    assert check["torch_accuracy"] == pytest.approx(problem.evaluate_held_out(values)["test_accuracy"])
    model = onnx.load(tmp_path / "m.onnx")
    ops = [n.op_type for n in model.graph.node]
    bits = problem.unit_bits(values)
    acts = [u for u in bits if u.startswith("a:")]
    assert ops.count("QuantizeLinear") == len(acts)
    narrow = [u for u in acts if bits[u] < 8]  # 3 bits in int4/uint4, plus signed narrow-range int8
    assert ops.count("Clip") >= len(narrow) > 0
    weights = {t.name: t for t in model.graph.initializer if t.name.endswith("_weight_int")}
    int4 = onnx.TensorProto.INT4
    for unit, b in bits.items():
        if unit.startswith("w:"):
            t = weights[unit[2:].replace(".", "_") + "_weight_int"]
            assert (t.data_type == int4) == (b <= 4), unit


def test_export_refuses_what_it_cannot_translate(deploy_problem, tmp_path):
    from dse.core.errors import DseError

    with pytest.raises(DseError, match="no ONNX translation|cannot be traced"):
        import torch

        layer = deploy_problem.float_model.layer1[0]
        old = layer.relu2
        layer.relu2 = torch.nn.GELU()  # an op the builder lacks (and no quantizer changes)
        try:
            from problems.quantization.deployed import DeployedModel
            from problems.quantization.onnx_graph import build_onnx

            d = DeployedModel(deploy_problem.float_model, deploy_problem.qmodel)
            build_onnx(d, tuple(deploy_problem.engine.splits.input_shape), 10)
        finally:
            layer.relu2 = old


def test_formats_without_an_integer_grid_are_stored_dequantized(deploy_problem, tmp_path):
    from tests.problems.quantization.deploy_problem import small_problem

    root = deploy_problem.cfg.output.root  # the same baseline
    search = {"weights": {"choices": [2, 3, 4, 8]}, "formats": ["affine", "lq", "log2"]}
    problem = small_problem(root, search_space=search)
    weights = [v.name for v in problem.variables if v.name.startswith("w:")]
    formats = {f"f:{w[2:]}": i % 3 for i, w in enumerate(weights)}  # affine, lq, log2 in turn
    values = {**dict.fromkeys(weights, 4), **formats}
    check = problem.export_onnx(values, tmp_path / "m.onnx")
    assert check["agreement"] >= 99.0
    assert check["torch_accuracy"] == pytest.approx(problem.evaluate_held_out(values)["test_accuracy"])
    names = {t.name for t in onnx.load(tmp_path / "m.onnx").graph.initializer}
    for w in weights:
        base = w[2:].replace(".", "_") + "_weight"
        grid = formats["f:" + w[2:]] == 0
        assert (base + "_int" in names) == grid and (base + "_dequantized" in names) == (not grid), w
