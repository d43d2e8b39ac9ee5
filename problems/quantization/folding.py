"""BatchNorm folding: merge eval-mode BatchNorms into the conv/linear layer that feeds them.

This module exists because folding is a model rewrite done once, before any quantizer is attached,
and is independent of how `QuantizedModel` quantizes: it only needs the float model. Inside each
parent module, a BatchNorm1d/2d registered right after a Conv2d (BatchNorm2d), Conv1d or Linear
(BatchNorm1d) with matching channel count and running statistics is folded into that layer's weight
and bias (a bias is added if missing) and replaced by `nn.Identity`. This covers
`conv1, bn1, conv2, bn2` blocks and `nn.Sequential(conv, bn)` shortcuts. Registration order is only
a heuristic, so `QuantizedModel.calibrate()` checks on its first batch (`eval_outputs`,
`check_same_outputs`) that the folded float model reproduces the original's outputs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from problems.quantization.formats.quantizer import QuantizationError

_FOLD_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv1d, nn.BatchNorm1d), (nn.Linear, nn.BatchNorm1d))


def fold_batchnorms(model: nn.Module) -> list[tuple[str, str]]:
    """Fold BNs registered right after a matching conv/linear of the same parent (see the module doc).

    Modules registered in several places are left alone. Returns (layer, bn) qualified names.
    """
    uses = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    folded = []
    for pname, parent in list(model.named_modules()):
        kids = list(parent.named_children())
        for (lname, layer), (bname, bn) in zip(kids, kids[1:]):
            if _foldable(layer, bn) and uses[id(layer)] == 1 and uses[id(bn)] == 1:
                _fold(layer, bn)
                setattr(parent, bname, nn.Identity())
                folded.append((_join(pname, lname), _join(pname, bname)))
    return folded


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if not any(isinstance(layer, lt) and isinstance(bn, bt) for lt, bt in _FOLD_PAIRS):
        return False
    out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return bn.num_features == out and bn.track_running_stats and bn.running_mean is not None


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.Module) -> None:
    """W' = W * g/std per output channel, b' = (b - mean) * g/std + beta (eval-mode BN), in float64."""
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    factor = gamma / std
    w = layer.weight
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(std)
    w.copy_(w.double() * factor.reshape(-1, *[1] * (w.dim() - 1)))
    new_bias = ((bias - bn.running_mean.double()) * factor + beta).to(w.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias, requires_grad=False)
    else:
        layer.bias.copy_(new_bias)


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def eval_outputs(original: nn.Module, x: Tensor) -> Any:
    """`original(x)` in eval mode; the modules' training flags are restored afterwards."""
    training = {m: m.training for m in original.modules()}
    try:
        original.eval()
        return original(x)
    finally:
        for m, mode in training.items():
            m.training = mode


def check_same_outputs(reference: Any, folded_output: Any, folded: Sequence[tuple[str, str]]) -> None:
    """Raise QuantizationError when the folded float model's output strays from the original's."""
    ref, got = _tensors(reference), _tensors(folded_output)
    same = [a.shape for a in ref] == [b.shape for b in got]
    diff = (
        max(((a.float() - b.float()).abs().max().item() for a, b in zip(ref, got)), default=0.0)
        if same
        else math.inf
    )
    size = max((a.float().abs().max().item() for a in ref), default=0.0)
    if diff > 1e-3 * max(1.0, size):
        pairs = ", ".join(f"{c}+{b}" for c, b in folded)
        raise QuantizationError(
            f"BatchNorm folding changed the float output by {diff:.3g} "
            f"(folded {pairs}); set quantization.fold_bn: false"
        )


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []
