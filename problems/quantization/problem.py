"""`LayerwiseQuantizationProblem`: one integer variable per searched quantizer (or tied group).

The model is converted and calibrated once; an evaluation flips bits in place and runs the
validation split. Size metrics are arithmetic on per-layer statistics measured once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from dse.core.problem import Rejected
from problems.quantization.backends import build_quantized_model
from problems.quantization.bench import benchmark
from problems.quantization.config import QuantizationConfig
from problems.quantization.deployment import DeploymentHooks
from problems.quantization.evaluation import ModelEvaluator
from problems.quantization.graph import module_depths
from problems.quantization.qmodel import INPUT, QuantizedModel
from problems.quantization.runtime import Runtime, place_model
from problems.quantization.setup import ZooModelProblem
from problems.quantization.variables import ACT, BIAS, WEIGHT, searched_variables
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
    }
    COST_METRICS = frozenset({"total_bits", "weight_bits", "bops"})
    #: accuracy stops once its wrong predictions exceed what the limit allows (evaluation.top1)
    EARLY_REJECT = frozenset({"accuracy"})
    #: weight_bits is storage; total_bits sums bit widths and bops is compute, neither is a size
    SIZE_METRICS: ClassVar[dict[str, str]] = {"weight_bits": "bits"}

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
        modules = dict(qmodel.model.named_modules())
        self.bias_params = {n: modules[n].bias.numel() for n in qmodel.bias_quantizers}
        self.variables = searched_variables(
            cfg, list(qmodel.weight_quantizers), list(qmodel.act_quantizers), list(qmodel.bias_quantizers)
        )
        self._members = {v.name: v.members for v in self.variables}
        self._depths: tuple[dict[str, int], str] | None = None
        self._qerror_worst: float | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _from_baseline(
        cls,
        cfg: QuantizationConfig,
        model: nn.Module,
        splits: Splits,
        baseline: dict[str, Any],
        runtime: Runtime,
    ) -> LayerwiseQuantizationProblem:
        qmodel = build_quantized_model(cfg, model, splits.calib.x)
        calib = splits.calib.x
        stats = qmodel.layer_stats(calib[:1])
        qmodel = place_model(qmodel, runtime.device, runtime.memory_format)
        engine = ModelEvaluator(
            qmodel, splits, runtime.batch_size, cfg.data.first_batch_size, runtime.memory_format
        )
        return cls(qmodel, engine, cfg, baseline, stats, model)

    # -- the problem protocol -------------------------------------------------------------------
    def reference_configurations(self) -> dict[str, dict[str, int]]:
        """Every searched quantizer at 2..8 and 16 bits: the uniform precision a mix must beat."""
        return {f"{b}-bit": {v.name: b for v in self.variables} for b in UNIFORM_BITS}

    def reference(self) -> dict[str, float]:
        return dict(self.baseline)

    def size_baselines(self, metric: str) -> dict[str, float]:
        """weight_bits of the float model (every tensor it counts at 32 bits) and of every searched
        weight at 8 bits (the "8-bit" reference configuration; quantizers not searched keep their bits)."""
        if metric != "weight_bits":
            return {}
        weights = {u: 32 for u in self.default_bits if not u.startswith(ACT)}
        eight = self.unit_bits({v.name: 8 for v in self.variables})
        return {
            "float": self.costs(weights, {})["weight_bits"],
            "8-bit": self.costs(eight, {})["weight_bits"],
        }

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
            modules = [u[2:] for u in units if u != ACT + INPUT]
            layers, source = module_depths(self.float_model, modules, example)
            depth = {u: 0 if u == ACT + INPUT else layers[u[2:]] for u in units}
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
        """Set every quantizer's bits in place (no rebuild, no copy)."""
        self.qmodel.set_bits(
            weights={u[2:]: b for u, b in bits.items() if u.startswith(WEIGHT)},
            activations={u[2:]: b for u, b in bits.items() if u.startswith(ACT)},
            biases={u[2:]: b for u, b in bits.items() if u.startswith(BIAS)},
        )

    def costs(self, bits: Mapping[str, int], values: Mapping[str, int]) -> dict[str, float]:
        weight_bits = 0.0
        bops = 0.0
        for name, st in self.stats.items():
            wb = bits[WEIGHT + name]
            weight_bits += st["params"] * wb
            feed = st.get("act_input")
            ab = bits.get(ACT + feed, self.cfg.quantization.activation_bits) if feed else 32
            bops += st["macs"] * wb * ab
        weight_bits += sum(n * bits[BIAS + name] for name, n in self.bias_params.items())
        total = sum(bits[u] for v in values for u in self._members[v])
        return {"total_bits": float(total), "weight_bits": weight_bits, "bops": bops}

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
