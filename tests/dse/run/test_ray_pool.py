"""`execution.backend: ray`: a Ray ActorPool gives what one process gives, in order; per-evaluation
timeouts work in an actor; a run with it writes the records of a one-process run."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from dse.core.config import parse_config
from dse.core.errors import DseError
from dse.run.executor import InProcess
from dse.run.workers import make_executor
from tests.dse.helpers import run_cli, write_config
from tests.dse.proc import events
from tests.dse.run.test_pool import _plain, _tasks
from tests.dse.toy import ToyProblem

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # starting Ray takes seconds


@pytest.fixture(scope="module", autouse=True)
def one_ray():
    """One local Ray for the module (pools reuse a running Ray and leave it running)."""
    from dse.run.ray_pool import start_ray

    started = start_ray(parse_config({}).execution, 2)
    yield
    if started:
        ray.shutdown()


def _cfg(**toy):
    return parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "toy": {"n_var": 3, **toy},
            "execution": {"workers": 2, "backend": "ray", "threads": 1},
        }
    )


def test_actors_give_in_process_outcomes_in_task_order_and_time_out_evaluations():
    cfg = _cfg(early_reject=True, fail_when_first_is=3, sleep=5.0, sleep_when_first_is=2)
    expected = InProcess(ToyProblem(cfg.toy.model_copy(update={"sleep": 0.0}))).run(_tasks())
    pool = make_executor(cfg, ToyProblem(cfg.toy))
    try:
        assert type(pool).__name__ == "RayPool" and pool.workers == 2
        start = time.monotonic()
        out = pool.run(_tasks(timeout=0.3))
        assert time.monotonic() - start < 4  # the x0 = 2 evaluations were interrupted in their actors
        timed_out = [t.values["x0"] == 2 for t in _tasks()]
        assert [o.reason == "timed out after 0.3s" for o in out] == timed_out
        kept = [i for i, t in enumerate(timed_out) if not t]
        assert _plain([out[i] for i in kept]) == _plain([expected[i] for i in kept])
        assert len(pool.worker_rss()) == 2
    finally:
        pool.close()
    assert ray.is_initialized()  # a Ray this pool did not start is left running


def test_an_actor_that_cannot_build_the_problem_says_why_in_one_line():
    from dse.run.ray_pool import RayPool
    from dse.run.workers import worker_spec

    cfg = _cfg()
    spec = worker_spec(cfg)
    bad = {**spec.config, "toy": {**spec.config["toy"], "n_var": 0}}  # refused where the actor validates it
    with pytest.raises(DseError, match=r"^a worker could not build the problem: worker config: toy\.n_var: "):
        RayPool(type(spec)(**{**spec.__dict__, "config": bad}), 1, cfg.execution)


def test_a_ray_run_writes_what_one_process_writes_from_its_actors(tmp_path):
    pids = tmp_path / "pids.log"
    path = write_config(tmp_path, toy={"n_var": 4, "pid_log": str(pids)})
    one, actors = tmp_path / "one", tmp_path / "ray"
    assert run_cli("run", str(path), "--quiet", "--out", str(one)) == 0
    pids.unlink()
    ray_args = ("--workers", "2", "--backend", "ray")
    assert run_cli("run", str(path), "--quiet", "--out", str(actors), *ray_args) == 0
    assert str(os.getpid()) not in set(pids.read_text().split())
    assert events(one) == events(actors)
    csv = [pd.read_csv(d / "evaluations.csv").filter(regex="^(?!.*seconds$)") for d in (one, actors)]
    pd.testing.assert_frame_equal(*csv)
