"""A finished run's problem, rebuilt from its folder: what `evaluate`, `pick`, `finetune` and `export`
stand on. The run folder holds the resolved config, so the same baseline, splits and calibration come
back; a rebuilt problem whose fingerprint differs from the run's is refused rather than trusted.
"""

from __future__ import annotations

import json

from dse.compare.comparison import first_difference
from dse.core.config import parse_config
from dse.core.errors import DseError
from dse.core.registry import PROBLEMS
from dse.results.rundata import RunData
from dse.run.setup import Setup, build_setup


def rebuild_setup(run: RunData, progress: bool = True) -> Setup:
    """The run's Setup, rebuilt; `DseError` where its baseline is gone or the problem changed."""
    cfg = parse_config(run.config, str(run.run_dir / "config.yaml"), saved=True)
    PROBLEMS.problem_class(cfg.experiment.problem).check_rebuild(cfg)
    setup = build_setup(cfg, progress=progress)
    rebuilt = json.loads(json.dumps(setup.problem.fingerprint(), default=str))
    # a field the code gained since the run (absent from its fingerprint) is at its default: no difference
    diff = first_difference(run.summary.get("fingerprint"), rebuilt, "fingerprint", ignore_added=True)
    if diff is not None:
        setup.problem.close()
        raise DseError(
            f"{run.run_dir / 'summary.json'}: the rebuilt problem differs from the run's at {diff}"
        )
    return setup
