"""`dse finetune` / `dse export`: bad input gets one line on stderr and exit 2, with nothing written."""

import pytest

from tests.dse.helpers import run_cli
from tests.dse.runs import run_toy


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    return run_toy(tmp_path_factory.mktemp("deploy"), "nsga2", budget=30).run_dir


@pytest.mark.parametrize("command", [["finetune"], ["export", "--onnx", "x.onnx"]])
def test_bad_input_is_one_line_and_exit_2(toy_run, tmp_path, capsys, command):
    cases = [
        ([str(tmp_path / "missing"), "--eval-id", "1"], "not found (expected a run folder)"),
        ([str(toy_run), "--eval-id", "9999"], "--eval-id: "),
        ([str(toy_run), "--reference", "3-bit"], "--reference: "),
        (
            [str(toy_run), "--eval-id", "1"],
            f"ToyProblem cannot {'fine-tune' if command[0] == 'finetune' else 'export'}",
        ),
    ]
    for args, message in cases:
        assert run_cli(command[0], *args, *command[1:], "--quiet") == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (toy_run / "finetune").exists() and not (tmp_path / "x.onnx").exists()
