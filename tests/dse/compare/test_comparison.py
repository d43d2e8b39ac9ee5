import math

import numpy as np
import pytest

from dse.compare.comparison import check_comparable, compare, first_difference, summarise
from dse.core.errors import DseError
from tests.dse.rundata_fixtures import NORM, E, run_data


def two_runs():
    a = run_data("a-s0", "a", 0, [E(0, 95, 50), E(1, 99, 80), E(2, 94, 60)])
    b = run_data("b-s0", "b", 0, [E(0, 92, 30), E(1, 96, 90, feasible=False), E(2, 97, 45)])
    return a, b


def test_compare_numbers_on_hand_made_runs():
    a, b = two_runs()
    c = compare([a, b])
    t = c.table.set_index("run")
    # a: (0.5, 0.5), (0.1, 0.8) -> 0.48; b: (0.8, 0.3), (0.3, 0.45) -> 0.8*0.3? computed by hand below
    assert t.loc["a-s0", "hypervolume"] == pytest.approx(0.48)
    hv_b = 0.3 * (1.1 - 0.3) + (0.8 - 0.3) * (1.1 - 0.45)  # boxes of (0.8, 0.3) and (0.3, 0.45)
    assert t.loc["b-s0", "hypervolume"] == pytest.approx(hv_b)
    # reference front = union: (0.1, 0.8), (0.3, 0.45), (0.8, 0.3); (0.5, 0.5) is dominated by (0.3, 0.45)
    assert sorted(map(tuple, np.round(c.reference_front, 9).tolist())) == [
        (0.1, 0.8),
        (0.3, 0.45),
        (0.8, 0.3),
    ]
    d_a = (0 + math.dist((0.3, 0.45), (0.5, 0.5)) + math.dist((0.8, 0.3), (0.5, 0.5))) / 3
    assert t.loc["a-s0", "igd"] == pytest.approx(d_a)
    # best sizes 50 (a) and 30 (b): target 31.5; a never gets there, b at its first evaluation
    assert c.target == pytest.approx(31.5)
    assert math.isnan(t.loc["a-s0", "evals_to_target"]) and t.loc["b-s0", "evals_to_target"] == 1
    assert t.loc["a-s0", "best_feasible_size"] == 50 and t.loc["b-s0", "best_feasible_size"] == 30
    assert c.reference_json()["normalization"] == NORM.to_json()
    assert c.reference_json()["reference_front"]["points"][0] == pytest.approx(
        {"accuracy": 99.0, "weight_bits": 80.0}
    )


def test_a_complete_exhaustive_run_is_the_reference_front():
    a, _ = two_runs()
    ex = run_data("exhaustive-s0", "exhaustive", 0, [E(i, 90 + i, 10 * i + 5) for i in range(9)])
    c = compare([a, ex])
    assert "exhaustive" in c.reference_source
    assert c.table.set_index("run").loc["exhaustive-s0", "igd"] == 0.0
    partial = run_data("exhaustive-s1", "exhaustive", 1, [E(i, 90 + i, 10 * i + 5) for i in range(4)])
    assert "union" in compare([a, partial]).reference_source


def test_wall_seconds_count_the_evaluations_the_shared_memo_saved():
    shared = E(1, 99, 80, memo=True)
    shared.seconds = 3.0  # what computing it took, in the run that did
    run = run_data("a-s0", "a", 0, [E(0, 95, 50), shared], wall_seconds=1.0)
    row = compare([run]).table.iloc[0]
    assert row["measured_wall_seconds"] == 1.0 and row["wall_seconds"] == 4.0
    assert row["evals_per_second"] == pytest.approx(0.5) and row["shared_evaluations"] == 1


def test_summary_mean_and_std_over_seeds():
    runs = [run_data(f"a-s{s}", "a", s, [E(0, 95, 50 + 10 * s)]) for s in range(3)]
    runs.append(run_data("b-s0", "b", 0, [E(0, 95, 40)]))
    table = compare(runs, target=55.0).table
    s = summarise(table).set_index("algorithm")
    hv = [(1.1 - 0.5) * (1.1 - x) for x in (0.5, 0.6, 0.7)]
    assert s.loc["a", "hypervolume_mean"] == pytest.approx(np.mean(hv))
    assert s.loc["a", "hypervolume_std"] == pytest.approx(np.std(hv, ddof=1))
    assert s.loc["a", "runs"] == 3 and s.loc["a", "target_reached"] == 1  # only size 50 <= 55
    assert s.loc["b", "hypervolume_std"] == 0.0
    assert list(s.index) == ["a", "b"]


def test_runs_of_different_problems_are_refused_naming_the_field():
    a, b = two_runs()
    b.summary["fingerprint"] = {"variables": {"a": [2, 4, 8], "b": [2, 4]}}
    with pytest.raises(DseError, match=r"fingerprint\.variables\.b differs"):
        check_comparable([a, b])
    b.summary["fingerprint"] = a.summary["fingerprint"]
    b.summary["normalization"] = {**a.summary["normalization"], "worst": [90.0, 120.0]}
    with pytest.raises(DseError, match=r"normalization\.worst\[1\] differs"):
        check_comparable([a, b])
    b.summary["normalization"] = a.summary["normalization"]
    b.summary["constraint"] = {"metric": "accuracy", "sense": "max", "threshold": 95.0}
    with pytest.raises(DseError, match=r"constraint\.threshold differs"):
        check_comparable([a, b])


def test_first_difference_paths():
    assert first_difference({"a": [1, 2.0]}, {"a": (1, 2.0 + 1e-12)}, "f") is None
    assert first_difference({"a": {"b": 1}}, {"a": {"b": 2}}, "f") == "f.a.b"
    assert first_difference({"a": 1}, {"a": 1, "new": 0}, "f") == "f.new"
    assert first_difference({"a": 1}, {"a": 1, "new": 0}, "f", ignore_added=True) is None
    assert first_difference({"a": 1, "old": 0}, {"a": 1}, "f", ignore_added=True) == "f.old"
