import numpy as np
import pytest

from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives
from dse.indicators.normalization import Normalization
from dse.indicators.pareto import non_dominated, pareto_front
from dse.indicators.quality import hypervolume


def E(i, acc, size, feasible=True, status="ok"):
    return Evaluation(i, "search", {"a": 0}, {"accuracy": acc, "weight_bits": size}, feasible, status=status)


OBJ = Objectives(("accuracy", "weight_bits"), ("max", "min"))


def test_non_dominated_on_a_hand_made_set():
    F = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [2, 2], [5, 5]])
    assert sorted(non_dominated(F).tolist()) == [0, 1, 2, 4]


def test_pareto_front_ignores_infeasible_and_failed():
    evals = [
        E(0, 90, 10),
        E(1, 95, 20),
        E(2, 99, 5, feasible=False),
        E(3, 99, 1, status="failed"),
        E(4, 94, 25),
        E(5, 96, 30),
    ]
    assert [e.eval_id for e in pareto_front(evals, OBJ)] == [0, 1, 5]


def test_hypervolume_known_value():
    # accuracy best 100 worst 90, size best 0 worst 100; margin 1.1 -> reference (89, 110)
    norm = Normalization(("accuracy", "weight_bits"), (100.0, 0.0), (90.0, 100.0))
    one = [E(0, 95, 50)]  # normalised (0.5, 0.5): box 0.6 * 0.6
    assert hypervolume(one, OBJ, norm) == pytest.approx(0.36)
    two = one + [E(1, 99, 80)]  # (0.1, 0.8): adds 0.4 * 0.3
    assert hypervolume(two, OBJ, norm) == pytest.approx(0.36 + 0.12)
    assert hypervolume([E(0, 80, 50)], OBJ, norm) == 0.0  # beyond the reference point
    assert norm.reference_point() == pytest.approx({"accuracy": 89.0, "weight_bits": 110.0})


def test_identical_objectives_are_one_front_point():
    evals = [E(0, 95, 20), E(1, 95, 20), E(2, 90, 10), E(3, 90, 10)]
    assert [e.eval_id for e in pareto_front(evals, OBJ)] == [0, 2]
