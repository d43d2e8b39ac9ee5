import itertools

import pandas as pd
import pytest

from dse.core.config import parse_config
from dse.run.runner import run_experiment
from tests.dse.helpers import write_config


def run(tmp_path, name, budget=60, seed=0, out="run", options=None, **toy):
    cfg = parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy", "seed": seed},
            "toy": {"n_var": 4, **toy},
            "constraints": {"max_accuracy_drop": 5},
            "algorithm": {"name": name, "budget": budget, "pop_size": 12, "options": options or {}},
            "output": {"dir": str(tmp_path / out), "plots": False},
        }
    )
    return run_experiment(cfg, progress=False)


def true_front(n_var=4, choices=(2, 3, 4, 6, 8)):
    from tests.dse.toy import ToyProblem, ToySection

    p = ToyProblem(ToySection(n_var=n_var))
    pts = []
    for bits in itertools.product(choices, repeat=n_var):
        m = p.evaluate({f"x{i}": b for i, b in enumerate(bits)})
        if m["accuracy"] >= 95:
            pts.append((m["weight_bits"], m["accuracy"]))
    return {(s, a) for s, a in pts if not any(s2 <= s and a2 >= a and (s2, a2) != (s, a) for s2, a2 in pts)}


@pytest.mark.slow
def test_nsga2_finds_most_of_the_true_front_of_a_small_space(tmp_path):
    res = run(tmp_path, "nsga2", budget=250)  # 625 configurations in all
    found = {(r.weight_bits, r.accuracy) for r in pd.read_csv(res.run_dir / "pareto.csv").itertuples()}
    truth = true_front()
    hits = sum(any(abs(s - ts) < 1e-9 and abs(a - ta) < 1e-9 for s, a in found) for ts, ta in truth)
    assert hits >= 0.7 * len(truth)
    seeds_differ = run(tmp_path, "nsga2", budget=30, seed=1, out="s1").evaluations
    assert [e.values for e in seeds_differ] != [e.values for e in res.evaluations[:30]]


def test_moea_needs_two_objectives(tmp_path):
    from dse.cli import main

    path = write_config(tmp_path, objectives=["accuracy"])
    assert main(["run", str(path), "--quiet"]) == 2


def test_moea_first_population_holds_the_uniform_configurations(tmp_path):
    # pop_size 12: the first generation only (initial: sensitivity is tested in test_seeding.py)
    res = run(tmp_path, "nsga2", budget=12, options={"initial": "uniform"})
    firsts = [tuple(e.values.values()) for e in res.evaluations]
    for bits in (2, 3, 4, 6, 8):
        assert (bits,) * 4 in firsts


def test_initial_option_is_checked(tmp_path):
    from dse.cli import main

    path = write_config(tmp_path, algorithm={"name": "nsga2", "options": {"initial": "best"}})
    assert main(["run", str(path), "--quiet"]) == 2
