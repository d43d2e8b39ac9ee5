"""Experiment configuration: plain data, validated on construction.

The framework owns the problem-agnostic sections; a problem adds its own sections by subclassing
`ExperimentConfig` and registering the subclass (see `dse.core.registry.PROBLEMS`). A YAML file holds
only what differs from the defaults; the run folder keeps the fully resolved config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from dse.core.errors import ConfigError
from dse.core.execution import ExecutionSection, migrate, moved_fields
from dse.core.section import Section


class ExperimentSection(Section):
    name: str = "experiment"
    problem: str = "layerwise_quantization"
    seed: int = Field(0, ge=0)


class ConstraintsSection(Section):
    """A constraint on one metric of the problem; every limit given must hold.

    `min` / `max` are absolute limits (`min` for a maximised metric, `max` for a minimised one);
    `max_drop` is how much worse than the problem's reference value (e.g. the float model) the metric
    may get. `min_accuracy` / `max_accuracy_drop` are the same limits on accuracy, by their round-1 names.
    """

    metric: str = Field("accuracy", description="the constrained metric (one of the problem's metrics)")
    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(None, ge=0)
    min_accuracy: float | None = Field(None, ge=0, le=100)
    max_accuracy_drop: float | None = Field(None, ge=0, le=100)
    early_reject: bool = Field(
        True,
        description="stop an evaluation as soon as the metric is proven to miss the limit (where the "
        "problem can, e.g. accuracy: wrong predictions past what the limit allows); the feasibility "
        "is exactly that of a full evaluation, the metric is left unknown",
    )

    @model_validator(mode="after")
    def _accuracy_names(self) -> ConstraintsSection:
        named = self.min_accuracy is not None or self.max_accuracy_drop is not None
        if self.metric != "accuracy" and named:
            raise ValueError(
                f"min_accuracy / max_accuracy_drop constrain accuracy, not {self.metric!r}: "
                "use min, max or max_drop"
            )
        return self

    @property
    def limits(self) -> list[float]:
        return [v for v in (self.min, self.max, self.min_accuracy) if v is not None]

    @property
    def drops(self) -> list[float]:
        return [v for v in (self.max_drop, self.max_accuracy_drop) if v is not None]


class AlgorithmSection(Section):
    name: str = "nsga2"
    budget: int = Field(300, ge=1, description="distinct evaluations the search may spend")
    pop_size: int = Field(40, ge=2)
    options: dict[str, Any] = Field(default_factory=dict, description="passed to the algorithm as is")
    label: str | None = Field(None, description="the run's name in comparisons (a compare alias)")


class OutputSection(Section):
    root: Path = Path("results")
    dir: Path | None = Field(None, description="run folder; default <root>/<experiment>/<algorithm>-s<seed>")
    plots: bool = True
    eval_timeout: float | None = Field(None, gt=0, description="seconds before an evaluation is failed")


class TargetSection(Section):
    """The size evaluations-to-target counts to (`dse.compare.target`)."""

    metric: str | None = Field(None, description="default: the size objective")
    value: float | None = Field(None, description="in the metric's unit; or:")
    fraction: float | None = Field(None, gt=0, description="of the size baseline `of` (summary.json sizes)")
    of: str = "8-bit"

    @model_validator(mode="after")
    def _one_of(self) -> TargetSection:
        if (self.value is None) == (self.fraction is None):
            raise ValueError("give exactly one of value and fraction")
        return self


class CompareSection(Section):
    algorithms: list[str] = Field(default_factory=lambda: ["nsga2", "random"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    budget: int | None = Field(None, ge=1)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name -> algorithm.options")
    aliases: dict[str, str] = Field(default_factory=dict, description="name in algorithms -> the algorithm")
    target: TargetSection | None = Field(None, description="default: the best size any run found x 1.05")
    #: name -> {dotted.key: value}: the comparison repeated on variants of the problem (compare/variants.py)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SearchSpaceSection(Section):
    """What every problem's search space offers; a problem extends it with how its variables are chosen."""

    pin_cost_free: bool = Field(
        True,
        description="hold each variable that changes no cost metric among the objectives and the "
        "constraint at its highest choice (lowering it could only lose quality)",
    )


class ExperimentConfig(Section):
    experiment: ExperimentSection = Field(default_factory=ExperimentSection)
    objectives: list[str] = Field(default_factory=lambda: ["accuracy", "weight_bits"])
    constraints: ConstraintsSection = Field(default_factory=ConstraintsSection)
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    output: OutputSection = Field(default_factory=OutputSection)
    compare: CompareSection = Field(default_factory=CompareSection)
    search_space: SearchSpaceSection = Field(default_factory=SearchSpaceSection)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)

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
        algorithm = folder_name(self.algorithm.name)
        return self.output.root / self.experiment.name / f"{algorithm}-s{self.experiment.seed}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def folder_name(name: str) -> str:
    """`name` as one file-system-safe folder name: an import path 'pkg.mod:Class' -> 'pkg.mod-Class'."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", name).lstrip(".") or "-"


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<top level>"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (misspelled?)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def parse_config(raw: Any, source: str = "config", saved: bool = False) -> ExperimentConfig:
    """Validate a raw mapping into the config class of the problem it names. `saved`: a run folder's
    config.yaml, written by this or an earlier release (moved fields are moved, not refused)."""
    from dse.core.registry import PROBLEMS  # late: the registry imports problem configs lazily

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    if saved:
        raw = migrate(raw)
    elif moved := moved_fields(raw):
        raise ConfigError(f"{source}: {moved}")
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


def load_config(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    sets: Iterable[str | tuple[str, Any]] = (),
) -> ExperimentConfig:
    """Read a YAML experiment and apply changes to it before validation.

    `sets` are `--set` items, applied in order: "key.path=value" strings (the value parsed as YAML, so
    `null` is None and `[2, 4]` a list) or (key, value) pairs, a None value setting null. `overrides`
    maps dotted keys to values applied after them, a None value meaning "not given" (the CLI's
    --algorithm/--budget/--seed/--out). The result is validated by the problem's config class, so a
    bad value is reported as if the file held it.
    """
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
    changes = parse_sets(sets)  # a malformed --set is refused even where the file is at fault too
    changes += [(k, v, f"{k}={v}") for k, v in (overrides or {}).items() if v is not None]
    if isinstance(raw, dict):  # otherwise parse_config names the file's fault
        apply_overrides(raw, changes)
    return parse_config(raw, str(path))


def parse_sets(sets: Iterable[str | tuple[str, Any]]) -> list[tuple[str, Any, str]]:
    """`--set` strings and (key, value) pairs -> (key, value, how it reads in an error message)."""
    return [parse_set(s) if isinstance(s, str) else _set_pair(s) for s in sets]


def parse_set(text: str) -> tuple[str, Any, str]:
    """One `--set key.path=value` -> (key, value, text); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"--set {text}: expected key.path=value (e.g. algorithm.budget=50)")
    _check_key(key, text)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text}: invalid YAML value: {getattr(e, 'problem', e)}") from None
    return key, parsed, text


def _set_pair(item: Any) -> tuple[str, Any, str]:
    if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
        raise ConfigError(f"set {item!r}: expected 'key.path=value' or a (key, value) pair")
    key, value = item
    _check_key(key, f"{key}={value!r}")
    return key, value, f"{key}={value!r}"


def _check_key(key: str, text: str) -> None:
    if not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"--set {text}: empty key (expected key.path=value, e.g. algorithm.budget=50)")


def apply_overrides(raw: dict[str, Any], changes: Iterable[tuple[str, Any, str]]) -> dict[str, Any]:
    """Set each dotted key of `changes` ((key, value, how the user wrote it)) in `raw`, in place.

    Missing mappings on the way are created; a null one is replaced by a mapping. A path through
    something that is not a mapping (in the file, or by default when the file omits it) is an error
    naming the --set, not a silent replacement.
    """
    for key, value, text in changes:
        *parents, leaf = key.split(".")
        node: dict[str, Any] = raw
        default: Any = _defaults(raw)
        for i, part in enumerate(parents):
            default = default.get(part) if isinstance(default, dict) else None
            child = node.get(part)
            current = child if part in node else default
            if current is not None and not isinstance(current, dict):
                where = ".".join(parents[: i + 1])
                shown = current if part in node else f"{current!r} by default"
                raise ConfigError(f"--set {text}: {where} is not a mapping (it is {shown})")
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return raw


def _defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Every field at its default, for the problem `raw` names ({} where that cannot be told)."""
    from dse.core.registry import PROBLEMS

    exp = raw.get("experiment") or {}
    problem = exp.get("problem", ExperimentSection().problem) if isinstance(exp, dict) else None
    try:
        return PROBLEMS.config_class(problem).model_construct().model_dump()
    except Exception:  # noqa: BLE001 - unknown problem etc.: parse_config reports it
        return {}
