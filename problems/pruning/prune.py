"""Unstructured magnitude pruning, in place, of one model copy: masks cached per (layer, keep).

Keeping `keep` percent of a layer keeps its largest |w| and zeroes its k = floor(numel * (100 -
keep) / 100) weights of smallest magnitude (ties broken by position, so exactly k are zeroed; 100 =
dense). Masks are computed from the dense (trained) weights, never from already pruned ones, so a
layer's pruned weights depend on its own keep alone and any configuration can follow any other.
Biases, BatchNorm and every other parameter stay as they are.
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


def pruned_count(numel: int, keep: int) -> int:
    """How many of `numel` weights keeping `keep` percent prunes: floor(numel * (100 - keep) / 100)
    (integer arithmetic), so a layer keeps at least `keep` percent of its weights."""
    return numel * (100 - keep) // 100


def magnitude_mask(weight: Tensor, keep: int) -> Tensor:
    """Boolean keep-mask of `weight`'s shape: False on the k smallest |w| (k = pruned_count)."""
    if not 0 <= keep <= 100:
        raise ValueError(f"keep {keep} outside 0-100 (percent of weights kept)")
    flat = weight.detach().abs().flatten()
    k = pruned_count(flat.numel(), keep)
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    if k:
        order = torch.sort(flat, stable=True).indices  # stable: equal magnitudes pruned in index order
        keep[order[:k]] = False
    return keep.view_as(weight)


class MagnitudePruner:
    """Prunes the layers of `model` in place. `model` should be a copy: its trained weights are kept
    (`dense`) and restored exactly wherever a layer goes back to 100 % kept."""

    def __init__(self, model: nn.Module, layers: Mapping[str, nn.Module]) -> None:
        self.model = model
        self.layers = dict(layers)
        self.dense = {n: m.weight.detach().clone() for n, m in self.layers.items()}
        self.biases = {n: _bias_numel(m) for n, m in self.layers.items()}
        self.keeps = dict.fromkeys(self.layers, 100)  # percent each layer keeps now (100: dense)
        self._masks: dict[tuple[str, int], Tensor] = {}
        self._nonzero: dict[tuple[str, int], int] = {}
        self.masks_computed = 0  # cache misses (tests check reuse)

    def mask(self, layer: str, keep: int) -> Tensor:
        key = (layer, int(keep))
        if key not in self._masks:
            self._masks[key] = magnitude_mask(self.dense[layer], keep)
            self.masks_computed += 1
        return self._masks[key]

    def nonzero(self, layer: str, keep: int) -> int:
        """Non-zero weights of `layer` at `keep` (from the mask and the dense weights; no forward pass)."""
        key = (layer, int(keep))
        if key not in self._nonzero:
            w = self.dense[layer]
            self._nonzero[key] = int(torch.count_nonzero(w if keep == 100 else w * self.mask(layer, keep)))
        return self._nonzero[key]

    def apply(self, keeps: Mapping[str, int]) -> None:
        """Set the given layers to their percent kept, in place; layers already there are not touched."""
        with torch.no_grad():
            for layer, keep in keeps.items():
                if self.keeps[layer] == keep:
                    continue
                weight = self.layers[layer].weight
                if keep == 100:
                    weight.copy_(self.dense[layer])
                else:
                    torch.mul(self.dense[layer], self.mask(layer, keep), out=weight)
                self.keeps[layer] = int(keep)

    def counts(self, keeps: Mapping[str, int]) -> dict[str, float]:
        """nonzero_weights and sparsity of a configuration (layers not in `keeps` are dense)."""
        kept = sum(self.nonzero(n, keeps.get(n, 100)) for n in self.layers)
        total = sum(w.numel() for w in self.dense.values())
        return {
            "nonzero_weights": float(kept + sum(self.biases.values())),
            "sparsity": 100.0 * (total - kept) / total if total else 0.0,
        }


def _bias_numel(module: nn.Module) -> int:
    bias = getattr(module, "bias", None)
    return bias.numel() if isinstance(bias, Tensor) else 0
