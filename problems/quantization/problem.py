"""`LayerwiseQuantizationProblem`: one integer variable per searched quantizer (or tied group).

The model is converted and calibrated once; an evaluation flips bits in place and runs the
validation split. Size metrics are arithmetic on per-layer statistics measured once (costs.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from dse.core.errors import DseError
from dse.core.problem import Rejected
from problems.quantization.backends import build_quantized_model, check_backend
from problems.quantization.bench import benchmark
from problems.quantization.config import QuantizationConfig
from problems.quantization.costs import CostModel, float_note
from problems.quantization.deployment import DeploymentHooks
from problems.quantization.evaluation import ModelEvaluator
from problems.quantization.format_survey import survey, survey_config
from problems.quantization.formats.registry import FORMATS
from problems.quantization.graph import module_depths
from problems.quantization.qmodel import INPUT, QuantizedModel
from problems.quantization.runtime import Runtime, place_model
from problems.quantization.setup import ZooModelProblem
from problems.quantization.variables import ACT, BIAS, FORMAT, WEIGHT, searched_variables
from problems.quantization.zoo.data import Splits

#: the uniform precisions every run evaluates for free (values may lie outside the searched choices)
UNIFORM_BITS = (2, 3, 4, 5, 6, 8, 16)


class LayerwiseQuantizationProblem(DeploymentHooks, ZooModelProblem):
    METRICS: ClassVar[dict[str, Any]] = {
        "accuracy": "max",
        "total_bits": "min",
        "weight_bits": "min",
        "bops": "min",
        "qerror": "min",
        "model_bits": "min",
    }
    COST_METRICS = frozenset({"total_bits", "weight_bits", "bops", "model_bits"})
    #: accuracy stops once its wrong predictions exceed what the limit allows (evaluation.top1)
    EARLY_REJECT = frozenset({"accuracy"})
    #: weight_bits (the quantized tensors) and model_bits (every parameter) are storage; total_bits
    #: sums bit widths and bops is compute, neither is a size
    SIZE_METRICS: ClassVar[dict[str, str]] = {"weight_bits": "bits", "model_bits": "bits"}

    def __init__(
        self,
        qmodel: QuantizedModel,
        engine: ModelEvaluator,
        cfg: QuantizationConfig,
        baseline: dict[str, float],
        stats: dict[str, dict[str, Any]],
        float_model: nn.Module,
    ) -> None:
        self.float_model = float_model
        self.qmodel = qmodel
        self.engine = engine
        self.cfg = cfg
        self.baseline = baseline
        self.stats = stats
        q = cfg.quantization
        self.default_bits = {
            **{WEIGHT + n: q.weight_bits for n in qmodel.weight_quantizers},
            **{ACT + n: q.activation_bits for n in qmodel.act_quantizers},
            **{BIAS + n: q.weight_bits for n in qmodel.bias_quantizers},
        }
        formats = cfg.search_space.formats or [q.weight_format]
        self.format_names = list(formats)  # what an 'f:' variable's value indexes
        if len(formats) > 1:  # search_space.formats: every weight's format, by index
            own = formats.index(q.weight_format)
            self.default_bits |= {FORMAT + n: own for n in qmodel.weight_quantizers}
        modules = dict(qmodel.model.named_modules())
        self.bias_params = {n: modules[n].bias.numel() for n in qmodel.bias_quantizers}
        self.variables = searched_variables(
            cfg, list(qmodel.weight_quantizers), list(qmodel.act_quantizers), list(qmodel.bias_quantizers)
        )
        self._members = {v.name: v.members for v in self.variables}
        counts = qmodel.parameter_counts()  # (per weight quantizer, per parameter left float)
        self.cost_model = CostModel(
            stats, self.bias_params, *counts, self._members, q.activation_bits, self._value_bits
        )
        self._depths: tuple[dict[str, int], str] | None = None
        self._qerror_worst: float | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: QuantizationConfig) -> None:
        super().check_config(cfg)
        check_backend(cfg)  # a missing dse[modelopt] fails here, before the baseline is trained

    @classmethod
    def _from_baseline(
        cls,
        cfg: QuantizationConfig,
        model: nn.Module,
        splits: Splits,
        baseline: dict[str, Any],
        runtime: Runtime,
    ) -> LayerwiseQuantizationProblem:
        calib = splits.calib.x
        qmodel = build_quantized_model(cfg, model, calib)
        stats = qmodel.layer_stats(calib[:1])
        qmodel = place_model(qmodel, runtime.device, runtime.memory_format)
        engine = ModelEvaluator(
            qmodel, splits, runtime.batch_size, cfg.data.first_batch_size, runtime.memory_format
        )
        return cls(qmodel, engine, cfg, baseline, stats, model)

    @classmethod
    def format_survey(
        cls, cfg: QuantizationConfig, formats: list[str] | None, bits: list[int], progress: bool = True
    ) -> list[dict[str, Any]]:
        """`dse formats`: every format x bits on this model (format_survey.py); formats None: all."""
        formats = formats or FORMATS.names()
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise DseError(f"--formats: unknown format {unknown[0]!r}; known: {', '.join(FORMATS.names())}")
        cfg = survey_config(cfg, formats)
        problem = cls.from_config(cfg, progress=progress)  # checks the config first
        try:
            return survey(problem, cfg.search_space.formats or [], bits)
        finally:
            problem.close()

    # -- the problem protocol -------------------------------------------------------------------
    def reference_configurations(self) -> dict[str, dict[str, int]]:
        """Every searched quantizer at 2..8 and 16 bits: the uniform precision a mix must beat."""
        return {f"{b}-bit": self.uniform(b) for b in UNIFORM_BITS}

    def uniform(self, bits: int) -> dict[str, int]:
        """Every searched bit width at `bits`, every searched format at the weights' own."""
        return {v.name: self.default_bits[v.members[0]] if v.categorical else bits for v in self.variables}

    def reference(self) -> dict[str, float]:
        return dict(self.baseline)

    def size_baselines(self, metric: str) -> dict[str, float]:
        """weight_bits / model_bits of the float model (every tensor at 32 bits) and of every searched
        weight at 8 bits (the "8-bit" reference configuration; quantizers not searched keep their bits)."""
        if metric not in self.SIZE_METRICS:
            return {}
        weights = {u: 32 for u in self.default_bits if u.startswith((WEIGHT, BIAS))}
        eight = self.unit_bits(self.uniform(8))
        return {"float": self.costs(weights, {})[metric], "8-bit": self.costs(eight, {})[metric]}

    def notes(self) -> list[str]:
        """The parameters left float that hold >= 1 % of the model, with their share."""
        note = float_note(self.cost_model.float_shares())
        return [note] if note else []

    def bounds(self, metric: str) -> tuple[float, float] | None:
        if metric == "accuracy":  # a perfect score is the best no configuration can pass
            return 100.0, 0.0
        if metric == "qerror":  # worst = every searched quantizer at its lowest choice
            if self._qerror_worst is None:
                lowest = {v.name: v.choices[0] for v in self.variables}
                self._qerror_worst = self.evaluate(lowest, ["qerror"])["qerror"]
            return 0.0, self._qerror_worst
        return None

    def depths(self) -> dict[str, int]:
        """Per variable: its deepest member's layer depth (graph.py; the input quantizer is 0)."""
        return dict(self._layer_depths()[0])

    def depth_source(self) -> str:
        return self._layer_depths()[1]

    def _layer_depths(self) -> tuple[dict[str, int], str]:
        if self._depths is None:
            units = [u for v in self.variables for u in v.members]
            example = self.engine.splits.calib.x[:1]
            sites = getattr(self.qmodel, "weight_sites", {})  # a weight's depth: its caller's
            where = {u: sites[u[2:]].caller if u[:2] != ACT and u[2:] in sites else u[2:] for u in units}
            modules = [where[u] for u in units if u != ACT + INPUT]
            layers, source = module_depths(self.float_model, modules, example)
            depth = {u: 0 if u == ACT + INPUT else layers[where[u]] for u in units}
            self._depths = ({v.name: max(depth[u] for u in v.members) for v in self.variables}, source)
        return self._depths

    def initial_values(self) -> dict[str, int] | None:
        """Where the formats have a view (fixed point: integer bits of max|x| + extra_fraction_bits),
        each variable's widest member's, clipped to its choices; None where none has (greedy then
        starts at the highest choices)."""
        tables = {WEIGHT: self.qmodel.weight_quantizers, ACT: self.qmodel.act_quantizers}
        tables[BIAS] = self.qmodel.bias_quantizers
        out = {}
        for v in self.variables:
            if v.categorical:
                out[v.name] = self.default_bits[v.members[0]]
                continue
            views = [tables[u[:2]][u[2:]].format.initial_bits() for u in v.members]
            if None in views:
                return None
            out[v.name] = next((c for c in v.choices if c >= max(views)), v.choices[-1])
        return out

    def fingerprint(self) -> dict[str, Any]:
        c = self.cfg.model_dump(mode="json")
        c["search_space"].pop("pin_cost_free", None)  # how a run searches, not what the problem is
        c["constraints"].pop("early_reject", None)  # the same feasibility and front either way
        keep = ("model", "data", "training", "quantization", "search_space", "constraints", "objectives")
        return {"variables": {v.name: list(v.choices) for v in self.variables}, **{k: c[k] for k in keep}}

    def unit_bits(self, values: Mapping[str, int]) -> dict[str, int]:
        """Bits of every quantizer ("w:layer" / "a:layer"): searched ones from `values`, others default."""
        bits = dict(self.default_bits)
        for var, value in values.items():
            for unit in self._members[var]:
                bits[unit] = int(value)
        return bits

    def _evaluate(
        self, values: dict[str, int], metrics: list[str], reject_worse_than: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        bits = self.unit_bits(values)
        out = self.costs(bits, values)
        wanted = {m: out[m] for m in metrics if m in out}
        if "accuracy" in metrics or "qerror" in metrics:
            self.apply(bits)
            if "accuracy" in metrics:  # first: a rejection skips qerror's pass
                limit = (reject_worse_than or {}).get("accuracy")
                try:
                    wanted["accuracy"] = self.engine.accuracy(worse_than=limit)
                except Rejected as r:
                    r.metrics.update(wanted)  # the costs, computed anyway
                    raise
            if "qerror" in metrics:
                wanted["qerror"] = self.engine.qerror()
        return wanted

    def evaluate_held_out(self, values: dict[str, int]) -> dict[str, float]:
        """Top-1 accuracy on the test split, which neither training nor the search has seen."""
        self.apply(self.unit_bits(values))
        return {"test_accuracy": self.engine.accuracy("test")}

    def apply(self, bits: Mapping[str, int]) -> None:
        """Set every quantizer's bits (and searched weight formats) in place (no rebuild, no copy)."""
        if len(self.format_names) > 1:  # search_space.formats
            names = self.format_names
            self.qmodel.set_formats({u[2:]: names[i] for u, i in bits.items() if u.startswith(FORMAT)})
        self.qmodel.set_bits(
            weights={u[2:]: b for u, b in bits.items() if u.startswith(WEIGHT)},
            activations={u[2:]: b for u, b in bits.items() if u.startswith(ACT)},
            biases={u[2:]: b for u, b in bits.items() if u.startswith(BIAS)},
        )

    def _value_bits(self, unit: str, bits: int, fmt: int | None) -> float:
        """Size metrics ask the format what one value costs (a searched format: the one chosen)."""
        table = self.qmodel.bias_quantizers if unit.startswith(BIAS) else self.qmodel.weight_quantizers
        formats = getattr(table[unit[2:]], "formats", None)  # None: another backend's quantizer
        if formats is None:
            return float(bits)
        name = self.format_names[fmt] if fmt is not None else table[unit[2:]].format.name
        return formats[name].value_bits(bits)

    def costs(self, bits: Mapping[str, int], values: Mapping[str, int]) -> dict[str, float]:
        """Every cost metric of quantizers at `bits` (`values`: the searched variables; costs.py)."""
        return self.cost_model.costs(bits, values)

    def benchmark(
        self,
        candidates: list[dict[str, int]],
        repeats: int = 3,
        reject_worse_than: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Float forward vs. one candidate evaluation (and vs. one rejected early, given a limit),
        interleaved on the same batches and threads."""
        metrics = ["accuracy", *sorted(self.COST_METRICS)]
        return benchmark(
            self.evaluate, self.engine, self.float_model, metrics, candidates, repeats, reject_worse_than
        )
