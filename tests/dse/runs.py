"""Run one toy experiment in-process for the algorithm tests; read its run folder back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from dse.core.config import parse_config
from dse.run.runner import RunResult, run_experiment


def run_toy(
    tmp_path: Path,
    algorithm: str,
    options: dict[str, Any] | None = None,
    *,
    budget: int = 300,
    toy: dict[str, Any] | None = None,
    constraints: dict[str, Any] | None = None,
    objectives: list[str] | None = None,
    out: str = "run",
) -> RunResult:
    cfg = parse_config(
        {
            "experiment": {"name": "toy", "problem": "toy"},
            "toy": toy or {},
            "objectives": objectives or ["accuracy", "weight_bits"],
            "constraints": {"max_accuracy_drop": 5} if constraints is None else constraints,
            "algorithm": {"name": algorithm, "budget": budget, "pop_size": 12, "options": options or {}},
            "output": {"dir": str(tmp_path / out), "plots": False},
        }
    )
    return run_experiment(cfg, progress=False)


def table(result: RunResult, name: str) -> pd.DataFrame:
    return pd.read_csv(result.run_dir / name)


def read_json(result: RunResult, name: str) -> dict[str, Any]:
    return json.loads((result.run_dir / name).read_text())
