import json
import sys

import pandas as pd
import pytest
import yaml

from dse.compare.comparison import COLUMNS
from dse.compare.runs import resolve_algorithms
from dse.core.registry import ALGORITHMS
from dse.run.journal import load_evaluations
from tests.dse.helpers import run_cli, write_config

pytestmark = pytest.mark.slow  # end-to-end: runs the CLI / trains a model


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One compare of nsga2 and random over two seeds on the toy problem (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("compare")
    calls = tmp / "calls.log"
    path = write_config(
        tmp,
        toy={"calls_log": str(calls)},
        compare={"algorithms": ["nsga2", "random"], "seeds": [0, 1], "budget": 30},
    )
    assert run_cli("compare", str(path), "--quiet") == 0
    return tmp, tmp / "results" / "toy" / "compare", calls


def test_compare_writes_the_compare_folder(compared, capsys):
    _, out, _ = compared
    for name in ("config.yaml", "reference.json", "comparison.csv", "comparison_summary.csv", "fronts.png",
                 "hv_curve.png", "heatmap.png", "parallel.png"):  # fmt: skip
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns[:8]) == COLUMNS[:8]
    assert sorted(zip(table.algorithm, table.seed)) == [
        ("nsga2", 0),
        ("nsga2", 1),
        ("random", 0),
        ("random", 1),
    ]
    assert (table.evaluations == 30).all()
    assert yaml.safe_load((out / "config.yaml").read_text())["compare"]["seeds"] == [0, 1]
    summary = pd.read_csv(out / "comparison_summary.csv")
    assert summary.algorithm.tolist() == ["nsga2", "random"]
    nsga2 = table[table.algorithm == "nsga2"].hypervolume
    assert summary.hypervolume_mean[0] == pytest.approx(nsga2.mean())
    assert summary.hypervolume_std[0] == pytest.approx(nsga2.std(ddof=1))


def test_every_run_shares_one_normalisation_and_hv_matches_the_run(compared):
    _, out, _ = compared
    ref = json.loads((out / "reference.json").read_text())
    table = pd.read_csv(out / "comparison.csv")
    for row in table.itertuples():
        summary = json.loads((out / "runs" / row.run / "summary.json").read_text())
        assert summary["normalization"] == ref["normalization"]
        assert summary["hypervolume"] == pytest.approx(row.hypervolume)
        assert summary["algorithm"] == row.algorithm and summary["seed"] == row.seed
    assert ref["target"]["metric"] == "weight_bits"
    assert ref["target"]["value"] == pytest.approx(table.best_feasible_size.min() * 1.05)
    assert "union" in ref["reference_front"]["source"]


def test_the_shared_memo_runs_each_configuration_once_and_journals_stay_complete(compared):
    _, out, calls = compared
    distinct = set()
    for run in sorted((out / "runs").iterdir()):
        evals = load_evaluations(run)
        search = sorted(e.eval_id for e in evals if e.kind == "search")
        assert search == list(range(30))  # every run keeps its own complete journal
        distinct |= {tuple(e.values.values()) for e in evals}
    lines = calls.read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(distinct)
    table = pd.read_csv(out / "comparison.csv")
    # the first run shares only with its own reference points (uniform genomes seed the MOEAs);
    # the runs after it reuse the first run's configurations too
    assert table.shared_evaluations.iloc[1:].min() > table.shared_evaluations.iloc[0]


def test_compare_finished_runs_gives_the_same_numbers(compared):
    tmp, out, _ = compared
    runs = sorted(str(p) for p in (out / "runs").iterdir())
    again = tmp / "again"
    assert run_cli("compare", *runs, "--out", str(again)) == 0
    a = pd.read_csv(out / "comparison.csv").set_index("run")
    b = pd.read_csv(again / "comparison.csv").set_index("run").loc[a.index]
    for col in ("hypervolume", "igd", "igd_plus", "evals_to_target", "best_feasible_size"):
        assert b[col].tolist() == pytest.approx(a[col].tolist(), nan_ok=True), col
    assert (
        json.loads((again / "reference.json").read_text())["normalization"]
        == json.loads((out / "reference.json").read_text())["normalization"]
    )


def test_compare_refuses_runs_of_different_problems(compared, tmp_path, capsys):
    _, out, _ = compared
    other = write_config(tmp_path, toy={"n_var": 3}, algorithm={"budget": 10})
    assert run_cli("run", str(other), "--quiet") == 0
    capsys.readouterr()
    code = run_cli(
        "compare",
        str(out / "runs" / "nsga2-s0"),
        str(tmp_path / "results/toy/nsga2-s0"),
        "--out",
        str(tmp_path / "c"),
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "not comparable" in err and "fingerprint.variables" in err


def test_compare_input_errors(tmp_path, capsys):
    assert run_cli("compare", str(tmp_path / "nope.yaml")) == 2
    assert "nope.yaml: not found" in capsys.readouterr().err
    assert run_cli("compare", str(tmp_path)) == 2  # a folder without --out
    assert "--out" in capsys.readouterr().err
    path = write_config(tmp_path, compare={"algorithms": ["nsga2", "nope"]})
    assert run_cli("compare", str(path), "--quiet") == 2
    assert "compare.algorithms: unknown algorithm 'nope'" in capsys.readouterr().err


def test_widening_a_comparison_reuses_its_finished_runs(tmp_path):
    path = write_config(tmp_path, compare={"algorithms": ["random"], "seeds": [0], "budget": 10})
    assert run_cli("compare", str(path), "--quiet") == 0
    assert (
        run_cli("compare", str(path), "--quiet", "--seeds", "0", "1", "--algorithms", "random", "nsga2") == 0
    )
    out = tmp_path / "results" / "toy" / "compare"
    replayed = json.loads((out / "runs" / "random-s0" / "summary.json").read_text())["replayed_from_journal"]
    assert replayed == 10
    assert len(pd.read_csv(out / "comparison.csv")) == 4


def test_compare_options_reach_their_algorithm_and_strays_are_refused(tmp_path, capsys):
    path = write_config(
        tmp_path,
        compare={
            "algorithms": ["nsga2", "random"],
            "seeds": [0],
            "budget": 12,
            "options": {"nsga2": {"initial": "random"}},
        },
    )
    out = tmp_path / "cmp"
    assert run_cli("compare", str(path), "--quiet", "--out", str(out)) == 0
    saved = (out / "runs" / "nsga2-s0" / "config.yaml").read_text()
    assert "initial: random" in saved
    bad = write_config(tmp_path, compare={"algorithms": ["nsga2"], "options": {"nsga3": {}}})
    assert run_cli("compare", str(bad), "--quiet", "--out", str(tmp_path / "cmp2")) == 2
    assert "compare.options.nsga3" in capsys.readouterr().err


def test_all_expands_to_every_registered_algorithm():
    names = ALGORITHMS.names()
    assert len(names) > 5 and resolve_algorithms(["all"]) == names
    # listed ones keep their place, 'all' adds the rest once each
    assert resolve_algorithms(["random", "all", "nsga2"]) == ["random", *[n for n in names if n != "random"]]


def test_compare_all_runs_every_algorithm_or_says_why_not(tmp_path, capsys, monkeypatch):
    # without numba agemoea / agemoea2 are refused at once (their JIT compile would take seconds)
    monkeypatch.setitem(sys.modules, "numba", None)
    path = write_config(tmp_path, compare={"algorithms": ["all"], "seeds": [0], "budget": 12})
    assert run_cli("compare", str(path), "--quiet") == 0
    out = tmp_path / "results" / "toy" / "compare"
    skipped = {s["algorithm"]: s["reason"] for s in json.loads((out / "skipped.json").read_text())}
    # the ones that cannot run on this setting (a constraint, no reference points, no numba)
    assert sorted(skipped) == ["agemoea", "agemoea2", "moead", "rnsga2"]
    assert "supports no constraints" in skipped["moead"] and "ref_points" in skipped["rnsga2"]
    assert all("needs numba" in skipped[n] for n in ("agemoea", "agemoea2"))
    # every other registered algorithm ran once, in registry order, within the budget
    table = pd.read_csv(out / "comparison.csv")
    assert table.algorithm.tolist() == [n for n in ALGORITHMS.names() if n not in skipped]
    assert (table.seed == 0).all() and table.evaluations.between(1, 12).all()
    assert sorted(p.name for p in (out / "runs").iterdir() if (p / "summary.json").is_file()) == [
        f"{n}-s0" for n in table.algorithm
    ]
