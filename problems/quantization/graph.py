"""Layer depths: how far each module's output is from the model input (bisection cuts on it).

Primary: `torch.fx.symbolic_trace` of the float model. Every graph node that computes something
(a module call, a function call such as `+`, a method call such as `.flatten()`) counts one; the
input placeholder is 0 and constants (parameters, buffers) add nothing. A node's depth is 1 + the
largest depth among its inputs, i.e. the length of the LONGEST path from the input, so a skip
connection never makes the layers after it shallower. A module's depth is that of its call node
(a leaf such as Conv2d/ReLU) or, for a module fx inlines (a block), the deepest node inside it; a
module called several times takes the deepest call.

Fallback, where tracing fails (data-dependent control flow, untraceable ops) or misses a module:
run one example through the model and number module calls in the order they finish (forward hooks;
the first call is 1, a container finishes after its children); depth = that index (last call).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable

import torch
from torch import Tensor, fx, nn

FX, CALL_ORDER = "torch.fx", "module call order"
#: modules whose output is new memory (never a view of their input)
FRESH_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: modules that, in evaluation, hand back their input itself (a folded BatchNorm is an Identity)
ALIAS_MODULES = (nn.Identity, nn.Dropout)
#: functions whose output is new memory
FRESH_FUNCTIONS = (operator.add, torch.add)


def fx_depths(model: nn.Module) -> dict[str, int]:
    """Depth of every module that appears in the traced graph (raises where tracing fails)."""
    graph = fx.symbolic_trace(model).graph
    node_depth: dict[fx.Node, int] = {}
    modules: dict[str, int] = {}
    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            node_depth[node] = 0
            continue
        if node.op == "output":
            continue
        d = 1 + max((node_depth.get(a, 0) for a in node.all_input_nodes), default=0)
        node_depth[node] = d
        owners = [qualname for qualname, _ in (node.meta.get("nn_module_stack") or {}).values()]
        if node.op == "call_module":
            owners.append(str(node.target))
        for name in owners:
            modules[name] = max(modules.get(name, 0), d)
    return modules


@torch.inference_mode()
def call_order_depths(model: nn.Module, example: Tensor) -> dict[str, int]:
    """1-based index of each module's last completed call on `example` (forward hooks)."""
    order: dict[str, int] = {}
    count = [0]

    def hook(name: str):
        def record(_m: nn.Module, _args: object, _out: object) -> None:
            count[0] += 1
            order[name] = count[0]

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    training = model.training
    try:
        model.eval()
        model(example)
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return order


def module_depths(model: nn.Module, names: Iterable[str], example: Tensor) -> tuple[dict[str, int], str]:
    """Depths of the named modules and how they were found (`FX` or `CALL_ORDER`).

    A module that neither method sees (never called) is put after everything: the deepest + 1.
    """
    wanted = list(dict.fromkeys(names))
    try:
        depths, source = fx_depths(model), FX
    except Exception:  # noqa: BLE001 - any tracing failure means: use the call order instead
        depths, source = {}, CALL_ORDER
    if any(n not in depths for n in wanted):
        depths, source = call_order_depths(model, example), CALL_ORDER
    deepest = max(depths.values(), default=0)
    return {n: depths.get(n, deepest + 1) for n in wanted}, source


def may_run_in_place(model: nn.Module, types: tuple[type[nn.Module], ...]) -> set[str]:
    """Names of the modules of `types` (e.g. ReLU) whose input is new memory that nothing else reads,
    so that they may overwrite it (`inplace=True`): saves allocating their output on every call.

    Found on the `torch.fx` graph: the input must come from a module or function that makes new
    memory (through modules that alias it, such as a folded BatchNorm's Identity), with this module
    as its only reader, and the module must be called once. Where tracing fails: none.
    """
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - untraceable: keep every module as it is
        return set()
    modules = dict(traced.named_modules())

    def fresh_and_single(node: object) -> bool:
        if not isinstance(node, fx.Node) or len(node.users) != 1:
            return False
        if node.op == "call_module":
            module = modules[str(node.target)]
            if isinstance(module, ALIAS_MODULES):
                return bool(node.args) and fresh_and_single(node.args[0])
            return isinstance(module, FRESH_MODULES)
        return node.op == "call_function" and node.target in FRESH_FUNCTIONS

    calls = Counter(str(n.target) for n in traced.graph.nodes if n.op == "call_module")
    return {
        str(n.target)
        for n in traced.graph.nodes
        if n.op == "call_module"
        and isinstance(modules[str(n.target)], types)
        and calls[str(n.target)] == 1
        and bool(n.args)
        and fresh_and_single(n.args[0])
    }
