"""A `DeployedModel` as a QDQ ONNX graph, built node by node from its torch.fx trace.

Why our own builder rather than `torch.onnx.export`: the quantizers are ours (hooks and cached
grids, no `torch.fake_quantize_*` ops an exporter would recognise), and a QDQ graph needs each
quantizer at its exact tensor. Tracing with every quantized module kept a leaf maps each fx node to a
module name, so the graph gets:

- weights stored already quantized (int4 where bits <= 4, int8, int16), followed by DequantizeLinear
  (per output channel where the weight quantizer is; fixed-point biases as int32 + DequantizeLinear);
  formats without an integer grid (log2, lq) stored dequantized, as the float values they take;
- activations (module outputs, the model input): QuantizeLinear -> [Clip] -> DequantizeLinear, the
  Clip on the integers where the grid is narrower than its container (3 bits, a narrow-range int8).
  On the integers because ONNX Runtime (1.32) fuses a float Clip -> QuantizeLinear away, changing
  the result (measured: 92 % agreement at 3-bit activations, 100 % with the integer Clip); int4 only
  where the grid fills it (ONNX Runtime has no int4 Clip), narrower grids in int8 / uint8;
- the float ops between them: Conv, Gemm, Relu, Add, Mul, pooling, Flatten, Concat, BatchNormalization.

Anything else (a functional op this table lacks, `padding="same"`, more than 16 bits) is refused with
one line naming the op and its module. Opset 21: the first with int4 and int16 Q/DQ.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import fx, nn

from dse.core.errors import DseError
from problems.quantization.deployed import DeployedModel
from problems.quantization.formats.affine import QParams
from problems.quantization.formats.quantizer import TensorQuantizer
from problems.quantization.placement import require_layer_weights
from problems.quantization.qmodel import INPUT

OPSET = 21
_CONTAINERS = ((4, TensorProto.INT4, TensorProto.UINT4), (8, TensorProto.INT8, TensorProto.UINT8))
_CONTAINERS += ((16, TensorProto.INT16, TensorProto.UINT16),)
_UNARY = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}
_PASS = (nn.Identity, nn.Dropout)
_FUNCS = {operator.add: "Add", torch.add: "Add", operator.mul: "Mul", torch.mul: "Mul"}
_FUNCS.update({F.relu: "Relu", torch.relu: "Relu", operator.sub: "Sub"})


def container(bits: int, signed: bool) -> tuple[int, int, int]:
    """(ONNX element type, min, max) of the smallest Q/DQ integer type holding `bits`."""
    for width, s, u in _CONTAINERS:
        if bits <= width:
            return (s, -(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (u, 0, 2**width - 1)
    raise DseError(f"export: {bits}-bit quantizers have no ONNX Q/DQ type (at most 16 bits)")


class _Leaves(fx.Tracer):
    def __init__(self, keep: set[str]) -> None:
        super().__init__()
        self.keep = keep

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.keep or super().is_leaf_module(m, qualname)


class GraphBuilder:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set()

    def name(self, base: str) -> str:
        base = base.replace(".", "_") or "t"
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, base: str, array: np.ndarray, dtype: int | None = None) -> str:
        name = self.name(base)
        if dtype is None:
            self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        else:
            flat = np.asarray(array).astype(np.int64).reshape(-1).tolist()
            self.inits.append(helper.make_tensor(name, dtype, list(np.shape(array)), flat))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(f"{op}_{base}"), **attrs))
        return out

    def qdq(self, x: str, q: TensorQuantizer, base: str) -> str:
        """[Clip] -> QuantizeLinear -> DequantizeLinear of one activation quantizer at its bits."""
        p = q.params()
        if not isinstance(p, QParams):
            raise DseError(
                f"export: {q.label} in {q.format.name} has no Q/DQ form (integer grids only: "
                "quantization.activations.format affine or fixed_point)"
            )
        if p.binary:
            raise DseError(f"export: {q.label} at 1 bit (sign binarisation) has no Q/DQ form")
        signed = q.format.signed_only or q.mode == "symmetric"
        zp = 0 if signed else int(round(-float(p.qmin)))
        lo, hi = int(round(float(p.qmin))) + zp, int(round(float(p.qmax))) + zp
        dtype, cmin, cmax = container(q.num_bits, signed)
        narrow = (lo, hi) != (cmin, cmax)
        if narrow and q.num_bits <= 4:  # ONNX Runtime has no int4 Clip: narrower grids go in 8 bits
            dtype, cmin, cmax = container(8, signed)
        s, z = (
            self.const(f"{base}_scale", np.float32(float(p.scale))),
            self.const(f"{base}_zp", np.array(zp), dtype),
        )
        y = self.node("QuantizeLinear", [x, s, z], f"{base}_q")
        if narrow:  # on the integers: ONNX Runtime's Clip -> QuantizeLinear fusion drops a float Clip
            bounds = [
                self.const(f"{base}_lo", np.array(lo), dtype),
                self.const(f"{base}_hi", np.array(hi), dtype),
            ]
            y = self.node("Clip", [y, *bounds], f"{base}_clip")
        return self.node("DequantizeLinear", [y, s, z], base)

    def weight(self, w: torch.Tensor, q: TensorQuantizer, base: str) -> str:
        """The weight as integers in its container, then DequantizeLinear (per channel where q is).
        A format without an integer grid (log2, lq) is stored dequantized: its exact values as floats."""
        p = q.params()
        if not isinstance(p, QParams):
            return self.const(f"{base}_dequantized", q.quantize_tensor(w).float().cpu().numpy())
        w64 = w.detach().double().cpu()
        if p.binary:
            ints = torch.where(w64 >= 0, 1.0, -1.0)
        else:
            inv = _tensor(p.inv_scale)
            ints = (w64 * inv).round().clamp(_tensor(p.qmin), _tensor(p.qmax))
        dtype, _, _ = container(max(q.num_bits, 2), True)
        scale = np.asarray(_tensor(p.scale).reshape(-1).float().numpy(), dtype=np.float32)
        attrs = {}
        if scale.size > 1:
            attrs["axis"] = 0
        else:
            scale = scale.reshape(())
        data = self.const(f"{base}_int", ints.numpy(), dtype)
        s = self.const(f"{base}_scale", scale)
        z = self.const(f"{base}_zp", np.zeros(scale.shape, dtype=np.int64), dtype)
        return self.node("DequantizeLinear", [data, s, z], base, **attrs)


def _tensor(v: Any) -> torch.Tensor:
    return v.double().cpu() if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=torch.float64)


def build_onnx(deployed: DeployedModel, input_shape: tuple[int, ...], num_classes: int) -> onnx.ModelProto:
    """The QDQ graph of `deployed` at its quantizers' current bits (input "input": (N, *input_shape))."""
    # an Embedding's, ConvTranspose's or attention's weight has no translation below
    require_layer_weights(deployed.weight_sites, "export: Conv1d/Conv2d/Linear weights only")
    acts = {n: q for n, q in deployed.act_quantizers.items() if n != INPUT}
    try:
        gm = fx.GraphModule(deployed.model, _Leaves(set(acts)).trace(deployed.model))
    except Exception as e:  # torch.fx cannot trace data-dependent control flow
        raise DseError(f"export: the model cannot be traced by torch.fx ({str(e).splitlines()[0]})") from None
    g = GraphBuilder()
    modules = dict(gm.named_modules())
    env: dict[str, str] = {}
    outputs: list[str] = []
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            x = g.name("input")
            if deployed.input_quantizer is not None:
                x = g.qdq(x, deployed.input_quantizer, "input_qdq")
            env[n.name] = x
        elif n.op == "call_module":
            env[n.name] = _module(g, deployed, n.target, modules[n.target], [env[a.name] for a in n.args])
            if n.target in acts:
                env[n.name] = g.qdq(env[n.name], acts[n.target], f"{n.target}_qdq")
        elif n.op in ("call_function", "call_method"):
            env[n.name] = _function(g, n, env)
        elif n.op == "output":
            outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else (n.args[0],)
            outputs = [env[o.name] for o in outs]
        else:
            raise DseError(f"export: unsupported graph node {n.op} {n.target}")
    graph = helper.make_graph(
        g.nodes,
        "dse",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", num_classes]) for o in outputs],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dse")
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def _module(g: GraphBuilder, d: DeployedModel, name: str, m: nn.Module, xs: list[str]) -> str:
    if isinstance(m, _PASS):
        return xs[0]
    for kind, op in _UNARY.items():
        if isinstance(m, kind):
            return g.node(op, xs[:1], name)
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        w = g.weight(d.float_weights[name], d.weight_quantizers[name], f"{name}_weight")
        ins = [xs[0], w]
        if m.bias is not None:
            bq = d.bias_quantizers.get(name)
            b = d.float_biases[name]
            ins.append(
                g.weight(b, bq, f"{name}_bias") if bq else g.const(f"{name}_bias", b.float().cpu().numpy())
            )
        if isinstance(m, nn.Linear):
            return g.node("Gemm", ins, name, transB=1)
        if isinstance(m.padding, str) or m.padding_mode != "zeros":
            raise DseError(f"export: {name}: padding {m.padding!r} ({m.padding_mode}) is not supported")
        pads = list(m.padding) * 2
        return g.node(
            "Conv", ins, name, strides=list(m.stride), pads=pads, dilations=list(m.dilation), group=m.groups
        )
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) and set(_tuple(m.output_size)) == {1}:
        return g.node("GlobalAveragePool", xs, name)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
        dims = 1 if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else 2
        k, s, p = (_tuple(v, dims) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        op = "MaxPool" if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) else "AveragePool"
        return g.node(op, xs, name, kernel_shape=k, strides=s, pads=p * 2, ceil_mode=int(m.ceil_mode))
    if isinstance(m, nn.Flatten) and m.end_dim == -1:
        return g.node("Flatten", xs, name, axis=m.start_dim)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):  # left unfolded (quantization.fold_bn: false)
        ps = [m.weight, m.bias, m.running_mean, m.running_var]
        ins = [g.const(f"{name}_{i}", t.detach().float().cpu().numpy()) for i, t in enumerate(ps)]
        return g.node("BatchNormalization", [xs[0], *ins], name, epsilon=m.eps)
    raise DseError(f"export: module {name!r} ({type(m).__name__}) has no ONNX translation here")


def _function(g: GraphBuilder, n: fx.Node, env: dict[str, str]) -> str:
    def arg(a: Any) -> str:
        return env[a.name] if isinstance(a, fx.Node) else g.const("c", np.float32(a))

    target = n.target
    if n.op == "call_method":
        target = {"relu": F.relu, "add": operator.add, "mul": operator.mul, "flatten": torch.flatten}.get(
            n.target, n.target
        )
    if target in _FUNCS:
        return g.node(
            _FUNCS[target], [arg(a) for a in n.args[:2]] if len(n.args) > 1 else [arg(n.args[0])], n.name
        )
    if target is torch.flatten:
        start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
        end = n.args[2] if len(n.args) > 2 else n.kwargs.get("end_dim", -1)
        if end == -1:
            return g.node("Flatten", [arg(n.args[0])], n.name, axis=int(start))
    if target is torch.cat:
        return g.node(
            "Concat",
            [arg(a) for a in n.args[0]],
            n.name,
            axis=int(n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)),
        )
    raise DseError(f"export: {n.op} {getattr(n.target, '__name__', n.target)} has no ONNX translation here")


def _tuple(v: Any, dims: int = 1) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [int(v)] * dims
