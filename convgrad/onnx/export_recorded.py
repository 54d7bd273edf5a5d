"""Export by reading the recorded graph: a Module without an ONNX emitter of its own (a
forward-only model, or a custom Module) is run on Tensors and its nodes are translated.

The module is run twice, on the example batch and on one a row larger with other values; the
two graphs must match node for node. What differs tells what depends on the input: a
reshape's size that follows the batch becomes dynamic (0 = "copy axis 0"), while a constant
that differs (a tensor taken out of the graph by .detach() or .numpy() and used again) has no
ONNX form and is refused. Module calls in the graph (layers, explicit modules) are exported by
export.walk; Tensor and functional ops by RECORDED_OPS below.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..autograd import Tensor, enable_grad, graph_nodes
from .. import nn
from . import export_layers as L
from ._proto import OnnxError


class Named(SimpleNamespace):
    """A tensor of the graph handed to a layer emitter in place of a Parameter: .data, .onnx_name."""


def _run(module, xs):
    """module.forward on Tensors of xs: (input Tensors, output Tensors, whether the forward returned
    a tuple or list, the recorded nodes reaching any output in creation order)."""
    ts = [Tensor(x, requires_grad=True) for x in xs]
    shapes = ", ".join(str(x.shape) for x in xs)
    try:
        with enable_grad():
            out = module.forward(*ts)
    except (TypeError, ValueError, IndexError) as exc:
        count = "one Tensor" if len(xs) == 1 else f"{len(xs)} Tensors"
        raise OnnxError(f"convgrad.onnx.export: {type(module).__name__}.forward on {count} of shape {shapes} "
                        f"failed ({type(exc).__name__}: {exc}); "
                        f"export needs a forward of Tensor inputs made of Tensor ops, functional ops and Module "
                        f"calls (pass one example array per input, a tuple for several)") from exc
    multi = isinstance(out, (tuple, list))
    outs = list(out) if multi else [out]
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            what = f"output {i} of {type(module).__name__}.forward" if multi else f"{type(module).__name__}.forward"
            raise OnnxError(f"convgrad.onnx.export: {what} returned a {type(o).__name__}, not a recorded Tensor, "
                            f"so it has no ONNX form")
    if not outs:
        raise OnnxError(f"convgrad.onnx.export: {type(module).__name__}.forward returned no output")
    nodes = {n.seq: n for o in outs for n in graph_nodes(o)}
    return ts, outs, multi, [nodes[k] for k in sorted(nodes)]


def _second_input(x, batch):
    """Another input of x's kind: one more row when axis 0 is the batch, other values of a similar scale."""
    rng = np.random.default_rng(12345)
    scale = float(np.std(x)) or 1.0
    rows = x.shape[0] + 1 if x.ndim and x.shape[0] == batch else None
    shape = x.shape if rows is None else (rows, *x.shape[1:])
    return (rng.standard_normal(shape) * scale + float(np.mean(x))).astype(x.dtype)


def trace(g, module, xs, input_names, path: str):
    """Emit module(*xs) from its recorded graph (xs: the input arrays, whose graph tensors are
    input_names); returns (output values, output names, whether forward returned a tuple/list)."""
    where = f"{type(module).__name__} at {path!r}" if path else type(module).__name__
    batch = xs[0].shape[0]
    ts1, outs1, multi, nodes1 = _run(module, xs)
    _, outs2, _, nodes2 = _run(module, [_second_input(x, batch) for x in xs])
    if [n.op for n in nodes1] != [n.op for n in nodes2] or len(outs1) != len(outs2):
        raise OnnxError(f"convgrad.onnx.export: {where} records a different graph for another input "
                        f"(data-dependent control flow has no ONNX form)")
    names = {id(t): n for t, n in zip(ts1, input_names)}        # Tensor identity -> graph tensor name
    by_node = {}                                                # Node -> its output's name
    arrays = {id(t.data): n for t, n in zip(ts1, input_names)}  # array identity -> name (catches detach())
    for i, (n1, n2) in enumerate(zip(nodes1, nodes2)):
        here = f"{where}, op {i} ({n1.op})"
        emit = RECORDED_OPS.get(n1.op) if n1.module is None else _module_call
        if emit is None:                          # before its operands: the op itself is what cannot be exported
            raise OnnxError(f"convgrad.onnx.export: {here}: the op {n1.op!r} has no ONNX form")
        inputs = []
        for k, (a, b) in enumerate(zip(n1.inputs, n2.inputs)):
            inputs.append(_operand(g, n1, n2, k, a, b, names, by_node, arrays, here, path))
        by_node[n1] = out_name = emit(g, n1, n2, inputs, f"{path}/{n1.op}_{i}" if path else f"{n1.op}_{i}", here)
        _register_outputs(n1, out_name, nodes1, outs1, arrays)
    out_names = []
    for k, o in enumerate(outs1):
        if o.grad_fn is not None:
            out_names.append(by_node[o.grad_fn])
        elif id(o) in names:                                    # an input returned as it is
            out_names.append(names[id(o)])
        else:
            which = f"output {k} of {where}" if multi else f"the output of {where}"
            raise OnnxError(f"convgrad.onnx.export: {which} does not depend on its input")
    return [o.data for o in outs1], out_names, multi


def _register_outputs(node, out_name, nodes, outs, arrays):
    """Remember the output array of node (from a consumer's input or a final output) by identity."""
    for n in nodes:
        for t in n.inputs:
            if t is not None and t.grad_fn is node:
                arrays[id(t.data)] = out_name
                return
    for out in outs:
        if out.grad_fn is node:
            arrays[id(out.data)] = out_name


def _operand(g, n1, n2, k, a, b, names, by_node, arrays, here, path):
    """The graph name of input k of node n1 (n2: the same node of the second run): a node's
    output, an input, a parameter or a constant; None for an argument left out."""
    if a is None:
        return _raw_constant(g, n1, n2, k, here, path)
    if a.grad_fn is not None:
        return by_node[a.grad_fn]
    if id(a) in names:
        return names[id(a)]
    if id(a) in g.known:                         # a Parameter (or a Tensor of the model)
        return g.param(a, f"{path}.param")
    if id(a.data) in arrays:                     # a detached view of a value of this graph
        return arrays[id(a.data)]
    if b is None or np.shape(a.data) != np.shape(b.data) or not np.array_equal(a.data, b.data):
        raise OnnxError(f"convgrad.onnx.export: {here}: input {k} is a tensor computed from the model's input "
                        f"outside the recorded graph (.detach(), .numpy(), .data); it has no ONNX form")
    return g.param(a, f"{path}.const")


def _raw_constant(g, n1, n2, k, here, path):
    """An argument given as a number or array (kept in Node.constants) as a Constant node of its
    dtype; None for an argument left out (bias=None)."""
    if k not in n1.constants:
        return None
    v1, v2 = n1.constants[k], n2.constants.get(k)
    if v2 is None or np.shape(v1) != np.shape(v2) or not np.array_equal(v1, v2):
        raise OnnxError(f"convgrad.onnx.export: {here}: operand {k} changes with the input outside the recorded "
                        f"graph (.detach(), .numpy(), .data); it has no ONNX form")
    return g.constant(f"{path}.const" if path else "const", v1, v1.dtype)


def _value(n, i):
    """The array of input i of node n: a Tensor's data or a constant (None when left out)."""
    t = n.inputs[i] if i < len(n.inputs) else None
    return t.data if t is not None else n.constants.get(i)


# ---- node translators: (g, node, node of the second run, input names, path, where) -> output name ----
def _module_call(g, n1, n2, inputs, path, here):
    from .export import walk
    if len(n1.inputs) != 1 or inputs[0] is None:
        raise OnnxError(f"convgrad.onnx.export: {here}: a module called with {len(n1.inputs)} inputs "
                        f"has no ONNX form here (a Module with its own backward takes one)")
    module_path = g.module_paths.get(id(n1.module), path)
    return walk(g, n1.module, _value(n1, 0), inputs[0], module_path)[1]


def _simple(op):
    return lambda g, n1, n2, inputs, path, here: g.node(op, inputs, path)


def _named(n, inputs, i):
    """Input i of node n as a Parameter-like object for a layer emitter (None when absent)."""
    data = _value(n, i)
    return None if data is None else Named(data=data, onnx_name=inputs[i])


def _reshape(g, n1, n2, inputs, path, here):
    s1, s2 = list(n1.attrs["shape"]), list(n2.attrs["shape"])
    batch1 = _value(n1, 0).shape[0] if _value(n1, 0).ndim else None
    target = []
    for i, (a, b) in enumerate(zip(s1, s2)):
        if a == b:
            target.append(a)
        elif i == 0 and a == batch1:
            target.append(0)                       # follows the batch: copy axis 0
        elif -1 not in s1 and -1 not in target:
            target.append(-1)
        else:
            raise OnnxError(f"convgrad.onnx.export: {here}: reshape to {tuple(s1)} depends on the batch size in "
                            f"a way ONNX's Reshape cannot say")
    return g.node("Reshape", [inputs[0], g.ints(path, target)], path)


def _reduce(op):
    def translate(g, n1, n2, inputs, path, here):
        dim, keep = n1.attrs.get("dim"), int(bool(n1.attrs.get("keepdim", False)))
        axes = None if dim is None else [int(d) for d in np.atleast_1d(dim)]
        if op == "ReduceSum" or g.opset >= 18:    # axes as an input (ReduceSum since 13, the others since 18)
            extra = [] if axes is None else [g.ints(path, axes)]
            return g.node(op, [inputs[0], *extra], path, keepdims=keep)
        return g.node(op, [inputs[0]], path, keepdims=keep, axes=axes)
    return translate


def _getitem(g, n1, n2, inputs, path, here):
    index = n1.attrs["index"]
    if repr(index) != repr(n2.attrs["index"]):
        raise OnnxError(f"convgrad.onnx.export: {here}: the index {index!r} depends on the input")
    parts = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts):
        raise OnnxError(f"convgrad.onnx.export: {here}: indexing with {index!r} (arrays or masks) has no ONNX form; "
                        f"use slices and integers")
    ndim = _value(n1, 0).ndim
    if Ellipsis in parts:
        e = parts.index(Ellipsis)
        fill = ndim - sum(p is not None and p is not Ellipsis for p in parts)
        parts = parts[:e] + (slice(None),) * fill + parts[e + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_axis = 0
    big = np.iinfo(np.int64).max
    for p in parts:
        if p is None:                              # a new axis of size 1
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(p, slice):
            if p != slice(None):
                step = 1 if p.step is None else int(p.step)
                starts.append((0 if step > 0 else -1) if p.start is None else int(p.start))
                ends.append((big if step > 0 else -big) if p.stop is None else int(p.stop))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:                                      # an integer: take one and drop the axis
            i = int(p)
            starts.append(i)
            ends.append(big if i == -1 else i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    y = inputs[0]
    if axes:
        y = g.node("Slice", [y, g.ints(path, starts), g.ints(path, ends), g.ints(path, axes), g.ints(path, steps)],
                   path)
    if squeeze:
        y = g.node("Squeeze", [y, g.ints(path, squeeze)], path)
    if unsqueeze:
        y = g.node("Unsqueeze", [y, g.ints(path, unsqueeze)], path)
    return y if y != inputs[0] else g.node("Identity", [y], path)


def _clamp(g, n1, n2, inputs, path, here):
    dtype = _value(n1, 0).dtype
    bounds = ["" if v is None else g.constant(f"{path}.bound", np.asarray(v, dtype))
              for v in (n1.attrs.get("min"), n1.attrs.get("max"))]
    return g.node("Clip", [inputs[0], *bounds], path)


def _pow(g, n1, n2, inputs, path, here):
    exponent = g.constant(f"{path}.exponent", np.asarray(n1.attrs["exponent"], _value(n1, 0).dtype))
    return g.node("Pow", [inputs[0], exponent], path)


def _softmax(op):
    def translate(g, n1, n2, inputs, path, here):
        return L._softmax(op)(g, SimpleNamespace(dim=n1.attrs.get("dim")), _value(n1, 0), inputs[0], path)
    return translate


def _cat(g, n1, n2, inputs, path, here):
    return g.node("Concat", inputs, path, axis=int(n1.attrs.get("dim", 0)))


def _stack(g, n1, n2, inputs, path, here):
    d = int(n1.attrs.get("dim", 0))
    axis = g.ints(path, [d])
    return g.node("Concat", [g.node("Unsqueeze", [i, axis], path) for i in inputs], path, axis=d)


def _batch_norm(g, n1, n2, inputs, path, here):
    a = n1.attrs
    if a.get("training"):
        raise OnnxError(f"convgrad.onnx.export: {here}: batch_norm with batch statistics (training=True) has no "
                        f"ONNX form; export the model in eval mode")
    layer = SimpleNamespace(running_mean=a.get("running_mean"), running_var=a.get("running_var"),
                            num_features=_value(n1, 0).shape[1], eps=a.get("eps", 1e-5), momentum=a.get("momentum"),
                            weight=_named(n1, inputs, 1), bias=_named(n1, inputs, 2))
    return L._batch_norm(g, layer, _value(n1, 0), inputs[0], path)


def _group_norm(g, n1, n2, inputs, path, here):
    a = n1.attrs
    layer = SimpleNamespace(eps=a.get("eps", 1e-5), num_groups=a["num_groups"], num_channels=_value(n1, 0).shape[1],
                            weight=_named(n1, inputs, 1), bias=_named(n1, inputs, 2))
    return L._group_norm(g, layer, _value(n1, 0), inputs[0], path)


def _layer_norm(g, n1, n2, inputs, path, here):
    a = n1.attrs
    shape = a["normalized_shape"]
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    layer = SimpleNamespace(eps=a.get("eps", 1e-5), normalized_shape=shape,
                            weight=_named(n1, inputs, 1), bias=_named(n1, inputs, 2))
    return L._layer_norm(g, layer, _value(n1, 0), inputs[0], path)


def _linear(g, n1, n2, inputs, path, here):
    layer = SimpleNamespace(weight=_named(n1, inputs, 1), bias=_named(n1, inputs, 2))
    return L._linear(g, layer, _value(n1, 0), inputs[0], path)


def _conv(transposed):
    def translate(g, n1, n2, inputs, path, here):
        a, w = n1.attrs, _value(n1, 1)
        n = w.ndim - 2

        def tup(v):
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
        padding = a.get("padding", 0)
        layer = SimpleNamespace(n_dims=n, kernel_size=tuple(w.shape[2:]), stride=tup(a.get("stride", 1)),
                                dilation=tup(a.get("dilation", 1)), groups=a.get("groups", 1),
                                padding=padding if isinstance(padding, str) else tup(padding),
                                padding_mode=a.get("padding_mode", "zeros"), output_padding=tup(a.get("output_padding", 0)),
                                weight=_named(n1, inputs, 1), bias=_named(n1, inputs, 2))
        return (L._conv_transpose if transposed else L._conv)(g, layer, _value(n1, 0), inputs[0], path)
    return translate


def _pool(emit, n_dims, **defaults):
    def translate(g, n1, n2, inputs, path, here):
        fields = {**defaults, **n1.attrs}
        if "kernel_size" in fields and fields.get("stride") in (None, ()):
            fields["stride"] = fields["kernel_size"]
        return emit(g, SimpleNamespace(n_dims=n_dims, **fields), _value(n1, 0), inputs[0], path)
    return translate


def _activation(emit, **fields):
    def translate(g, n1, n2, inputs, path, here):
        layer = SimpleNamespace(**{k: n1.attrs.get(k, default) for k, default in fields.items()})
        return emit(g, layer, _value(n1, 0), inputs[0], path)
    return translate


def _resample(emit, field):
    def translate(g, n1, n2, inputs, path, here):
        layer = SimpleNamespace(**{field: n1.attrs["factor"]}, mode="nearest" if emit is L._upsample else None)
        return emit(g, layer, _value(n1, 0), inputs[0], path)
    return translate


def _upsample_zeros(g, n1, n2, inputs, path, here):
    layer = SimpleNamespace(scale_factor=n1.attrs["factor"], mode="zeros")
    return L._upsample(g, layer, _value(n1, 0), inputs[0], path)


def _compare(op, negate=False):
    """A comparison: both operands in one dtype (NumPy's promotion, as convgrad computed it)."""
    def translate(g, n1, n2, inputs, path, here):
        values = [_value(n1, 0), _value(n1, 1)]
        common = np.result_type(*values)
        cast = [name if v.dtype == common else
                g.node("Cast", [name], path, to=g.onnx.helper.np_dtype_to_tensor_dtype(common))
                for name, v in zip(inputs, values)]
        y = g.node(op, cast, path)
        return g.node("Not", [y], path) if negate else y
    return translate


def _identity(g, n1, n2, inputs, path, here):
    return g.node("Identity", [inputs[0]], path)


RECORDED_OPS = {
    # Tensor ops
    "add": _simple("Add"), "sub": _simple("Sub"), "mul": _simple("Mul"), "div": _simple("Div"),
    "neg": _simple("Neg"), "pow": _pow, "matmul": _simple("MatMul"), "exp": _simple("Exp"), "log": _simple("Log"),
    "sqrt": _simple("Sqrt"), "abs": _simple("Abs"), "clamp": _clamp, "relu": _simple("Relu"),
    "sigmoid": _simple("Sigmoid"), "tanh": _simple("Tanh"), "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"), "reshape": _reshape,
    "permute": lambda g, n1, n2, inputs, path, here: g.node("Transpose", inputs, path,
                                                            perm=[int(d) for d in n1.attrs["dims"]]),
    "getitem": _getitem, "sum": _reduce("ReduceSum"), "mean": _reduce("ReduceMean"), "amax": _reduce("ReduceMax"),
    "max": _reduce("ReduceMax"), "cat": _cat, "stack": _stack, "where": _simple("Where"),
    "gt": _compare("Greater"), "lt": _compare("Less"), "ge": _compare("GreaterOrEqual"),
    "le": _compare("LessOrEqual"), "eq": _compare("Equal"), "ne": _compare("Equal", negate=True),
    # functional ops (convgrad.functional called with Tensors)
    "leaky_relu": _activation(L.EMITTERS[nn.LeakyReLU], negative_slope=0.01),
    "elu": _activation(L.EMITTERS[nn.ELU], alpha=1.0), "gelu": _activation(L._gelu, approximate="none"),
    "softplus": _activation(L._softplus, beta=1.0, threshold=20.0), "silu": _activation(L._silu),
    "linear": _linear, "conv": _conv(False), "conv1d": _conv(False), "conv2d": _conv(False), "conv3d": _conv(False),
    "conv_transpose": _conv(True), "dropout": _identity, "dropout2d": _identity,
    "batch_norm": _batch_norm, "layer_norm": _layer_norm, "group_norm": _group_norm,
    "upsample_nearest": _resample(L._upsample, "scale_factor"), "upsample_zeros": _upsample_zeros,
    "downsample": _resample(L._downsample, "factor"),
    **{f"max_pool{n}d": _pool(L._max_pool, n, padding=0, dilation=1, ceil_mode=False, return_indices=False)
       for n in (1, 2, 3)},
    **{f"avg_pool{n}d": _pool(L._avg_pool, n, padding=0, ceil_mode=False, count_include_pad=True,
                              divisor_override=None) for n in (1, 2, 3)},
    **{f"adaptive_avg_pool{n}d": _pool(L.EMITTERS[nn.AdaptiveAvgPool2d], n) for n in (1, 2, 3)},
    **{f"adaptive_max_pool{n}d": _pool(L.EMITTERS[nn.AdaptiveMaxPool2d], n, return_indices=False) for n in (1, 2, 3)},
}
