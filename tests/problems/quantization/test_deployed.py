"""The deployable model and QAT: one quantized function for search, fine-tuning and export."""

import copy

import pytest
import torch

from dse.core.errors import DseError
from problems.quantization.deployed import DeployedModel
from problems.quantization.deployment import baseline_file
from problems.quantization.finetune import measure
from problems.quantization.qat import QATModel
from tests.mpq_schema import validate_mpq

pytestmark = pytest.mark.slow  # trains a small baseline, then fine-tunes it


@pytest.fixture
def problem(deploy_problem):
    return deploy_problem


def mixed(problem, low: int = 2) -> dict[str, int]:
    """Every other variable at its lowest choice, the rest at their highest."""
    return {v.name: v.choices[0] if i % 2 else v.choices[-1] for i, v in enumerate(problem.variables)}


def test_deployed_run_weights_reproduce_the_searched_accuracy(problem):
    for values in (mixed(problem), {v.name: v.choices[0] for v in problem.variables}):
        searched = problem.evaluate(values, ["accuracy"])["accuracy"]
        assert measure(problem, values, problem.float_model)["val_accuracy"] == searched


def test_qat_forward_is_the_folded_deployed_model(problem):
    """Trained a few steps (BatchNorm in training mode), the QAT model in eval mode computes what the
    folded, quantized deployment of its float weights computes."""
    values = mixed(problem)
    problem.apply(problem.unit_bits(values))
    qat = QATModel(problem.float_model, problem.qmodel, recalibrate_every=2)
    opt = torch.optim.SGD(qat.parameters(), lr=0.05)
    x, y = problem.engine.splits.train.x[:64], problem.engine.splits.train.y[:64]
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(qat(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    qat.eval()
    model = copy.deepcopy(problem.float_model)  # same architecture, the trained weights
    model.load_state_dict(qat.float_state())
    x = problem.engine.splits.val.x[:128]
    with torch.no_grad():
        a, b = qat(x), DeployedModel(model, problem.qmodel)(x)
    assert (a.argmax(1) == b.argmax(1)).float().mean() >= 0.99
    assert torch.allclose(a, b, atol=1e-3 * float(a.abs().max()))  # eval recalibrated the ranges
    assert qat.steps == 3 and any(p.grad is not None for p in qat.parameters())


def test_finetune_recovers_and_writes_a_weights_only_state_dict(problem, tmp_path):
    # every weight at 2 bits, activations at 8
    values = {v.name: v.choices[0] if v.name.startswith("w:") else v.choices[-1] for v in problem.variables}
    record = problem.finetune(values, tmp_path, {"epochs": 6})
    assert record["after"]["val_accuracy"] > record["before"]["val_accuracy"] + 10, record
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(state) == set(problem.float_model.state_dict())
    assert record["weight_bits"] == problem.evaluate(values, ["weight_bits"])["weight_bits"]
    assert record["weight_bytes"] == record["weight_bits"] / 8
    reloaded = copy.deepcopy(problem.float_model)
    reloaded.load_state_dict(state)
    assert measure(problem, values, reloaded) == record["after"]  # model.pt + the run's config suffice
    history, kept = record["training"]["val_accuracy_by_epoch"], record["training"]["kept_epoch"]
    assert len(history) == 7 and history[0] == record["before"]["val_accuracy"]  # epoch 0: PTQ
    assert record["after"]["val_accuracy"] == history[kept] == max(history)
    doc = problem.describe_quantizers(values, tmp_path / "model.pt")
    assert doc["checkpoint"] == str(tmp_path / "model.pt")


def test_finetune_keeps_the_ptq_weights_when_training_only_hurts(problem, tmp_path):
    """Best-epoch selection counts the starting weights as epoch 0: a tuner that ruins the weights
    leaves model.pt at the float weights and the accuracy at PTQ's."""
    problem.cfg.finetune.tuner = "tests.problems.quantization.test_deployed:ruining_tuner"
    try:
        record = problem.finetune(mixed(problem), tmp_path, {"epochs": 1})
    finally:
        problem.cfg.finetune.tuner = None
    assert record["after"] == record["before"] and record["training"]["kept_epoch"] == 0
    assert record["training"]["val_accuracy_by_epoch"][1] < record["before"]["val_accuracy"]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v.cpu()) for k, v in problem.float_model.state_dict().items())


def test_finetune_is_seeded_and_ignores_the_tuned_memory_format(problem, tmp_path):
    """The same seed gives the same weights, whichever memory format evaluations were tuned to; another
    seed gives others."""
    values = {v.name: v.choices[0] if v.name.startswith("w:") else v.choices[-1] for v in problem.variables}
    states = []
    original = problem.float_model
    for i, (fmt, seed) in enumerate(((torch.contiguous_format, 0), (torch.channels_last, 0), (None, 1))):
        if fmt is not None:
            problem.float_model = copy.deepcopy(original).to(memory_format=fmt)
        try:
            record = problem.finetune(values, tmp_path / str(i), {"epochs": 1, "seed": seed})
        finally:
            problem.float_model = original
        assert record["training"]["seed"] == seed and record["training"]["kept_epoch"] == 1  # trained
        states.append(torch.load(tmp_path / str(i) / "model.pt", weights_only=True))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def ruining_tuner(model, splits, options):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=torch.Generator().manual_seed(0))


TUNER_CALLS: list = []


def recording_tuner(model, splits, options):
    TUNER_CALLS.append((type(model).__name__, len(splits.train), options["epochs"]))


def test_the_tuner_hook_replaces_the_built_in_loop(problem, tmp_path):
    problem.cfg.finetune.tuner = "tests.problems.quantization.test_deployed:recording_tuner"
    try:
        values = mixed(problem)
        record = problem.finetune(values, tmp_path, {"epochs": 3})
    finally:
        problem.cfg.finetune.tuner = None
    assert TUNER_CALLS == [("QATModel", len(problem.engine.splits.train), 3)]
    assert record["after"] == record["before"]  # the tuner trained nothing
    assert record["training"]["tuner"].endswith(":recording_tuner")


def test_mpq_layers_state_each_quantizers_grid(problem):
    values = mixed(problem)
    doc = problem.describe_quantizers(values)
    full = validate_mpq(
        {
            **doc,
            "format": "dse-mpq/2",
            "bits": values,
            "source": {"run_dir": "x", "eval_id": 1},
            "pick": {"rule": {}, "validation": {}, "held_out": None, "baseline": {}},
        }
    )
    layers = {x["name"]: x for x in full["layers"]}
    assert set(layers) == set(problem.unit_bits(values))
    conv = layers["w:conv1"]
    assert conv["granularity"] == "channel" and conv["axis"] == 0 and conv["tensor"] == "weight"
    qmax = 2 ** (conv["bits"] - 1) - 1
    assert [s * qmax for s in conv["scale"]] == pytest.approx(conv["amax"])
    assert layers["a:input"]["tensor"] == "input" and layers["a:input"]["granularity"] == "layer"
    assert conv["variable"] == "w:conv1" and conv["dtype"] == f"int{values['w:conv1']}"


def test_rebuilding_needs_the_baseline_the_run_used(problem, tmp_path):
    cfg = problem.cfg.model_copy(deep=True)
    assert baseline_file(cfg).is_file()
    type(problem).check_rebuild(cfg)
    cfg.output.root = tmp_path  # the cached baseline is not there
    with pytest.raises(DseError, match="cached baseline.*is gone"):
        type(problem).check_rebuild(cfg)
