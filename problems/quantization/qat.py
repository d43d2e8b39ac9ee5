"""Quantization-aware training: a trainable copy of the float model whose forward fake-quantizes with
a straight-through estimator, BatchNorm unfolded and in training mode.

Why this shape:
- weights stay float (the parameters SGD updates) and are fake-quantized at every step by the
  problem's own calibrated quantizers, bypassing `QuantizedModel`'s per-(layer, bits) cache;
- BatchNorm trains unfolded (batch statistics; the prototype of issue 11 recovered only that way),
  yet the weight is quantized as it will be once folded: `q(W * f) / f` with `f = gamma / sqrt(running
  var + eps)` (Jacob et al. 2018). Folding after training gives `f * (q(W f) / f) = q(W f)`, the very
  tensor `DeployedModel` quantizes, so training and deployment see one grid whatever the format
  (per-channel affine, per-tensor fixed point);
- activation ranges stay fixed (the calibrated ones), so the run's config plus the fine-tuned weights
  reproduce the quantized model; the quantizers' straight-through gradient is 1 inside the range.

The copy's parameter names are those of the float model: its state dict loads into the zoo model.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.placement import output_hook, require_layer_weights, weight_layers
from problems.quantization.qmodel import INPUT, QuantizedModel


class QATModel(nn.Module):
    """`model` deep-copied and made trainable; `float_model()` is the trained float network."""

    def __init__(self, model: nn.Module, qmodel: QuantizedModel, recalibrate_every: int = 0) -> None:
        super().__init__()
        check_trainable(qmodel)
        # contiguous whatever format the run's evaluations were tuned to: training must not depend on it
        self.model = (
            copy.deepcopy(model).to(memory_format=torch.contiguous_format).requires_grad_(True).train()
        )
        modules = dict(self.model.named_modules())
        bn_of = dict(qmodel.folded)  # layer -> the BatchNorm that folds into it
        self.layers = weight_layers(modules)
        self.bns = {n: modules[bn_of[n]] if n in bn_of else None for n in self.layers}
        self.weight_quantizers = {n: copy.deepcopy(qmodel.weight_quantizers[n]) for n in self.layers}
        for name, layer in self.layers.items():
            layer.forward = partial(_forward, layer, self.bns[name], self.weight_quantizers[name])
        self.recalibrate_every, self.steps = recalibrate_every, 0
        for name, q in qmodel.act_quantizers.items():
            if name != INPUT:
                modules[name].register_forward_hook(output_hook(q))
        self.input_quantizer = qmodel.act_quantizers.get(INPUT)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.training and torch.is_grad_enabled():
            if self.recalibrate_every and self.steps % self.recalibrate_every == 0:
                self.recalibrate_weights()
            self.steps += 1
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        return self.model(x, *args, **kwargs)

    def train(self, mode: bool = True) -> QATModel:
        """Switching to eval recalibrates the weight ranges, so that eval mode computes exactly what the
        deployed model (ranges calibrated on its final weights) computes."""
        super().train(mode)
        if not mode and self.recalibrate_every:
            self.recalibrate_weights()
        return self

    @torch.no_grad()
    def recalibrate_weights(self) -> None:
        """Weight ranges from the weights as they are now (folded), by the run's calibrators."""
        for name, layer in self.layers.items():
            bn = self.bns[name]
            w = layer.weight if bn is None else layer.weight * fold_factor(bn, layer.weight)
            self.weight_quantizers[name].calibrate_on(w)

    def float_state(self) -> dict[str, Tensor]:
        """The trained float weights (BatchNorm unfolded), on the CPU: what `model.pt` holds."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


def check_trainable(qmodel: QuantizedModel) -> None:
    """One line refusing weights this training cannot fake-quantize: it replaces the forward of each
    Conv/Linear layer, so a weight read elsewhere (an Embedding's, a ConvTranspose's, an attention's
    projections, out_proj included, which the attention never calls) would train float unseen."""
    require_layer_weights(
        qmodel.weight_sites,
        "dse finetune: quantization-aware training covers the weights of Conv1d/Conv2d/Linear layers only",
    )


def fold_factor(bn: nn.Module, like: Tensor) -> Tensor:
    """gamma / sqrt(running_var + eps), shaped to scale `like`'s output channels; never exactly 0
    (a zero gamma would divide by zero; its channel's folded weight is ~0 either way)."""
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    f = gamma / std
    f = torch.where(f.abs() < 1e-12, torch.full_like(f, 1e-12), f)
    return f.reshape(-1, *[1] * (like.dim() - 1))


def _forward(layer: nn.Module, bn: nn.Module | None, q: TensorQuantizer, x: Tensor) -> Tensor:
    w = layer.weight
    if bn is None:
        wq = _ste(q, w)
    else:
        f = fold_factor(bn, w).detach()
        wq = _ste(q, w * f) / f
    if isinstance(layer, nn.Linear):
        return F.linear(x, wq, layer.bias)
    return layer._conv_forward(x, wq, layer.bias)


def _ste(q: TensorQuantizer, w: Tensor) -> Tensor:
    """q's fake quantization with the straight-through gradient, also under no_grad (evaluation)."""
    if w.requires_grad and torch.is_grad_enabled():
        return q(w)  # TensorQuantizer takes the straight-through path for tensors that need a gradient
    return q.quantize_tensor(w)
