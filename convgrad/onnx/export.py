"""convgrad.onnx.export: a model as an ONNX file that onnxruntime (or any ONNX runtime) runs.

The model is run once on example_input (in eval mode) while its module tree is walked: each
layer becomes the ONNX operators of export_layers.py, containers (Sequential, Residual, Add,
Concat, BasicBlock) wire them, and the shapes seen give every tensor its static size. Axis 0
(the batch) stays symbolic ("N"). Initializers keep the state_dict names ("0.weight", ...).
A model of several inputs (example_input a tuple) or outputs (forward returns a tuple or list)
is exported from its recorded graph (export_recorded.py), as any forward-only model.
"""
from __future__ import annotations

import os

import numpy as np

from ..checkpoint import atomic_write_bytes
from ..nn.blocks import BasicBlock
from ..nn.containers import Add, Concat, Residual
from ..nn.module import Module, Sequential
from . import export_layers
from ._proto import DEFAULT_OPSET, IR_VERSION, OPSETS, OnnxError, onnx_package


class GraphBuilder:
    """Collects nodes and initializers; hands out unique tensor names."""

    def __init__(self, onnx, dtype, opset: int, model=None):
        self.onnx, self.dtype, self.opset = onnx, np.dtype(dtype), opset
        self.nodes, self.initializers, self._names = [], [], set()
        # parameters and buffers by identity: their state_dict names, and each written once
        self.known = {} if model is None else {id(p): n for n, p in model.named_parameters()}
        if model is not None:
            self.known.update({id(b): n for n, b in model.named_buffers()})
        self.module_paths = {} if model is None else {id(m): n for n, m in model.named_modules()}
        self._written = {}

    def param(self, p, hint: str) -> str:
        """A Parameter, Tensor or array as a graph tensor, one per object: the model's parameters
        and buffers as initializers under their state_dict names (what an importer trains), any
        other value as a Constant node; an object carrying an `onnx_name` is in the graph already."""
        if getattr(p, "onnx_name", None):
            return p.onnx_name
        if id(p) not in self._written:
            data = p if isinstance(p, np.ndarray) else p.data
            name = (self._initializer(self.known[id(p)], data) if id(p) in self.known
                    else self.constant(hint, data, data.dtype))
            self._written[id(p)] = (name, p)        # p kept alive: its id stays its own
        return self._written[id(p)][0]

    def fresh(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def _initializer(self, name: str, array) -> str:
        name = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def constant(self, hint: str, array, dtype=None) -> str:
        """A Constant node (not a parameter): in the model's dtype unless dtype is given."""
        array = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        out = self.fresh(f"{hint}/Constant")
        self.nodes.append(self.onnx.helper.make_node("Constant", [], [out], name=out,
                                                     value=self.onnx.numpy_helper.from_array(array, out)))
        return out

    def ints(self, path: str, values) -> str:
        return self.constant(path, np.asarray(values, np.int64), np.int64)

    def node(self, op: str, inputs, path: str, **attrs) -> str:
        """Add one node with one output; returns the output's name."""
        out = self.fresh(f"{path}/{op}" if path else op)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


def walk(g: GraphBuilder, module: Module, x, name: str, path: str):
    """Emit module applied to the tensor `name` (whose value is x): returns (value, name) of the output."""
    if isinstance(module, Sequential):
        for child_name, child in module.named_children():
            x, name = walk(g, child, x, name, _join(path, child_name))
        return x, name
    if isinstance(module, Residual):
        yb, nb = walk(g, module.body, x, name, _join(path, "body"))
        ys, ns = (x, name) if module.shortcut is None else walk(g, module.shortcut, x, name, _join(path, "shortcut"))
        return yb + ys, g.node("Add", [nb, ns], path)
    if isinstance(module, (Add, Concat)):
        outs = [walk(g, child, x, name, _join(path, n)) for n, child in module.named_children()]
        if isinstance(module, Concat):
            axis = module.dim % outs[0][0].ndim
            return np.concatenate([v for v, _ in outs], axis=axis), g.node("Concat", [n for _, n in outs], path,
                                                                           axis=axis)
        value, out = outs[0]
        for v, n in outs[1:]:
            value, out = value + v, g.node("Add", [out, n], path)
        return value, out
    if isinstance(module, BasicBlock):
        y, n = x, name
        for child in ("conv1", "bn1"):
            y, n = walk(g, getattr(module, child), y, n, _join(path, child))
        y, n = np.maximum(y, 0), g.node("Relu", [n], _join(path, "relu1"))
        for child in ("conv2", "bn2"):
            y, n = walk(g, getattr(module, child), y, n, _join(path, child))
        ys, ns = (x, name) if module.shortcut is None else walk(g, module.shortcut, x, name, _join(path, "shortcut"))
        return np.maximum(y + ys, 0), g.node("Relu", [g.node("Add", [n, ns], path)], _join(path, "relu2"))
    emit = export_layers.EMITTERS.get(type(module))
    if emit is None:                    # any other Module: its forward, run on Tensors, as recorded
        from .export_recorded import trace
        ys, outs, multi = trace(g, module, (x,), (name,), path)
        if multi:
            raise OnnxError(f"convgrad.onnx.export: {type(module).__name__} at {path!r} returns {len(ys)} outputs; "
                            f"inside a container a module must return one Tensor")
        return ys[0], outs[0]
    out = emit(g, module, x, name, path)          # first: a layer without an ONNX form is named before it runs
    return module(x), out


def _walkable(model: Module) -> bool:
    return isinstance(model, (Sequential, Residual, Add, Concat, BasicBlock)) or type(model) in export_layers.EMITTERS


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _batch_shape(value: np.ndarray, batch: int) -> list:
    """Axis 0 symbolic ("N") when it is the batch, the others static."""
    return ["N", *value.shape[1:]] if value.ndim and value.shape[0] == batch else list(value.shape)


def _value_info(onnx, name: str, value: np.ndarray, shape):
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), shape)


def _output_shapes(onnx, proto, ys, batch: int) -> None:
    """Give each graph output the shape ONNX's shape inference derives from the symbolic inputs
    (so an axis that follows the batch elsewhere than axis 0 stays symbolic); where inference
    cannot tell, the example's shape with axis 0 symbolic when it is the batch."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True).graph.output
    except Exception:
        inferred = [None] * len(ys)
    for out, info, y in zip(proto.graph.output, inferred, ys):
        shape = []
        if info is not None:
            shape = [d.dim_param or d.dim_value if (d.dim_param or d.HasField("dim_value")) else None
                     for d in info.type.tensor_type.shape.dim]
        if len(shape) != y.ndim or None in shape or any(isinstance(s, int) and s != n for s, n in zip(shape, y.shape)):
            shape = _batch_shape(y, batch)
        out.CopyFrom(onnx.helper.make_tensor_value_info(out.name, out.type.tensor_type.elem_type, shape))


def _inputs(example_input) -> list:
    """example_input as a list of float arrays (a tuple: one per input; anything else, a nested
    list included, is one array)."""
    xs = list(example_input) if isinstance(example_input, tuple) else [example_input]
    if not xs:
        raise OnnxError("convgrad.onnx.export: example_input is empty; give one array per model input")
    xs = [np.asarray(x) for x in xs]
    for i, x in enumerate(xs):
        if not np.issubdtype(x.dtype, np.floating) or x.ndim < 1:
            which = f"example_input[{i}]" if len(xs) > 1 else "example_input"
            raise OnnxError(f"convgrad.onnx.export: {which} must be a float array (N, ...), "
                            f"got {x.dtype} of shape {x.shape}")
    return xs


def _names(given, n: int, default: list, what: str) -> list:
    if given is None:
        return default
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != n or len(set(given)) != n or not all(isinstance(s, str) and s for s in given):
        raise OnnxError(f"convgrad.onnx.export: {what} must be {n} distinct non-empty strings, got {given!r}")
    return given


def to_model_proto(model: Module, example_input, opset: int = DEFAULT_OPSET, metadata: dict | None = None,
                   input_names=None, output_names=None):
    """The ONNX ModelProto of model, checked by onnx.checker (arguments as export's)."""
    onnx = onnx_package()
    if not isinstance(model, Module):
        raise TypeError(f"convgrad.onnx.export: model must be a convgrad Module, got {type(model).__name__}")
    if opset not in OPSETS:
        raise OnnxError(f"convgrad.onnx.export: opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    xs = _inputs(example_input)
    in_names = _names(input_names, len(xs), ["input"] if len(xs) == 1 else [f"input_{i}" for i in range(len(xs))],
                      "input_names")
    was_training = model.training
    model.eval()
    try:
        g = GraphBuilder(onnx, xs[0].dtype, opset, model)
        for name in in_names:
            g.fresh(name)
        if len(xs) == 1 and _walkable(model):
            y, out = walk(g, model, xs[0], in_names[0], "")
            ys, outs = [y], [out]
        else:
            from .export_recorded import trace
            ys, outs, _ = trace(g, model, xs, in_names, "")
    finally:
        model.train(was_training)
    ys = [np.asarray(y) for y in ys]
    if output_names is not None:
        out_names = _names(output_names, len(outs), None, "output_names")
        clash = set(out_names) & (set(in_names) | g._names)
        if clash:
            raise OnnxError(f"convgrad.onnx.export: output_names {sorted(clash)} are names of the graph already")
        for out, name in zip(outs, out_names):
            g.nodes.append(onnx.helper.make_node("Identity", [out], [name], name=name))
        outs = out_names
    else:                       # an input or a repeated tensor as an output: an Identity node of its own
        seen = set(in_names)
        for i, out in enumerate(outs):
            if out in seen:
                outs[i] = g.node("Identity", [out], "output")
            seen.add(outs[i])
    batch = xs[0].shape[0]
    graph = onnx.helper.make_graph(g.nodes, "convgrad",
                                   [_value_info(onnx, n, x, _batch_shape(x, batch)) for n, x in zip(in_names, xs)],
                                   [_value_info(onnx, n, y, None) for n, y in zip(outs, ys)],
                                   initializer=g.initializers)
    proto = onnx.helper.make_model(graph, producer_name="convgrad", ir_version=IR_VERSION,
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    _output_shapes(onnx, proto, ys, batch)
    if metadata:
        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(proto)
    return proto


def export(model: Module, example_input, path, opset: int = DEFAULT_OPSET, metadata: dict | None = None,
           input_names=None, output_names=None) -> None:
    """Write model as ONNX to path (atomically).

    example_input: an array (N, ...) of the input's shape and dtype, or a tuple of them for a
    model of several inputs (forward(x1, x2, ...)); a forward returning a tuple or list gives
    one graph output per element. Axis 0 of every input and output whose size is the first
    input's batch is exported as dynamic ("N"). input_names / output_names: the graph's names
    (default "input" or "input_0", "input_1", ...; outputs named after the node making them).
    metadata: str -> str pairs stored as the model's metadata_props. Raises OnnxError naming a
    layer or op without an ONNX form.
    """
    proto = to_model_proto(model, example_input, opset, metadata, input_names, output_names)
    atomic_write_bytes(os.fspath(path), proto.SerializeToString())
