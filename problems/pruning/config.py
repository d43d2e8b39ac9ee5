"""Config sections of the layer-wise pruning problem (plain data: no torch here).

The model, data and training sections are the quantization problem's (`ModelProblemConfig`), so
both problems build, train and cache the same float baseline for the same sections.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from dse.core.config import Section
from problems.quantization.config import ModelProblemConfig, check_regex

#: metric name -> sense; the problem class declares the same (tests check they agree)
PRUNING_METRICS = {"accuracy": "max", "nonzero_weights": "min", "sparsity": "max"}


class PruningSection(Section):
    """Which layers are searched and how much of each is kept."""

    keep: list[int] = Field(
        default_factory=lambda: [10, 20, 30, 50, 75, 100],
        description="choices of every searched layer: percent of its weights kept, the largest |w| "
        "(100 = dense)",
    )
    types: list[str] = Field(
        default_factory=lambda: ["Conv1d", "Conv2d", "Conv3d", "Linear"],
        description="module class names whose `weight` is prunable",
    )
    include: str | None = Field(None, description="regex on layer names; default all prunable layers")
    exclude: str | None = Field(None, description="regex on layer names to leave dense")

    @field_validator("keep")
    @classmethod
    def _keep(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("keep is empty")
        bad = [k for k in v if not 1 <= k <= 100]
        if bad:
            raise ValueError(f"keep {bad[0]} outside 1-100 (percent of weights kept)")
        return sorted(set(v))

    @field_validator("types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("types is empty: no layer could be pruned")
        return v

    @field_validator("include", "exclude")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return check_regex(v)


class PruningConfig(ModelProblemConfig):
    objectives: list[str] = Field(default_factory=lambda: ["accuracy", "nonzero_weights"])
    pruning: PruningSection = Field(default_factory=PruningSection)

    @classmethod
    def known_metrics(cls) -> set[str]:
        return set(PRUNING_METRICS)
