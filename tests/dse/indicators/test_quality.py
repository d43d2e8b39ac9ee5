import math

import numpy as np
import pytest

from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives
from dse.indicators.normalization import Normalization
from dse.indicators.quality import (
    default_target,
    evals_to_target,
    hv_curve,
    hypervolume,
    hypervolume_of,
    igd,
    igd_plus,
    scaled_front,
    union_front,
)

OBJ = Objectives(("accuracy", "weight_bits"), ("max", "min"))
# accuracy best 100 worst 90, size best 0 worst 100: normalised = ((100 - acc) / 10, size / 100)
NORM = Normalization(("accuracy", "weight_bits"), (100.0, 0.0), (90.0, 100.0))


def E(i, acc, size, feasible=True, status="ok"):
    return Evaluation(i, "search", {"a": i}, {"accuracy": acc, "weight_bits": size}, feasible, status=status)


def test_hypervolume_of_hand_made_fronts():
    assert hypervolume_of(np.array([[0.5, 0.5]])) == pytest.approx(0.36)  # box 0.6 x 0.6 to (1.1, 1.1)
    assert hypervolume_of(np.array([[0.5, 0.5], [0.1, 0.8]])) == pytest.approx(0.48)
    assert hypervolume_of(np.array([[0.0, 0.0]])) == pytest.approx(1.21)
    assert hypervolume_of(np.array([[1.2, 0.0]])) == 0.0  # beyond the reference point
    assert hypervolume_of(np.zeros((0, 2))) == 0.0


def test_igd_and_igd_plus_hand_made():
    ref = np.array([[0.0, 1.0], [1.0, 0.0]])
    one = np.array([[0.0, 1.0]])
    assert igd(one, ref) == pytest.approx((0 + math.sqrt(2)) / 2)
    assert igd_plus(one, ref) == pytest.approx((0 + 1) / 2)  # only the worse part of (1, -1) counts
    assert igd(ref, ref) == 0.0 and igd_plus(ref, ref) == 0.0
    better = np.array([[-0.1, 0.5], [0.5, -0.1]])  # dominates the reference: IGD+ is 0, IGD is not
    assert igd_plus(better, ref) == 0.0 and igd(better, ref) > 0
    assert math.isnan(igd(np.zeros((0, 2)), ref)) and math.isnan(igd_plus(np.zeros((0, 2)), ref))


def test_scaled_front_and_union():
    evals = [E(0, 95, 50), E(1, 99, 80), E(2, 94, 60), E(3, 99, 10, feasible=False)]
    F = scaled_front(evals, OBJ, NORM)
    assert np.allclose(F, [[0.1, 0.8], [0.5, 0.5]])
    U = union_front([F, np.array([[0.1, 0.7], [0.9, 0.1]]), np.zeros((0, 2))])
    assert sorted(map(tuple, U.round(9).tolist())) == [(0.1, 0.7), (0.5, 0.5), (0.9, 0.1)]


def test_hv_curve_hand_made():
    evals = [
        E(0, 95, 50),  # 0.36
        E(1, 80, 10),  # feasible yet beyond the reference point: no change
        E(2, 99, 80),  # +0.12
        E(3, 94, 60),  # dominated
        E(4, 99.5, 5, status="failed"),
        E(5, 99.5, 5, feasible=False),
    ]
    curve = hv_curve(evals, OBJ, NORM)
    assert curve.tolist() == pytest.approx([0.36, 0.36, 0.48, 0.48, 0.48, 0.48])
    assert hv_curve([], OBJ, NORM).tolist() == []


def test_hv_curve_is_non_decreasing_and_ends_at_the_run_hypervolume():
    rng = np.random.default_rng(3)
    for _ in range(5):
        evals = [
            E(i, float(rng.uniform(88, 100)), float(rng.uniform(0, 110)), feasible=bool(rng.random() < 0.8))
            for i in range(60)
        ]
        rng.shuffle(evals)  # the curve follows eval_id, not list order
        curve = hv_curve(evals, OBJ, NORM)
        assert np.all(np.diff(curve) >= 0)
        assert curve[-1] == pytest.approx(hypervolume(evals, OBJ, NORM))
        first = sorted(evals, key=lambda e: e.eval_id)[:30]
        assert curve[29] == pytest.approx(hypervolume(first, OBJ, NORM))


def test_evals_to_target_and_default_target():
    evals = [
        E(0, 95, 90),
        E(1, 99, 40, feasible=False),
        E(2, 96, 60, status="failed"),
        E(3, 95, 50),
        E(4, 91, 10),
    ]
    assert evals_to_target(evals, "weight_bits", 50.0) == 4.0  # eval_id 3 + 1; infeasible/failed skipped
    assert evals_to_target(evals, "weight_bits", 95.0) == 1.0
    assert math.isnan(evals_to_target(evals, "weight_bits", 5.0))
    assert math.isnan(evals_to_target(evals, "weight_bits", math.nan))
    assert default_target([400.0, math.nan, 380.0]) == pytest.approx(399.0)
    assert math.isnan(default_target([math.nan]))
