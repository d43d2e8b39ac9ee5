import math

import pytest

from dse.algorithms.bisection import precisions
from dse.core.errors import ConfigError
from dse.core.problem import Variable
from dse.core.space import SearchSpace
from tests.dse.helpers import run_cli, write_config
from tests.dse.runs import read_json, run_toy, table

# 10 variables over 7 depth levels (with gaps and repeats), qerror weights that make either side matter
DEPTHS = [1, 2, 2, 4, 5, 5, 7, 9, 11, 12]
TOY = {"n_var": 10, "depths": DEPTHS}


def qerror(bits, weights):
    return sum(w * 2.0 ** (-b) for w, b in zip(weights, bits))


@pytest.mark.parametrize("mode", ["front", "back", "auto"])
@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.5, 0.8])
@pytest.mark.parametrize("weights", ["front-heavy", "back-heavy"])
def test_bisection_meets_the_target_within_the_evaluation_bound(tmp_path, mode, ratio, weights):
    w = [1.0 / (i + 1) for i in range(10)]
    w = w if weights == "front-heavy" else w[::-1]
    res = run_toy(
        tmp_path, "bisection", {"mode": mode, "qerror_ratio": ratio}, toy={**TOY, "qerror_weights": w}
    )
    steps, doc, evals = table(res, "bisection.csv"), read_json(res, "mpq.json"), table(res, "evaluations.csv")
    mpq = doc["bisection"]  # the algorithm's own record in the one mpq.json layout
    q_high, q_low = qerror([8] * 10, w), qerror([4] * 10, w)
    target = q_high + ratio * (q_low - q_high)
    assert mpq["target"] == pytest.approx(target)
    assert mpq["final_score"] <= target + 1e-12
    # the answer is a configuration that was measured and whose qerror is final_score
    final = {layer["name"]: layer["bits"] for layer in doc["layers"]}
    assert final == doc["bits"] and sorted(final) == sorted(f"x{i}" for i in range(10))
    assert qerror([final[f"x{i}"] for i in range(10)], w) == pytest.approx(mpq["final_score"])
    assert (evals[list(final)] == list(final.values())).all(axis=1).any()
    # the documented bound: ceil(log2(levels)) cut evaluations over the 8 distinct depths, i.e. 3;
    # besides them only all-high, all-low and (auto) one per-layer error per variable
    cuts = (steps.phase == "cut").sum()
    assert cuts <= math.ceil(math.log2(len(set(DEPTHS)))) == 3
    assert (steps.phase == "layer-error").sum() == (10 if mode == "auto" else 0)
    assert len(steps) == 2 + cuts + (10 if mode == "auto" else 0)
    assert len(evals) <= len(steps)  # a cut may repeat a per-layer-error configuration (cached)
    assert mpq["depth_source"] == "toy order" and mpq["cut_evaluations"] == cuts
    assert set(evals.label) <= {
        "bisection:all-high",
        "bisection:all-low",
        "bisection:cut",
        "sensitivity",  # the per-layer errors: the sensitivity table at the low precision
    }
    # the fewest high depth levels on the chosen side that meet the target (qerror is monotone here)
    levels = sorted(set(DEPTHS))
    side = mpq["high_side"]
    best = None
    for n_high in range(len(levels) + 1):
        chosen = levels[:n_high] if side == "front" else levels[len(levels) - n_high :]
        bits = [8 if d in chosen else 4 for d in DEPTHS]
        if qerror(bits, w) <= target + 1e-12:
            best = bits
            break
    assert [final[f"x{i}"] for i in range(10)] == best


@pytest.mark.parametrize("levels", [1, 5, 8, 9])
def test_cut_evaluations_never_exceed_ceil_log2_levels_and_reach_it(tmp_path, levels):
    """One variable per depth level, equal qerror weights: the ratio puts the answer at k high levels;
    every k takes at most ceil(log2(levels)) cut evaluations, the worst k exactly that many."""
    toy = {"n_var": levels, "depths": list(range(1, levels + 1)), "qerror_weights": [1.0] * levels}
    cuts = []
    for k in range(1, levels + 1):
        # qerror with n high levels is q_high + (levels - n) * c; the target q_high + ratio * levels * c
        ratio = (levels - k + 0.5) / levels
        res = run_toy(tmp_path, "bisection", {"mode": "front", "qerror_ratio": ratio}, toy=toy, out=f"k{k}")
        doc = read_json(res, "mpq.json")
        mpq = doc["bisection"]
        high = [layer["name"] for layer in doc["layers"] if layer["bits"] == mpq["high"]]
        assert sorted(high) == sorted(f"x{i}" for i in range(k))
        steps = table(res, "bisection.csv")
        assert mpq["cut_evaluations"] == (steps.phase == "cut").sum() == len(res.evaluations) - 2
        cuts.append(mpq["cut_evaluations"])
    assert max(cuts) == math.ceil(math.log2(levels)), cuts


def test_auto_puts_high_precision_where_the_errors_are(tmp_path):
    w = [1.0 / (i + 1) for i in range(10)]
    front = run_toy(tmp_path, "bisection", toy={**TOY, "qerror_weights": w}, out="f")
    back = run_toy(tmp_path, "bisection", toy={**TOY, "qerror_weights": w[::-1]}, out="b")
    assert read_json(front, "mpq.json")["bisection"]["high_side"] == "front"
    assert read_json(back, "mpq.json")["bisection"]["high_side"] == "back"


def test_early_returns(tmp_path):
    low = run_toy(tmp_path, "bisection", {"qerror_ratio": 1.0}, toy=TOY, out="low")
    doc = read_json(low, "mpq.json")
    mpq = doc["bisection"]
    assert mpq["result"] == "all-low meets the target" and len(low.evaluations) == 2
    assert {layer["bits"] for layer in doc["layers"]} == {mpq["low"]}
    # all-high (here 6 bits, below the space's highest) can only miss the target by failing
    opts = {"high": 6, "low": 3}
    high = run_toy(tmp_path, "bisection", opts, toy={**TOY, "fail_when_first_is": 6}, out="high")
    doc = read_json(high, "mpq.json")
    mpq = doc["bisection"]
    assert mpq["result"] == "all-high misses the target: it failed (RuntimeError: injected failure)"
    assert len(high.evaluations) == 2 and mpq["final_score"] is None
    assert {layer["bits"] for layer in doc["layers"]} == {6} and len(doc["layers"]) == 10


def test_accuracy_as_score_and_explicit_precisions(tmp_path):
    res = run_toy(tmp_path, "bisection", {"score": "accuracy", "high": 6, "low": 3, "mode": "back"}, toy=TOY)
    mpq = read_json(res, "mpq.json")["bisection"]
    acc = table(res, "evaluations.csv").set_index("label").accuracy
    assert mpq["high"] == 6 and mpq["low"] == 3 and mpq["high_side"] == "back"
    target = acc["bisection:all-high"] - 0.5 * (acc["bisection:all-high"] - acc["bisection:all-low"])
    assert mpq["target"] == pytest.approx(target) and mpq["final_score"] >= target
    assert "qerror" not in table(res, "evaluations.csv")


def test_budget_ends_the_search_with_its_files(tmp_path):
    res = run_toy(tmp_path, "bisection", budget=5, toy=TOY)
    assert len(res.evaluations) == 5
    assert len(table(res, "bisection.csv")) == 5
    assert read_json(res, "mpq.json")["bisection"]["result"].startswith("all-high")  # best known so far


def test_default_precisions():
    def space(*choices):
        return SearchSpace([Variable(f"v{i}", tuple(c)) for i, c in enumerate(choices)])

    assert precisions(space([2, 4, 8, 16], [4, 8, 16]), None, None) == (16, 8)
    assert precisions(space([2, 3, 4, 6, 8], [4, 5, 6, 8]), None, None) == (8, 4)
    assert precisions(space([2, 3, 4, 6, 8]), 6, None) == (6, 3)
    with pytest.raises(ConfigError, match="algorithm.options.high: 16 is not a choice of every variable"):
        precisions(space([2, 4, 8, 16], [4, 8]), 16, None)
    with pytest.raises(ConfigError, match="algorithm.options.low: no common choice"):
        precisions(space([6, 8]), None, None)
    with pytest.raises(ConfigError, match="algorithm.options.low: 8 must be below high"):
        precisions(space([4, 8]), 8, 8)


@pytest.mark.parametrize(
    ("options", "toy", "named"),
    [
        ({"high": 7}, {}, "algorithm.options.high: 7 is not a choice"),
        ({"low": 5}, {}, "algorithm.options.low: 5 is not a choice"),
        ({"qerror_ratio": 1.5}, {}, "algorithm.options.qerror_ratio"),
        ({"mode": "middle"}, {}, "algorithm.options.mode"),
        ({"score": "loss"}, {}, "algorithm.options.score"),
        ({"ratio": 0.5}, {}, "algorithm.options.ratio: unknown option"),
        ({}, {"depths_known": False}, "bisection needs layer depths"),
    ],
)
def test_bad_options_exit_2_naming_them(tmp_path, capsys, options, toy, named):
    path = write_config(tmp_path, toy=toy, algorithm={"name": "bisection", "options": options})
    assert run_cli("run", str(path), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert named in err and err.count("\n") == 0
