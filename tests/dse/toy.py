"""A torch-free problem with a known structure, for testing the framework fast.

accuracy = 100 - sum_i sens_i * 2**(-bits_i) * 100 (more bits: higher accuracy, diminishing);
weight_bits = sum_i params_i * bits_i; qerror = sum_i w_i * 2**(-bits_i). Optionally raises on chosen
configurations; declares depths and initial values for the algorithms that use them. `cost_free` adds
variables f0, f1, ... after the x_i that lower accuracy (sens 0.1 each) but change no cost metric.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from pydantic import Field

from dse.core.config import ExperimentConfig, Section
from dse.core.problem import Problem, Rejected, Variable
from dse.core.registry import PROBLEMS


class ToySection(Section):
    n_var: int = Field(4, ge=1)
    choices: list[int] = Field(default_factory=lambda: [2, 3, 4, 6, 8])
    fail_when_first_is: int | None = None  # raise inside evaluate when variable x0 has this value
    nan_when_first_is: int | None = None
    sleep: float = Field(0.0, ge=0)  # seconds each accuracy evaluation takes (lets a test kill mid-run)
    sleep_when_first_is: int | None = None  # sleep only when x0 has this value (time-out tests)
    calls_log: str | None = None  # file that gets one line per accuracy evaluation started (all processes)
    pid_log: str | None = None  # file that gets the process id of each accuracy evaluation (worker tests)
    depths: list[int] | None = None  # depth of each variable (default: x_i at i + 1)
    depths_known: bool = True  # False: depths() returns None, as for a model that cannot be traced
    initial: list[int] | None = None  # initial_values() (default None: every variable highest)
    qerror_weights: list[float] | None = None  # qerror = sum_i w_i * 2**-bits_i (default w = sens)
    param_scale: int = Field(1, ge=1)  # params_i = 10 * (i + 1) * param_scale (KiB-sized fronts)
    cost_free: int = Field(0, ge=0)  # extra variables f<j> that change accuracy but no cost metric
    # emulate exact early rejection: accuracy below the limit is rejected, its bound halfway up to it
    early_reject: bool = False


class ToyConfig(ExperimentConfig):
    toy: ToySection = Field(default_factory=ToySection)

    @classmethod
    def known_metrics(cls) -> set[str]:
        return set(ToyProblem.METRICS)


class ToyProblem(Problem):
    METRICS: ClassVar[dict[str, Any]] = {
        "accuracy": "max",
        "weight_bits": "min",
        "total_bits": "min",
        "qerror": "min",
    }
    COST_METRICS = frozenset({"weight_bits", "total_bits"})
    SIZE_METRICS: ClassVar[dict[str, str]] = {"weight_bits": "bits"}  # total_bits sums bit widths: no size

    def __init__(self, section: ToySection) -> None:
        self.section = section
        self.variables = [Variable(f"x{i}", tuple(section.choices), (f"x{i}",)) for i in range(section.n_var)]
        self.variables += [Variable(f"f{j}", tuple(section.choices)) for j in range(section.cost_free)]
        self.params = [10 * (i + 1) * section.param_scale for i in range(section.n_var)]
        self.sens = [0.5 / (i + 1) for i in range(section.n_var)]
        self.calls = 0
        self.rejections = 0
        if section.early_reject:
            self.EARLY_REJECT = frozenset({"accuracy"})  # type: ignore[misc] - this instance only

    @classmethod
    def from_config(cls, cfg: ToyConfig, progress: bool = True) -> ToyProblem:
        return cls(cfg.toy)

    @classmethod
    def check_config(cls, cfg: ToyConfig) -> None:
        pass

    def reference(self) -> dict[str, float]:
        return {"accuracy": 100.0, "test_accuracy": 99.0}

    def evaluate_held_out(self, values: dict[str, int]) -> dict[str, float]:
        """test_accuracy = 99 - 110 * sum_i sens_i * 2**(-bits_i): a little below validation."""
        bits = [values[v.name] for v in self.variables]
        return {"test_accuracy": 99.0 - 110.0 * sum(s * 2.0 ** (-b) for s, b in zip(self.sens, bits))}

    def size_baselines(self, metric: str) -> dict[str, float]:
        """weight_bits: every weight at 32 bits (float) and at 8 bits."""
        if metric != "weight_bits":
            return {}
        return {"float": 32.0 * sum(self.params), "8-bit": 8.0 * sum(self.params)}

    def bounds(self, metric: str) -> tuple[float, float] | None:
        if metric == "accuracy":
            return 100.0, 0.0
        if metric == "qerror":
            return 0.0, self._qerror([min(self.section.choices)] * self.section.n_var)
        return None

    def depths(self) -> dict[str, int] | None:
        if not self.section.depths_known:
            return None
        depths = self.section.depths or [i + 1 for i in range(len(self.variables))]
        return {v.name: d for v, d in zip(self.variables, depths, strict=True)}

    def depth_source(self) -> str:
        return "toy order" if self.section.depths_known else "unknown"

    def initial_values(self) -> dict[str, int] | None:
        if self.section.initial is None:
            return None
        return {v.name: b for v, b in zip(self.variables, self.section.initial, strict=True)}

    def _qerror(self, bits: list[int]) -> float:
        weights = self.section.qerror_weights or self.sens
        return float(sum(w * 2.0 ** (-b) for w, b in zip(weights, bits, strict=True)))

    def _evaluate(
        self, values: dict[str, int], metrics: list[str], reject_worse_than: dict[str, float] | None = None
    ) -> dict[str, float]:
        bits = [values[f"x{i}"] for i in range(self.section.n_var)]
        free_loss = sum(0.1 * 2.0 ** (-values[f"f{j}"]) for j in range(self.section.cost_free))
        out = {
            "weight_bits": float(sum(p * b for p, b in zip(self.params, bits))),
            "total_bits": float(sum(bits)),
        }
        if "qerror" in metrics:
            out["qerror"] = self._qerror(bits)
        if "accuracy" in metrics:
            self.calls += 1
            if self.section.calls_log is not None:
                with open(self.section.calls_log, "a") as fh:
                    fh.write(",".join(map(str, bits)) + "\n")
            if self.section.pid_log is not None:
                with open(self.section.pid_log, "a") as fh:
                    fh.write(f"{os.getpid()}\n")
            if self.section.sleep and self.section.sleep_when_first_is in (None, bits[0]):
                _sleep(self.section.sleep)
            if self.section.fail_when_first_is is not None and bits[0] == self.section.fail_when_first_is:
                raise RuntimeError("injected failure")
            if self.section.nan_when_first_is is not None and bits[0] == self.section.nan_when_first_is:
                out["accuracy"] = float("nan")
            else:
                loss = sum(s * 2.0 ** (-b) for s, b in zip(self.sens, bits)) + free_loss
                out["accuracy"] = 100.0 - 100.0 * loss
                limit = (reject_worse_than or {}).get("accuracy")
                if limit is not None and out["accuracy"] < limit:
                    self.rejections += 1
                    acc = out.pop("accuracy")
                    bound = acc + (limit - acc) / 2
                    kept = {m: out[m] for m in metrics if m in out}
                    raise Rejected("accuracy", bound if bound < limit else acc, kept, "toy")
        return {m: out[m] for m in metrics}


def _sleep(seconds: float) -> None:
    """In steps, as a model evaluates batch after batch: an exception raised in this thread by another
    (a timeout outside the main thread) lands between two steps."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.01))


PROBLEMS.register("toy", ("tests.dse.toy:ToyConfig", "tests.dse.toy:ToyProblem"))  # type: ignore[arg-type]
