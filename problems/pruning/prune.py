"""Unstructured magnitude pruning, in place, of one model copy: masks cached per (layer, ratio).

Pruning `ratio` percent of a layer zeroes its k = floor(numel * ratio / 100) weights of smallest
magnitude (ties broken by position, so exactly k are zeroed). Masks are computed from the dense
(trained) weights, never from already pruned ones, so a layer's pruned weights depend on its own
ratio alone and any configuration can follow any other. Biases, BatchNorm and every other
parameter stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn


def prunable_layers(model: nn.Module, types: Sequence[str]) -> dict[str, nn.Module]:
    """Qualified name -> module, in model order, for modules of a class named in `types` with a weight."""
    wanted = set(types)
    return {
        name: m
        for name, m in model.named_modules()
        if type(m).__name__ in wanted and isinstance(getattr(m, "weight", None), Tensor)
    }


def pruned_count(numel: int, ratio: int) -> int:
    """How many of `numel` weights `ratio` percent prunes (rounded down; integer arithmetic)."""
    return numel * ratio // 100


def magnitude_mask(weight: Tensor, ratio: int) -> Tensor:
    """Boolean keep-mask of `weight`'s shape: False on the k smallest |w| (k = pruned_count)."""
    if not 0 <= ratio <= 100:
        raise ValueError(f"pruning ratio {ratio} outside 0-100")
    flat = weight.detach().abs().flatten()
    k = pruned_count(flat.numel(), ratio)
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    if k:
        order = torch.sort(flat, stable=True).indices  # stable: equal magnitudes pruned in index order
        keep[order[:k]] = False
    return keep.view_as(weight)


class MagnitudePruner:
    """Prunes the layers of `model` in place. `model` should be a copy: its trained weights are kept
    (`dense`) and restored exactly wherever a ratio goes back to 0."""

    def __init__(self, model: nn.Module, layers: Mapping[str, nn.Module]) -> None:
        self.model = model
        self.layers = dict(layers)
        self.dense = {n: m.weight.detach().clone() for n, m in self.layers.items()}
        self.biases = {n: _bias_numel(m) for n, m in self.layers.items()}
        self.ratios = {n: 0 for n in self.layers}  # what each layer holds now
        self._masks: dict[tuple[str, int], Tensor] = {}
        self._nonzero: dict[tuple[str, int], int] = {}
        self.masks_computed = 0  # cache misses (tests check reuse)

    def mask(self, layer: str, ratio: int) -> Tensor:
        key = (layer, int(ratio))
        if key not in self._masks:
            self._masks[key] = magnitude_mask(self.dense[layer], ratio)
            self.masks_computed += 1
        return self._masks[key]

    def nonzero(self, layer: str, ratio: int) -> int:
        """Non-zero weights of `layer` at `ratio` (from the mask and the dense weights; no forward pass)."""
        key = (layer, int(ratio))
        if key not in self._nonzero:
            w = self.dense[layer]
            self._nonzero[key] = int(torch.count_nonzero(w if ratio == 0 else w * self.mask(layer, ratio)))
        return self._nonzero[key]

    def apply(self, ratios: Mapping[str, int]) -> None:
        """Set the given layers to their ratios in place; layers already there are not touched."""
        with torch.no_grad():
            for layer, ratio in ratios.items():
                if self.ratios[layer] == ratio:
                    continue
                weight = self.layers[layer].weight
                if ratio == 0:
                    weight.copy_(self.dense[layer])
                else:
                    torch.mul(self.dense[layer], self.mask(layer, ratio), out=weight)
                self.ratios[layer] = int(ratio)

    def counts(self, ratios: Mapping[str, int]) -> dict[str, float]:
        """nonzero_weights and sparsity of a configuration (layers not in `ratios` are dense)."""
        kept = sum(self.nonzero(n, ratios.get(n, 0)) for n in self.layers)
        total = sum(w.numel() for w in self.dense.values())
        return {
            "nonzero_weights": float(kept + sum(self.biases.values())),
            "sparsity": 100.0 * (total - kept) / total if total else 0.0,
        }


def _bias_numel(module: nn.Module) -> int:
    bias = getattr(module, "bias", None)
    return bias.numel() if isinstance(bias, Tensor) else 0
