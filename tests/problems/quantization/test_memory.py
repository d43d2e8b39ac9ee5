"""No growth across evaluations: 600 evaluations of a small real model keep resident memory flat."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
psutil = pytest.importorskip("psutil")

from dse.core.config import parse_config  # noqa: E402
from dse.run.runner import run_experiment  # noqa: E402
from dse.run.setup import build_setup  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end: runs the CLI / trains a model

WARM_UP, EVALUATIONS, MARGIN_MB = 100, 600, 30


def test_resident_memory_stays_flat_over_600_evaluations(tmp_path):
    cfg = parse_config(
        {
            "experiment": {"name": "memory"},
            "execution": {"threads": 1},
            "model": {"name": "mlp", "options": {"hidden": [32, 16]}},
            "data": {"name": "digits", "image_size": 8, "calib_samples": 64},
            "training": {"epochs": 1},
            # activations searched too (not pinned): a space far larger than the evaluations
            "search_space": {
                "weights": {"bounds": [2, 8]},
                "activations": {"bounds": [2, 8]},
                "pin_cost_free": False,
            },
            "objectives": ["accuracy", "weight_bits"],
            "algorithm": {"name": "random", "budget": EVALUATIONS},
            "output": {"root": str(tmp_path), "plots": False},
        }
    )
    setup = build_setup(cfg, progress=False)
    assert setup.space.size() > 10 * EVALUATIONS  # random search never runs out of new configurations
    process, rss = psutil.Process(), []
    evaluate = setup.problem.evaluate

    def measured(*args, **kwargs):
        out = evaluate(*args, **kwargs)
        rss.append(process.memory_info().rss)
        return out

    setup.problem.evaluate = measured  # type: ignore[method-assign]
    result = run_experiment(cfg, progress=False, setup=setup)
    assert result.summary["evaluations"] == EVALUATIONS and result.summary["failed_evaluations"] == 0
    assert len(rss) >= EVALUATIONS
    growth_mb = (max(rss[WARM_UP:]) - rss[WARM_UP]) / 2**20
    assert growth_mb < MARGIN_MB, f"resident memory grew {growth_mb:.1f} MB after warm-up"
