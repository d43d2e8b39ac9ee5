"""A finished (or interrupted) run, read back from its folder alone: no problem, no model, no torch.

`plot`, `report`, `pick`, `evaluate` and `compare RUN_DIR ...` all start here, so a missing or
corrupt file gives the same one-line error everywhere, naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dse.core.errors import DseError
from dse.core.evaluation import Evaluation
from dse.core.objectives import Objectives
from dse.indicators.normalization import Normalization
from dse.indicators.pareto import pareto_front
from dse.results.outputs import reference_points
from dse.results.sizes import SizeInfo, size_infos
from dse.run.journal import JOURNAL_NAME, load_evaluations

SUMMARY_KEYS = ("algorithm", "seed", "objectives", "normalization", "evaluations")


@dataclass
class RunData:
    run_dir: Path
    config_text: str
    config: dict[str, Any]
    summary: dict[str, Any]
    evaluations: list[Evaluation]  # search evaluations, by eval_id
    references: list[Evaluation]
    objectives: Objectives
    norm: Normalization

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def algorithm(self) -> str:
        return str(self.summary["algorithm"])

    @property
    def label(self) -> str:
        """The run's name in comparisons: its compare alias (e.g. nsga2-uniform), else its algorithm."""
        return str(self.summary.get("label") or self.summary["algorithm"])

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])

    @cached_property
    def front(self) -> list[Evaluation]:
        return pareto_front(self.evaluations, self.objectives)

    @property
    def reference_points(self) -> list[Evaluation]:
        """The problem's labelled reference configurations (e.g. uniform precision), in its order."""
        labels = self.summary.get("references")
        if labels is None:  # a round-1 run folder: its uniform points were labelled "uniform-<bits>"
            labels = [e.label for e in self.references if e.label.startswith("uniform-")]
        return reference_points(self.references, labels)

    @property
    def constraint(self) -> dict[str, Any]:
        """{metric, sense, threshold} (round-1 folders: an accuracy threshold)."""
        if "constraint" in self.summary:
            return dict(self.summary["constraint"])
        return {"metric": "accuracy", "sense": "max", "threshold": self.summary.get("accuracy_threshold")}

    @property
    def axes(self) -> tuple[str, str]:
        """(size, quality): the x and y of every front plot (`Objectives.axes`)."""
        seen = [m for e in self.evaluations[:1] + self.references[:1] for m in e.metrics]
        return self.objectives.axes([self.constraint["metric"], *seen])

    @property
    def baseline(self) -> dict[str, float]:
        return dict(self.summary.get("baseline") or {})

    @property
    def sizes(self) -> dict[str, SizeInfo]:
        """{metric: unit and compression baselines} of the problem's size metrics (summary "sizes")."""
        return size_infos(self.summary)

    @property
    def threshold(self) -> float | None:
        """The constraint's threshold where it is on the plots' y axis (the only place it is drawn)."""
        c = self.constraint
        return c["threshold"] if c["metric"] == self.axes[1] else None

    @property
    def variables(self) -> list[str]:
        fp = (self.summary.get("fingerprint") or {}).get("variables")
        if isinstance(fp, dict) and fp:
            return list(fp)
        return list(self.evaluations[0].values) if self.evaluations else []

    def choices(self, variable: str) -> list[int]:
        """The variable's choices from the fingerprint, else the values the run saw."""
        fp = (self.summary.get("fingerprint") or {}).get("variables") or {}
        if variable in fp:
            return [int(c) for c in fp[variable]]
        return sorted({e.values[variable] for e in self.evaluations})


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DseError(f"{run_dir}: not found (expected a run folder)")
    summary = read_json(run_dir / "summary.json", what="a finished run folder")
    if not isinstance(summary, dict):
        raise DseError(f"{run_dir / 'summary.json'}: corrupt (not a JSON object)")
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise DseError(f"{run_dir / 'summary.json'}: corrupt (lacks {missing[0]!r})")
    config_text, config = read_config(run_dir / "config.yaml")
    evals = load_evaluations(run_dir)
    try:
        objectives = Objectives(tuple(summary["objectives"]), tuple(summary["objectives"].values()))
        n = summary["normalization"]
        norm = Normalization(tuple(n["names"]), tuple(map(float, n["best"])), tuple(map(float, n["worst"])))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DseError(f"{run_dir / 'summary.json'}: corrupt objectives or normalization ({e})") from None
    return RunData(
        run_dir=run_dir,
        config_text=config_text,
        config=config,
        summary=summary,
        evaluations=sorted((e for e in evals if e.kind == "search"), key=lambda e: e.eval_id),
        references=sorted((e for e in evals if e.kind != "search"), key=lambda e: e.eval_id),
        objectives=objectives,
        norm=norm,
    )


def is_run_dir(path: Path) -> bool:
    return (path / JOURNAL_NAME).is_file() or (path / "summary.json").is_file()


def read_json(path: Path, what: str = "") -> Any:
    if not path.is_file():
        hint = f" (is {path.parent} {what}?)" if what else ""
        raise DseError(f"{path}: not found{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DseError(f"{path}: corrupt JSON ({str(e).splitlines()[0]})") from None


def read_config(path: Path) -> tuple[str, dict[str, Any]]:
    if not path.is_file():
        raise DseError(f"{path}: not found (is {path.parent} a run folder?)")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DseError(f"{path}: corrupt YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise DseError(f"{path}: corrupt (not a mapping)")
    return text, data


def read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise DseError(f"{path}: not found")
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DseError(f"{path}: corrupt CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DseError(f"{path}: corrupt (no {missing[0]!r} column)")
    return frame
