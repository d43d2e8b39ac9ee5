"""plot, evaluate, pick, report on run folders, and the held-out re-evaluation after `dse run`."""

import base64
import json
import re
import shutil

import pandas as pd
import pytest

from dse.core.errors import DseError
from dse.core.problem import Problem, Variable
from tests.dse.helpers import run_cli, write_config

pytestmark = pytest.mark.slow  # end-to-end: runs the CLI / trains a model

SENS = [0.5 / (i + 1) for i in range(4)]


def toy_test_accuracy(bits):
    return 99.0 - 110.0 * sum(s * 2.0 ** (-b) for s, b in zip(SENS, bits))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    path = write_config(tmp, output={"plots": True})
    assert run_cli("run", str(path), "--quiet", "--budget", "40") == 0
    return tmp / "results" / "toy" / "nsga2-s0"


@pytest.fixture
def run_copy(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def test_run_re_evaluates_its_front_on_the_held_out_split(run_dir):
    front = pd.read_csv(run_dir / "pareto.csv")
    held = pd.read_csv(run_dir / "pareto_test.csv")
    assert sorted(held.eval_id) == sorted(front.eval_id)
    assert held.weight_bits.is_monotonic_increasing
    for r in held.itertuples():
        assert r.test_accuracy == pytest.approx(toy_test_accuracy([r.x0, r.x1, r.x2, r.x3]))
    meta = json.loads((run_dir / "heldout.json").read_text())
    assert meta["split"] == "test" and meta["baseline"] == {"test_accuracy": 99.0}
    for name in ("pareto.png", "pareto_test.png", "hv_curve.png", "heatmap.png", "parallel.png"):
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG"), name


def test_evaluate_rebuilds_the_problem_and_rewrites_pareto_test(run_copy, capsys):
    before = pd.read_csv(run_copy / "pareto_test.csv")
    (run_copy / "pareto_test.csv").unlink()
    (run_copy / "pareto_test.png").unlink()
    assert run_cli("evaluate", str(run_copy), "--split", "test", "--quiet") == 0
    after = pd.read_csv(run_copy / "pareto_test.csv")
    pd.testing.assert_frame_equal(before, after)
    assert (run_copy / "pareto_test.png").is_file()
    assert "test_accuracy" in capsys.readouterr().out


def test_evaluate_refuses_a_config_that_builds_another_problem(run_copy, capsys):
    cfg = run_copy / "config.yaml"
    cfg.write_text(cfg.read_text().replace("n_var: 4", "n_var: 3"))
    assert run_cli("evaluate", str(run_copy), "--quiet") == 2
    err = capsys.readouterr().err
    assert "rebuilt problem differs" in err and "fingerprint.variables" in err


def test_problems_without_a_held_out_split_say_so():
    class P(Problem):
        variables = [Variable("a", (1, 2))]

        @classmethod
        def from_config(cls, cfg, progress=True):
            return cls()

        def _evaluate(self, values, metrics):
            return {}

    with pytest.raises(DseError, match="problem has no held-out split"):
        P().evaluate_held_out({"a": 1})


def test_plot_regenerates_every_plot_from_the_files(run_copy, capsys):
    pngs = sorted(p.name for p in run_copy.glob("*.png"))
    for p in run_copy.glob("*.png"):
        p.unlink()
    assert run_cli("plot", str(run_copy)) == 0
    assert sorted(p.name for p in run_copy.glob("*.png")) == pngs
    assert len(pngs) == 5


def test_pick_smallest_within_the_drop(run_copy, capsys):
    assert run_cli("pick", str(run_copy), "--max-drop", "2") == 0
    out = capsys.readouterr().out
    front = pd.read_csv(run_copy / "pareto.csv")
    ok = front[front.accuracy >= 100.0 - 2]
    best = ok.sort_values(["weight_bits", "accuracy"], ascending=[True, False]).iloc[0]
    mpq = json.loads((run_copy / "mpq.json").read_text())
    assert mpq["format"] == "dse-mpq/2"
    assert mpq["source"]["eval_id"] == best.eval_id
    assert mpq["bits"] == {f"x{i}": int(best[f"x{i}"]) for i in range(4)}
    assert {layer["name"]: layer["bits"] for layer in mpq["layers"]} == mpq["bits"]
    assert mpq["pick"]["validation"]["weight_bits"] == best.weight_bits
    bits = [mpq["bits"][f"x{i}"] for i in range(4)]
    assert mpq["pick"]["held_out"]["test_accuracy"] == pytest.approx(toy_test_accuracy(bits))
    assert f"eval {best.eval_id}:" in out and "test_accuracy=" in out
    # toy weight_bits: 100 weights, float 3200 bits, 8-bit 800 bits; bytes = bits / 8
    w = best.weight_bits
    assert f"weight_bits={w:.6g} ({w / 8:.4g} B, {3200 / w:.1f}x vs float, {800 / w:.1f}x vs 8-bit)" in out


def test_pick_most_accurate_within_a_size(run_copy, capsys):
    front = pd.read_csv(run_copy / "pareto.csv")
    limit = float(front.weight_bits.median())
    assert run_cli("pick", str(run_copy), "--max-size", str(limit), "--out", str(run_copy / "x.json")) == 0
    best = front[front.weight_bits <= limit].sort_values("accuracy").iloc[-1]
    assert json.loads((run_copy / "x.json").read_text())["source"]["eval_id"] == best.eval_id


def test_pick_errors(run_copy, capsys):
    assert run_cli("pick", str(run_copy)) == 2
    assert "--max-drop" in capsys.readouterr().err
    assert run_cli("pick", str(run_copy), "--max-size", "1") == 2
    assert "no Pareto configuration" in capsys.readouterr().err
    assert not (run_copy / "mpq.json").exists() and not (run_copy / "mpq-pick.json").exists()


def test_run_report_is_one_self_contained_file(run_copy):
    assert run_cli("report", str(run_copy)) == 0
    page = (run_copy / "report.html").read_text()
    images = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(images) == 5 and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # no external assets
    assert (
        "Pareto front" in page and "test_accuracy" in page and "pymoo" in page and "max_accuracy_drop" in page
    )
    # sizes beside the raw bits: uniform-8 is 800 bits = 100 B, 4.0x smaller than float, 1.0x vs 8-bit
    assert "<th>weight_bits size</th>" in page and "<th>weight_bits vs float</th>" in page
    assert "<td>uniform-8</td>" in page
    row = page.split("<td>uniform-8</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>100 B</td>" in row and "<td>4.0x</td>" in row and "<td>1.0x</td>" in row
    assert "float 400 B, 8-bit 100 B" in page


def test_compare_report(tmp_path):
    path = write_config(tmp_path, compare={"algorithms": ["nsga2", "random"], "seeds": [0], "budget": 15})
    out = tmp_path / "cmp"
    assert run_cli("compare", str(path), "--quiet", "--out", str(out)) == 0
    assert run_cli("report", str(out)) == 0
    page = (out / "report.html").read_text()
    assert len(re.findall(r"<img [^>]*src='data:image/png;base64,", page)) == 4
    assert "hypervolume" in page and "nsga2" in page and "random" in page
    (out / "comparison_summary.csv").write_text('"unterminated\n')
    assert run_cli("report", str(out)) == 2


@pytest.mark.parametrize("command", ["plot", "report", "evaluate", "pick"])
@pytest.mark.parametrize(
    "damage, named",
    [
        ("no-folder", "nowhere: not found"),
        ("no-summary", "summary.json: not found"),
        ("bad-summary", "summary.json: corrupt"),
        ("no-journal", "journal.jsonl: not found"),
        ("bad-journal", "journal.jsonl: line 2 is corrupt"),
        ("no-config", "config.yaml: not found"),
        ("bad-config", "config.yaml: corrupt"),
    ],
)
def test_missing_or_corrupt_files_give_one_line_naming_the_file(run_copy, capsys, command, damage, named):
    target = run_copy
    if damage == "no-folder":
        target = run_copy / "nowhere"
    elif damage.startswith("no-"):
        (
            run_copy
            / {"summary": "summary.json", "journal": "journal.jsonl", "config": "config.yaml"}[damage[3:]]
        ).unlink()
    elif damage == "bad-summary":
        (run_copy / "summary.json").write_text('{"algorithm": "nsga2",')
    elif damage == "bad-journal":
        lines = (run_copy / "journal.jsonl").read_text().splitlines(keepends=True)
        (run_copy / "journal.jsonl").write_text(lines[0] + "{oops\n" + "".join(lines[2:]))
    elif damage == "bad-config":
        (run_copy / "config.yaml").write_text("experiment: [unclosed\n")
    args = [command, str(target)] + (["--max-drop", "1"] if command == "pick" else [])
    args += ["--quiet"] if command == "evaluate" else []
    assert run_cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0 and named in err, err


def test_pick_names_a_corrupt_pareto_test_csv(run_copy, capsys):
    (run_copy / "pareto_test.csv").write_text("")
    assert run_cli("pick", str(run_copy), "--max-drop", "5") == 2
    assert "pareto_test.csv: corrupt" in capsys.readouterr().err


def test_single_objective_runs_plot_compare_pick_and_report(tmp_path, capsys):
    path = write_config(tmp_path, objectives=["weight_bits"], algorithm={"name": "random", "budget": 25})
    assert run_cli("run", str(path), "--quiet") == 0
    run = tmp_path / "results" / "toy" / "random-s0"
    held = pd.read_csv(run / "pareto_test.csv")
    assert len(held) == 1 and {"weight_bits", "accuracy", "test_accuracy"} <= set(held.columns)
    assert run_cli("plot", str(run)) == 0
    assert (run / "pareto_test.png").is_file()
    assert run_cli("compare", str(run), "--out", str(tmp_path / "c")) == 0
    assert run_cli("pick", str(run), "--max-drop", "5") == 0
    assert run_cli("report", str(run)) == 0
