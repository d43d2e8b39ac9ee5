"""A torch-free problem with a known structure, for testing the framework fast.

accuracy = 100 - sum_i sens_i * 2**(-bits_i) * 100 (more bits: higher accuracy, diminishing);
weight_bits = sum_i params_i * bits_i. Optionally raises on chosen configurations.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from dse.config import ExperimentConfig, Section
from dse.problem import Problem, Variable
from dse.registry import PROBLEMS


class ToySection(Section):
    n_var: int = Field(4, ge=1)
    choices: list[int] = Field(default_factory=lambda: [2, 3, 4, 6, 8])
    fail_when_first_is: int | None = None  # raise inside evaluate when variable x0 has this value
    nan_when_first_is: int | None = None


class ToyConfig(ExperimentConfig):
    toy: ToySection = Field(default_factory=ToySection)

    @classmethod
    def known_metrics(cls) -> set[str]:
        return set(ToyProblem.METRICS)


class ToyProblem(Problem):
    METRICS: ClassVar[dict[str, Any]] = {"accuracy": "max", "weight_bits": "min", "total_bits": "min"}
    COST_METRICS = frozenset({"weight_bits", "total_bits"})

    def __init__(self, section: ToySection) -> None:
        self.section = section
        self.variables = [Variable(f"x{i}", tuple(section.choices), (f"x{i}",)) for i in range(section.n_var)]
        self.params = [10 * (i + 1) for i in range(section.n_var)]
        self.sens = [0.5 / (i + 1) for i in range(section.n_var)]
        self.calls = 0

    @classmethod
    def from_config(cls, cfg: ToyConfig, progress: bool = True) -> ToyProblem:
        return cls(cfg.toy)

    @classmethod
    def check_config(cls, cfg: ToyConfig) -> None:
        pass

    def reference(self) -> dict[str, float]:
        return {"accuracy": 100.0}

    def _evaluate(self, values: dict[str, int], metrics: list[str]) -> dict[str, float]:
        bits = [values[v.name] for v in self.variables]
        out = {
            "weight_bits": float(sum(p * b for p, b in zip(self.params, bits))),
            "total_bits": float(sum(bits)),
        }
        if "accuracy" in metrics:
            self.calls += 1
            if self.section.fail_when_first_is is not None and bits[0] == self.section.fail_when_first_is:
                raise RuntimeError("injected failure")
            if self.section.nan_when_first_is is not None and bits[0] == self.section.nan_when_first_is:
                out["accuracy"] = float("nan")
            else:
                out["accuracy"] = 100.0 - 100.0 * sum(s * 2.0 ** (-b) for s, b in zip(self.sens, bits))
        return {m: out[m] for m in metrics}


PROBLEMS.register("toy", ("tests.dse.toy:ToyConfig", "tests.dse.toy:ToyProblem"))  # type: ignore[arg-type]
