"""Per-layer statistics of a `QuantizedModel`, measured with forward hooks on one example batch.

This module exists to keep the cost model's inputs apart from the quantization machinery: one
float forward pass with counting hooks gives, per weight-quantized layer, its parameter count, its
MACs and which activation quantizer's output it consumes, and per activation quantizer how many
values it quantizes. Nothing here changes the model; the hooks are removed before returning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

Stats = dict[str, dict[str, Any]]


def measure(
    run: Callable[[Tensor], Any],
    layers: Mapping[str, nn.Module],
    act_quantizers: Mapping[str, nn.Module],
    example: Tensor,
) -> tuple[Stats, Stats]:
    """(layer stats, activation stats) per sample of `example`, from one call `run(example)`.

    Per layer: `params` (weight numel), `macs` (output numel x weight numel per output channel,
    summed over calls), `act_input` (key of the activation quantizer whose output the layer consumes,
    matched by tensor address at its first call, or None) and `calls`. Per activation quantizer:
    `numel` quantized (summed over calls) and `calls`. The caller picks the mode `run` works in
    (float weights, no autograd).
    """
    n = example.shape[0]
    layer_stats = {
        k: {"params": m.weight.numel(), "macs": 0, "act_input": None, "calls": 0} for k, m in layers.items()
    }
    acts = {k: {"numel": 0, "calls": 0} for k in act_quantizers}
    producer: dict[int, str] = {}  # data_ptr of a quantizer output -> its key
    keep: list[Tensor] = []  # keeps those tensors alive so their addresses are not reused

    def act_hook(key: str):
        def hook(_m: nn.Module, _args: Any, out: Tensor) -> None:
            producer[out.data_ptr()] = key
            keep.append(out)
            acts[key]["numel"] += out.numel() // n
            acts[key]["calls"] += 1

        return hook

    def layer_hooks(key: str, per_out: int):
        def pre(_m: nn.Module, args: Any) -> None:
            if layer_stats[key]["calls"] == 0 and args and isinstance(args[0], Tensor):
                layer_stats[key]["act_input"] = producer.get(args[0].data_ptr())

        def post(_m: nn.Module, _args: Any, out: Tensor) -> None:
            layer_stats[key]["macs"] += out.numel() // n * per_out
            layer_stats[key]["calls"] += 1

        return pre, post

    handles = [q.register_forward_hook(act_hook(k)) for k, q in act_quantizers.items()]
    for k, m in layers.items():
        pre, post = layer_hooks(k, m.weight[0].numel())
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        run(example)
    finally:
        for h in handles:
            h.remove()
    return layer_stats, acts
