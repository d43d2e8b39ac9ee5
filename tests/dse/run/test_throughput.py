"""Evaluations per second through 1..N workers (`dse bench --workers N`), on the toy problem."""

from __future__ import annotations

import pytest

from dse.run.throughput import measure_throughput, search_tasks
from tests.dse.run.test_pool import METRICS, _cfg
from tests.dse.toy import ToyProblem


def test_rows_for_one_to_n_workers_with_speedup_and_memory_of_each_worker():
    cfg = _cfg(sleep=0.04)  # an evaluation that waits rather than computes: workers overlap fully
    candidates = [{"x0": a, "x1": b, "x2": 4} for a in (2, 3, 4, 6, 8) for b in (4, 8)]
    tasks = search_tasks(candidates, METRICS, {"accuracy": 96.0})
    assert tasks[0].reject_worse_than == {"accuracy": 96.0}  # early rejection as in a run
    rows = measure_throughput(cfg, ToyProblem(cfg.toy), tasks, 2, repeats=1)
    assert [(r.backend, r.workers) for r in rows] == [("local", 1), ("local", 2)]
    assert rows[0].speedup == 1.0 and rows[0].evaluations_per_s == pytest.approx(25, rel=0.3)
    assert rows[1].speedup > 1.5
    assert len(rows[0].rss_mib) == 1 and len(rows[1].rss_mib) == 2
    assert all(10 < m < 2000 for r in rows for m in r.rss_mib)
    assert set(rows[1].as_dict()) == {
        "backend",
        "workers",
        "evaluations_per_s",
        "speedup",
        "rss_mib_per_worker",
    }
