"""An algorithm outside dse, named by import path in `algorithm.name` / `compare.algorithms`."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from dse.algorithms.base import Algorithm, SearchContext
from tests.dse.helpers import run_cli, write_config

HERE = "tests.dse.algorithms.test_out_of_tree"


class LowestFirst(Algorithm):
    """Not registered anywhere: every variable at its lowest choice but one, one variable at a time."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        step: int = 1

    def _run(self, ctx: SearchContext) -> None:
        genome = ctx.space.lowest()
        for i in range(ctx.space.n_var):
            for k in range(0, int(ctx.space.upper[i]) + 1, self.options.step):
                g = list(genome)
                g[i] = k
                ctx.evaluator.evaluate([g])


class NotAnAlgorithm:
    pass


def test_an_out_of_tree_algorithm_runs_in_a_safe_folder(tmp_path, capsys):
    name = f"{HERE}:LowestFirst"
    path = write_config(tmp_path, algorithm={"name": name, "budget": 12, "options": {"step": 1}})
    assert run_cli("run", str(path), "--quiet") == 0
    run_dir = tmp_path / "results" / "toy" / f"{HERE}-LowestFirst-s0"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algorithm"] == name and summary["evaluations"] == 12
    assert len(pd.read_csv(run_dir / "evaluations.csv")) == 12
    assert run_cli("validate", str(path)) == 0  # validate resolves it the same way
    assert f"{HERE}-LowestFirst-s0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (f"{HERE}:NotAnAlgorithm", "is not a search algorithm (a subclass of dse.algorithms.base.Algorithm)"),
        (f"{HERE}:run_cli", "is not a search algorithm"),
        (f"{HERE}:Missing", f"algorithm '{HERE}:Missing': '{HERE}' has no attribute 'Missing'"),
        ("no_such_pkg.algos:Thing", "algorithm 'no_such_pkg.algos:Thing': cannot import 'no_such_pkg.algos'"),
    ],
)
def test_a_bad_import_path_is_one_line_exit_2_writing_nothing(tmp_path, capsys, name, words):
    path = write_config(tmp_path)
    assert run_cli("run", str(path), "--quiet", "--algorithm", name) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: algorithm.name: ") and words in err and err.count("\n") == 0
    assert not (tmp_path / "results").exists()


def test_its_options_are_checked_like_a_built_in_one(tmp_path, capsys):
    path = write_config(tmp_path, algorithm={"name": f"{HERE}:LowestFirst", "options": {"stpe": 2}})
    assert run_cli("run", str(path), "--quiet") == 2
    assert "algorithm.options.stpe: unknown option" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_accepts_import_paths(tmp_path, capsys):
    name = f"{HERE}:LowestFirst"
    path = write_config(tmp_path, compare={"algorithms": ["random", name], "seeds": [0], "budget": 10})
    assert run_cli("compare", str(path), "--quiet") == 0
    runs = tmp_path / "results" / "toy" / "compare" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["random-s0", f"{HERE}-LowestFirst-s0"]
    table = pd.read_csv(tmp_path / "results" / "toy" / "compare" / "comparison.csv")
    assert name in set(table["algorithm"])
    bad = write_config(tmp_path, compare={"algorithms": ["random", f"{HERE}:NotAnAlgorithm"]})
    assert run_cli("compare", str(bad), "--quiet", "--fresh") == 2
    assert "compare.algorithms: 'tests.dse" in capsys.readouterr().err
