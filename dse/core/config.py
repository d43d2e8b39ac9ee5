"""Experiment configuration: plain data, validated on construction.

The framework owns the problem-agnostic sections; a problem adds its own sections by subclassing
`ExperimentConfig` and registering the subclass (see `dse.core.registry.PROBLEMS`). A YAML file holds
only what differs from the defaults; the run folder keeps the fully resolved config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dse.core.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExperimentSection(Section):
    name: str = "experiment"
    problem: str = "layerwise_quantization"
    seed: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1, description="torch threads; None keeps the library default")


class ConstraintsSection(Section):
    """Accuracy constraints in percentage points; both may be given, both must then hold."""

    min_accuracy: float | None = Field(None, ge=0, le=100)
    max_accuracy_drop: float | None = Field(None, ge=0, le=100)


class AlgorithmSection(Section):
    name: str = "nsga2"
    budget: int = Field(300, ge=1, description="distinct evaluations the search may spend")
    pop_size: int = Field(40, ge=2)
    options: dict[str, Any] = Field(default_factory=dict, description="passed to the algorithm as is")


class OutputSection(Section):
    root: Path = Path("results")
    dir: Path | None = Field(None, description="run folder; default <root>/<experiment>/<algorithm>-s<seed>")
    plots: bool = True
    eval_timeout: float | None = Field(None, gt=0, description="seconds before an evaluation is failed")


class CompareSection(Section):
    algorithms: list[str] = Field(default_factory=lambda: ["nsga2", "random"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    budget: int | None = Field(None, ge=1)
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="algorithm name -> its algorithm.options in this comparison"
    )


class ExperimentConfig(Section):
    experiment: ExperimentSection = Field(default_factory=ExperimentSection)
    objectives: list[str] = Field(default_factory=lambda: ["accuracy", "weight_bits"])
    constraints: ConstraintsSection = Field(default_factory=ConstraintsSection)
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    output: OutputSection = Field(default_factory=OutputSection)
    compare: CompareSection = Field(default_factory=CompareSection)

    @field_validator("objectives")
    @classmethod
    def _check_objectives(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one objective is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"objectives repeat a name: {v}")
        known = cls.known_metrics()
        bad = [o for o in v if known is not None and o not in known]
        if bad:
            raise ValueError(f"unknown objective {bad[0]!r}; known: {', '.join(sorted(known or ()))}")
        return v

    @classmethod
    def known_metrics(cls) -> set[str] | None:
        """Metric names the problem can compute; None where the framework cannot tell."""
        return None

    def run_dir(self) -> Path:
        if self.output.dir is not None:
            return self.output.dir
        return self.output.root / self.experiment.name / f"{self.algorithm.name}-s{self.experiment.seed}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (misspelled?)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def parse_config(raw: Any, source: str = "config") -> ExperimentConfig:
    """Validate a raw mapping into the config class of the problem it names."""
    from dse.core.registry import PROBLEMS  # late: the registry imports problem configs lazily

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    exp = raw.get("experiment") or {}
    problem = exp.get("problem", ExperimentSection().problem) if isinstance(exp, dict) else None
    if not isinstance(problem, str):
        raise ConfigError(f"{source}: experiment.problem must be a string")
    try:
        cls = PROBLEMS.config_class(problem)
    except KeyError as e:
        raise ConfigError(f"{source}: experiment.problem: {e.args[0]}") from None
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML experiment; `overrides` maps dotted keys (e.g. 'algorithm.budget') to values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    raw = raw if raw is not None else {}
    for key, value in (overrides or {}).items():
        if value is None or not isinstance(raw, dict):
            continue
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: {p} must be a mapping")
        node[leaf] = value
    return parse_config(raw, str(path))
