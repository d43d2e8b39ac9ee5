"""Per-weight statistics of a `QuantizedModel`, measured with forward hooks on one example batch.

This module exists to keep the cost model's inputs apart from the quantization machinery: one
float forward pass with counting hooks gives, per quantized weight, its parameter count, its MACs
and which activation quantizer's output it consumes, and per activation quantizer how many values
it quantizes. Nothing here changes the model; the hooks are removed before returning.

MACs per weight (`placement.WeightSite.use`), per sample:
- conv / linear: output numel x weights per output element (`weight[0].numel()`);
- transposed conv: input numel x weights per input channel (`weight[0].numel()`: each input value
  meets all of them, whatever the stride);
- MultiheadAttention projections: numel of the input they project x output features (in_proj_weight
  projects query, key and value: tokens x 3d x d for self-attention); its out_proj: attention output
  numel x in_features (the attention never calls out_proj, so its hooks are on the attention);
- embeddings (a lookup) and parameters matched by name only: 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from problems.quantization.placement import WeightSite, site_parameter

Stats = dict[str, dict[str, Any]]
#: MultiheadAttention's projection weights and the inputs (query 0, key 1, value 2) they project
_PROJECTS = {"in_proj_weight": (0, 1, 2), "q_proj_weight": (0,), "k_proj_weight": (1,), "v_proj_weight": (2,)}
_INPUTS = ("query", "key", "value")


def measure(
    run: Callable[[Tensor], Any],
    modules: Mapping[str, nn.Module],
    sites: Mapping[str, WeightSite],
    act_quantizers: Mapping[str, nn.Module],
    example: Tensor,
) -> tuple[Stats, Stats]:
    """(weight stats, activation stats) per sample of `example`, from one call `run(example)`.

    Per quantized weight: `params` (numel), `macs` (see the module doc, summed over calls),
    `act_input` (key of the activation quantizer whose output the layer consumes, matched by tensor
    address at its first call, or None) and `calls`. Per activation quantizer: `numel` quantized
    (summed over calls) and `calls`. `modules`: the model's `named_modules()`, where `sites` are. The
    caller picks the mode `run` works in (float weights, no autograd).
    """
    n = example.shape[0]
    params = {k: site_parameter(modules, s) for k, s in sites.items()}
    layer_stats = {
        k: {"params": p.numel(), "macs": 0, "act_input": None, "calls": 0} for k, p in params.items()
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

    def site_hooks(key: str, site: WeightSite, w: Tensor):
        st = layer_stats[key]

        def pre(m: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
            xs = [*args, *(kwargs[k] for k in _INPUTS if k in kwargs)]
            if st["calls"] == 0 and xs and isinstance(xs[0], Tensor) and site.use != "attention_out":
                st["act_input"] = producer.get(xs[0].data_ptr())
            if site.use == "transposed":
                st["macs"] += xs[0].numel() // n * w[0].numel()
            elif site.use == "attention":
                st["macs"] += sum(xs[i].numel() for i in _PROJECTS[site.attr]) // n * m.embed_dim

        def post(m: nn.Module, _args: Any, out: Any) -> None:
            if site.use == "layer":
                st["macs"] += out.numel() // n * w[0].numel()
            elif site.use == "attention_out":
                st["macs"] += out[0].numel() // n * m.out_proj.in_features
            st["calls"] += 1

        return pre, post

    handles = [q.register_forward_hook(act_hook(k)) for k, q in act_quantizers.items()]
    for k, site in sites.items():
        caller = modules[site.caller]
        pre, post = site_hooks(k, site, params[k])
        handles.append(caller.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(caller.register_forward_hook(post))
    try:
        run(example)
    finally:
        for h in handles:
            h.remove()
    return layer_stats, acts
