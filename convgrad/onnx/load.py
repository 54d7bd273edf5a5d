"""convgrad.onnx.load: an ONNX graph as a convgrad Module that evaluates, differentiates and trains.

OnnxModel keeps the graph's nodes in their (topological) file order, each an import_ops.Op.
forward runs them and remembers the order; backward runs their backward in reverse, adding
the gradients of tensors used by several nodes (the fan-out rule) and adding initializers'
gradients into their Parameters. Float initializers are Parameters named as in the file (for
torch.onnx.export: torch's state_dict names), BatchNormalization statistics are buffers, and
integer initializers and Constant nodes are constants. Dropout runs as identity.
"""
from __future__ import annotations

import os

import numpy as np

from ..nn.module import Module, Parameter
from ._proto import OnnxError, onnx_package
from . import import_ops, import_spatial
from .import_ops import CONSTANT_INPUTS

OPS = {**import_ops.OPS, **import_spatial.OPS}       # op_type -> its import_ops.Op class

MIN_OPSET = 13      # Softmax/LogSoftmax along one axis, Slice/Squeeze/Unsqueeze with tensor inputs


class OnnxModel(Module):
    """A convgrad Module running an ONNX graph: input (the graph input's shape, batch free) ->
    output. A graph of several inputs takes them positionally, forward(x1, x2, ...), in the
    file's order; one of several outputs returns a tuple, and its backward takes a tuple of
    gradients (None for an output that gets none). `source` names the file in error messages.
    (In recorded mode a module call differentiates its first output only: a graph of several
    outputs is trained in explicit mode.)"""

    def __init__(self, proto, source: str = "<ONNX model>"):
        super().__init__()
        onnx = onnx_package()
        graph = proto.graph
        object.__setattr__(self, "source", source)
        opset = {o.domain: o.version for o in proto.opset_import}.get("", opset_of_ai_onnx(proto))
        if opset < MIN_OPSET:
            raise OnnxError(f"{source}: opset {opset} is older than the {MIN_OPSET} convgrad reads")
        initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [v for v in graph.input if v.name not in initializers]
        if not inputs or not graph.output:
            raise OnnxError(f"{source}: expected a graph with inputs and outputs, got inputs "
                            f"{[v.name for v in inputs]} and outputs {[v.name for v in graph.output]}")
        self.input_names = [v.name for v in inputs]
        self.output_names = [v.name for v in graph.output]
        self.input_shapes = [tuple(d.dim_value if d.HasField("dim_value") else None
                                   for d in v.type.tensor_type.shape.dim) for v in inputs]
        self.input_name, self.output_name, self.input_shape = (self.input_names[0], self.output_names[0],
                                                               self.input_shapes[0])
        statistics = {n.input[i] for n in graph.node if n.op_type == "BatchNormalization" for i in (3, 4)
                      if len(n.input) > i}
        as_value = {name for n in graph.node for i, name in enumerate(n.input)
                    if i not in CONSTANT_INPUTS.get(n.op_type, ())}
        constants = {}
        for name, array in initializers.items():
            if not np.issubdtype(array.dtype, np.floating) or name not in as_value | statistics:
                constants[name] = array
            elif name in statistics:
                self.register_buffer(name, np.array(array))
            else:
                self._parameters[name] = Parameter(np.array(array))
        self._nodes = []
        for i, node in enumerate(graph.node):
            where = f"{source}: node {node.name or i!r} ({node.op_type})"
            attrs = {a.name: _attribute(onnx, a) for a in node.attribute}
            if node.domain not in ("", "ai.onnx"):
                raise OnnxError(f"{where}: operator domain {node.domain!r} has no convgrad form")
            if node.op_type == "Constant":
                constants[node.output[0]] = _constant(attrs, where)
                continue
            if node.op_type not in OPS:
                raise OnnxError(f"{where}: operator {node.op_type} has no convgrad form; supported: "
                                f"{', '.join(sorted(OPS))}")
            self._nodes.append((OPS[node.op_type](attrs, where), list(node.input), node.output[0],
                                [o for o in node.output[1:] if o]))
        object.__setattr__(self, "_constants", constants)
        self._check_outputs_used(graph)
        self._input_shapes_seen = None

    def _check_outputs_used(self, graph) -> None:
        """Extra outputs (MaxPool's indices, Dropout's mask, BatchNorm's training statistics) are not computed."""
        used = {n for node in graph.node for n in node.input} | set(self.output_names)
        for op, _, _, extra in self._nodes:
            for name in extra:
                if name in used:
                    raise OnnxError(f"{op.where}: its output {name!r} is used, but convgrad computes only the "
                                    f"first output of this operator")

    # ---- the pass --------------------------------------------------------------------------
    def _value(self, values: dict, name: str):
        if not name:
            return None
        for table in (values, self._constants, self._buffers):
            if name in table:
                return table[name]
        if name in self._parameters:
            return self._parameters[name].data
        raise OnnxError(f"{self.source}: tensor {name!r} is used before any node produces it")

    def forward(self, *xs):
        """One array per graph input, each of its shape (any batch size) -> the graph output (a
        tuple of them for several)."""
        if len(xs) != len(self.input_names):
            raise ValueError(f"{self.source}: the graph takes {len(self.input_names)} input(s) {self.input_names}, "
                             f"got {len(xs)}")
        values = {}
        for name, expected, x in zip(self.input_names, self.input_shapes, xs):
            x = np.asarray(x)
            if x.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected, x.shape)):
                shown = tuple("N" if e is None else e for e in expected)
                raise ValueError(f"{self.source}: input {name!r} expects shape {shown}, got {x.shape}")
            values[name] = x
        for op, inputs, output, _ in self._nodes:
            args = [self._value(values, n) for n in inputs]
            try:
                values[output] = op.forward(args, self.training)
            except OnnxError:
                raise
            except (ValueError, TypeError, IndexError) as exc:
                shapes = [None if a is None else np.shape(a) for a in args]
                raise OnnxError(f"{op.where} on inputs {inputs} of shapes {shapes}: {exc}") from exc
        self._input_shapes_seen = [np.shape(values[n]) for n in self.input_names]
        outs = tuple(values[n] for n in self.output_names)
        return outs if len(outs) > 1 else outs[0]

    def backward(self, grad_out):
        """grad_out (the output's shape; a tuple of them for several outputs, None for one without
        a gradient) -> the input's gradient (a tuple for several inputs); adds the Parameters'
        gradients."""
        self._cached(self._input_shapes_seen)
        several = len(self.output_names) > 1
        if several and (not isinstance(grad_out, (tuple, list)) or len(grad_out) != len(self.output_names)):
            raise ValueError(f"{self.source}: backward of a graph of {len(self.output_names)} outputs takes a tuple "
                             f"of {len(self.output_names)} gradients (None for an output without one), got "
                             f"{type(grad_out).__name__}")
        grads = {}
        for name, g in zip(self.output_names, grad_out if several else (grad_out,)):
            if g is not None:
                grads[name] = np.asarray(g) if name not in grads else grads[name] + np.asarray(g)
        for op, inputs, output, _ in reversed(self._nodes):
            dy = grads.pop(output, None)
            if dy is None:
                continue                       # the output does not reach the model's output
            for name, g in zip(inputs, op.backward(dy)):
                if g is None or not name or name in self._constants or name in self._buffers:
                    continue
                grads[name] = g if name not in grads else grads[name] + g
        for name, p in self._parameters.items():
            if name in grads:
                p.accumulate(grads.pop(name))
        dtype = next(np.asarray(g).dtype for g in (grad_out if several else (grad_out,)) if g is not None)
        dxs = tuple(grads[n] if n in grads else np.zeros(shape, dtype) for n, shape in zip(self.input_names,
                                                                                           self._input_shapes_seen))
        return dxs if len(dxs) > 1 else dxs[0]

    def to(self, dtype) -> "OnnxModel":
        """Parameters, statistics and float constants to dtype."""
        super().to(dtype)
        for name, c in self._constants.items():
            if np.issubdtype(c.dtype, np.floating):
                self._constants[name] = c.astype(dtype)
        return self

    def extra_repr(self) -> str:
        ins = ", ".join(f"{n!r} {s}" for n, s in zip(self.input_names, self.input_shapes))
        return f"{self.source}, {len(self._nodes)} nodes, input{'s' if len(self.input_names) > 1 else ''} {ins}"


def opset_of_ai_onnx(proto) -> int:
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


def _attribute(onnx, attr):
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _plain(value)


def _plain(value):
    """Strings decoded; a float attribute (stored as float32) read as the shortest decimal that
    rounds to it, so torch's momentum 0.1 written as 0.9f comes back as 0.9, not 0.8999999762."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float):
        return float(np.format_float_positional(np.float32(value), unique=True, trim="0"))
    return value


def _constant(attrs: dict, where: str):
    onnx = onnx_package()
    if "value" in attrs:
        return onnx.numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype)
    raise OnnxError(f"{where}: Constant with attributes {sorted(attrs)} is not supported")


def load(path) -> OnnxModel:
    """Read an ONNX file into an OnnxModel. Raises OnnxError naming the file for a missing,
    truncated or foreign file, or an operator convgrad has no form for (naming the node)."""
    onnx = onnx_package()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OnnxError(f"ONNX file {path!r} does not exist")
    try:
        proto = onnx.load(path)
    except Exception as exc:                  # protobuf's DecodeError and friends
        raise OnnxError(f"{path!r} is not a readable ONNX file (truncated or of another format): {exc}") from exc
    if not proto.graph.node or opset_of_ai_onnx(proto) == 0:
        raise OnnxError(f"{path!r} is not an ONNX model (no graph nodes or no ai.onnx opset)")
    try:
        onnx.checker.check_model(proto)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:
        raise OnnxError(f"{path!r} is not a valid ONNX model: {exc}") from exc
    return OnnxModel(proto, source=path)
