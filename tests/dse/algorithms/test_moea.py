import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dse.core.objectives import Constraint, Objectives
from dse.core.registry import ALGORITHMS
from tests.dse.helpers import run_cli, write_config

STANDARD = ("config.yaml", "journal.jsonl", "evaluations.csv", "pareto.csv", "references.csv", "summary.json")
NUMBA = [  # numba compiles AGE-MOEA on first use (~3 s a process): not in the quick loop
    pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="pymoo needs numba for AGE-MOEA"),
    pytest.mark.slow,
]

MOEAS = [
    ("nsga3", {}),
    ("nsga3", {"n_partitions": 20}),  # more directions than pop_size: the population grows to 21
    ("smsemoa", {}),
    ("spea2", {}),
    ("rnsga2", {"ref_points": [[99.0, 400], [97.0, 300]]}),
    pytest.param("agemoea", {}, marks=NUMBA),
    pytest.param("agemoea2", {}, marks=NUMBA),
]


@pytest.mark.parametrize(("name", "options"), MOEAS)
def test_moea_runs_through_dse_run(tmp_path, capsys, name, options):
    path = write_config(tmp_path, algorithm={"name": name, "options": options, "pop_size": 12})
    assert run_cli("run", str(path), "--quiet", "--budget", "60") == 0
    run_dir = tmp_path / "results" / "toy" / f"{name}-s0"
    for f in STANDARD:
        assert (run_dir / f).is_file(), f
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluations"] == 60 and summary["hypervolume"] > 0
    evals = pd.read_csv(run_dir / "evaluations.csv")
    assert "local_search" in set(evals.label.fillna(""))  # neighbours of the front, told to pymoo
    genes = evals[["x0", "x1", "x2", "x3"]]
    assert genes.isin([2, 3, 4, 6, 8]).all().all() and not genes.duplicated().any()
    assert not evals.feasible.all()  # the constraint was in play


def test_moead_runs_unconstrained_and_refuses_constraints(tmp_path, capsys):
    free = write_config(
        tmp_path, constraints={"max_accuracy_drop": None}, algorithm={"name": "moead", "budget": 30}
    )
    assert run_cli("run", str(free), "--quiet") == 0
    assert json.loads((tmp_path / "results/toy/moead-s0/summary.json").read_text())["evaluations"] == 30
    bound = write_config(tmp_path, algorithm={"name": "moead", "budget": 30})
    assert run_cli("run", str(bound), "--quiet", "--fresh") == 2
    assert "constraints: moead (pymoo) supports no constraints" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "options", "named"),
    [
        ("nsga2", {"pop_sise": 10}, "algorithm.options.pop_sise: unknown option for NSGA2"),
        ("nsga2", {"seed": 3}, "algorithm.options.seed: set by dse from experiment.seed"),
        ("nsga2", {"local_search": 1}, "algorithm.options.local_search: a share of each generation in [0, 1"),
        ("spea2", {"local_search": "yes"}, "algorithm.options.local_search: a share of each generation"),
        ("smsemoa", {"eta": 3}, "algorithm.options.eta: unknown option for SMSEMOA"),
        ("nsga3", {"n_partitions": 0}, "algorithm.options.n_partitions: must be an integer >= 1"),
        ("rnsga2", {}, "algorithm.options.ref_points: rnsga2 needs a list of points"),
        ("rnsga2", {"ref_points": [99.0, 400]}, "algorithm.options.ref_points"),
        (
            "rnsga2",
            {"ref_points": [[99.0, 400, 1]]},
            "algorithm.options.ref_points: each point needs 2 values",
        ),
    ],
)
def test_bad_options_exit_2_naming_them(tmp_path, capsys, name, options, named):
    path = write_config(tmp_path, algorithm={"name": name, "options": options})
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert named in err and err.count("\n") == 0


def _ctx(senses=("max", "min")):
    return SimpleNamespace(
        pop_size=12,
        objectives=Objectives(("accuracy", "weight_bits"), senses),
        constraint=Constraint(95.0),
        log=lambda m: None,
    )


def test_rnsga2_reference_points_are_minimised_not_scaled():
    algo = ALGORITHMS.get("rnsga2")({"ref_points": [[99.0, 200000]], "epsilon": 0.01, "initial": "random"})
    built = algo.build(_ctx(), 2)
    assert np.array_equal(built.survival.ref_points, [[-99.0, 200000.0]]) and built.survival.epsilon == 0.01


def test_nsga3_population_covers_its_reference_directions():
    small = ALGORITHMS.get("nsga3")({"initial": "random"}).build(_ctx(), 2)
    assert len(small.ref_dirs) == 12 and small.pop_size == 12
    big = ALGORITHMS.get("nsga3")({"n_partitions": 20, "pop_size": 8, "initial": "random"}).build(_ctx(), 2)
    assert len(big.ref_dirs) == 21 and big.pop_size == 21
