"""Shared helpers for framework tests: write a toy experiment, run the CLI in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dse.cli import main


def write_config(tmp_path: Path, **sections: Any) -> Path:
    cfg: dict[str, Any] = {
        "experiment": {"name": "toy", "problem": "toy"},
        "constraints": {"max_accuracy_drop": 5},
        "algorithm": {"name": "nsga2", "budget": 60, "pop_size": 12},
        "output": {"root": str(tmp_path / "results"), "plots": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(*argv: str) -> int:
    return main(list(argv))
