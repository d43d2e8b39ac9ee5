"""`LayerwisePruningProblem`: one integer variable per prunable layer, its percent of weights kept.

Choices are percent kept (density), so a higher choice is costlier and more accurate, as the
`Problem` contract asks: the all-highest configuration keeps the most (with the default choices,
100 % everywhere: the float model).

The float model comes from the quantization zoo (same model/data/training sections, same cached
baseline). It is copied once; an evaluation swaps each layer's weights for its cached magnitude
mask applied to the dense weights (no rebuild, no copy) and runs the validation split. BatchNorm
is left as trained and nothing is fine-tuned: the front is what pruning alone costs.

Metrics:
  accuracy         top-1 accuracy (%) on the validation split (max)
  nonzero_weights  over every prunable layer (Conv/Linear, searched or not): its non-zero weights
                   after pruning plus its bias entries, which are never pruned (min; cost metric:
                   counted from the masks, no forward pass). BatchNorm and other parameters are not
                   counted. At 100 % kept everywhere this is the layers' parameter count (minus exact
                   zeros).
  sparsity         percent of those layers' weights (biases excluded) that are zero (max; cost metric)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from dse.core.errors import DseError
from dse.core.problem import Rejected, Variable
from problems.pruning.config import PRUNING_METRICS, PruningConfig
from problems.pruning.prune import MagnitudePruner, prunable_layers
from problems.quantization.evaluation import split_batches, top1
from problems.quantization.runtime import Runtime
from problems.quantization.setup import ZooModelProblem
from problems.quantization.zoo.data import Splits

PREFIX = "keep:"


class LayerwisePruningProblem(ZooModelProblem):
    METRICS: ClassVar[dict[str, Any]] = dict(PRUNING_METRICS)
    COST_METRICS = frozenset({"nonzero_weights", "sparsity"})
    EARLY_REJECT = frozenset({"accuracy"})  # the quantization problem's exact early rejection

    def __init__(
        self,
        model: nn.Module,
        splits: Splits,
        cfg: PruningConfig,
        baseline: dict[str, float],
        runtime: Runtime,
    ) -> None:
        self.cfg = cfg
        self.baseline = baseline
        self.splits = splits
        self.runtime = runtime
        self.float_model = model.eval()
        self.model = copy.deepcopy(model).eval()  # the one copy every evaluation prunes in place
        layers = prunable_layers(self.model, cfg.pruning.types)
        if not layers:
            raise DseError(
                f"pruning.types: model {cfg.model.name!r} has no layer of type {', '.join(cfg.pruning.types)}"
            )
        self.pruner = MagnitudePruner(self.model, layers)
        searched = [n for n in layers if _selected(n, cfg.pruning.include, cfg.pruning.exclude)]
        if not searched:
            raise DseError(
                f"pruning: include/exclude leave no layer to prune (known: {', '.join(list(layers)[:6])} ...)"
            )
        choices = tuple(cfg.pruning.keep)
        self.variables = [Variable(PREFIX + n, choices, (n,)) for n in searched]
        self._batches: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _from_baseline(
        cls, cfg: PruningConfig, model: nn.Module, splits: Splits, baseline: dict[str, Any], runtime: Runtime
    ) -> LayerwisePruningProblem:
        return cls(model, splits, cfg, baseline, runtime)

    # -- the problem protocol -------------------------------------------------------------------
    def reference_configurations(self) -> dict[str, dict[str, int]]:
        """Every searched layer pruned alike, at each percent kept offered ("keep-100%": the float model)."""
        return {f"keep-{k}%": {v.name: k for v in self.variables} for k in self.cfg.pruning.keep}

    def reference(self) -> dict[str, float]:
        return dict(self.baseline)

    def bounds(self, metric: str) -> tuple[float, float] | None:
        if metric in ("accuracy", "sparsity"):  # percentages: a perfect score no configuration passes
            return 100.0, 0.0
        return None

    def fingerprint(self) -> dict[str, Any]:
        c = self.cfg.model_dump(mode="json")
        keep = ("model", "data", "training", "pruning", "constraints", "objectives")
        c["constraints"].pop("early_reject", None)  # the same feasibility and front either way
        return {"variables": {v.name: list(v.choices) for v in self.variables}, **{k: c[k] for k in keep}}

    def describe_quantizers(self, values: Mapping[str, int], checkpoint: Any = None) -> dict[str, Any]:
        """Its values are percents kept, not bit widths: no mpq.json (pick still prints the choice)."""
        raise DseError("LayerwisePruningProblem has no quantizers to write as mpq.json")

    def layer_keeps(self, values: Mapping[str, int]) -> dict[str, int]:
        """Layer -> percent kept: searched layers from `values`, the others 100 (dense)."""
        keeps = dict.fromkeys(self.pruner.layers, 100)
        for v in self.variables:
            for layer in v.members:
                keeps[layer] = int(values[v.name])
        return keeps

    def _evaluate(
        self, values: dict[str, int], metrics: list[str], reject_worse_than: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        keeps = self.layer_keeps(values)
        bad = [k for k in keeps.values() if not 1 <= k <= 100]
        if bad:
            raise ValueError(f"keep {bad[0]} outside 1-100 (percent of weights kept)")
        out = {m: v for m, v in self.pruner.counts(keeps).items() if m in metrics}
        if "accuracy" in metrics:
            self.pruner.apply(keeps)
            try:
                out["accuracy"] = self.accuracy("val", (reject_worse_than or {}).get("accuracy"))
            except Rejected as r:
                r.metrics.update(out)  # the counts, computed anyway
                raise
        return out

    def evaluate_held_out(self, values: dict[str, int]) -> dict[str, float]:
        """Top-1 accuracy on the test split, which neither training nor the search has seen."""
        self.pruner.apply(self.layer_keeps(values))
        return {"test_accuracy": self.accuracy("test")}

    @torch.inference_mode()
    def accuracy(self, split: str = "val", worse_than: float | None = None) -> float:
        """Top-1 accuracy (%) of the model as pruned now, on batches cut once per split as the
        quantization problem cuts them (growing from data.first_batch_size); the float baseline's
        formula (100 * correct / n), so keep-100% reproduces the baseline. With `worse_than`:
        `Rejected` as soon as the wrong predictions prove it below (exact early rejection)."""
        if split not in self._batches:
            data = self.cfg.data
            rt = self.runtime
            self._batches[split] = split_batches(
                getattr(self.splits, split), data.first_batch_size, rt.batch_size, rt.memory_format
            )
        return top1(self.model, self._batches[split], worse_than)


def _selected(name: str, include: str | None, exclude: str | None) -> bool:
    if include is not None and not re.search(include, name):
        return False
    return not (exclude is not None and re.search(exclude, name))
