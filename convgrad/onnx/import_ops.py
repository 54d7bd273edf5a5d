"""Each ONNX operator convgrad imports, as a forward/backward pair on convgrad's functional ops
(the spatial ones — convolutions, pools, Resize, Pad — are in import_spatial.py).

OPS maps an op_type to a class built with the node's attributes (a dict); `forward(inputs,
training)` gets the input arrays (None for an omitted optional input) and returns the output
array, keeping what its backward needs; `backward(dy)` returns one gradient per input (None
for integer inputs such as shapes and for anything not differentiable). Only the attribute
values torch.onnx.export and convgrad.onnx.export write are accepted; others raise OnnxError.
"""
from __future__ import annotations

import math

import numpy as np

from ..functional import activation as A
from ..functional import normalization as N
from ._proto import OnnxError


def unbroadcast(grad, shape):
    """Sum grad over the axes numpy broadcast to reach it from `shape`."""
    if grad.shape == tuple(shape):
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class Op:
    """Base: attrs checked against the accepted set; subclasses implement forward/backward."""
    allowed: dict = {}            # attribute -> the values accepted (None: any)

    def __init__(self, attrs: dict, where: str):
        self.attrs, self.where, self.cache = attrs, where, None
        for key, value in attrs.items():
            if key not in self.allowed:
                raise OnnxError(f"{where}: attribute {key}={value!r} is not supported")
            if self.allowed[key] is not None and value not in self.allowed[key]:
                raise OnnxError(f"{where}: attribute {key}={value!r} is not supported "
                                f"(supported: {self.allowed[key]})")

    def get(self, key, default=None):
        return self.attrs.get(key, default)

    def backward(self, dy):
        raise OnnxError(f"{self.where}: has no gradient")


# ---- normalisation ------------------------------------------------------------------------------
class BatchNormalization(Op):
    """Inference form (stored statistics); in training mode (the Module's .train()) batch
    statistics, the stored ones updated with momentum 1 - ONNX's momentum, as torch does.
    training_mode=1 (a graph exported in training mode): batch statistics always; the stored
    ones are updated only while the Module trains (the node's running-statistics outputs are
    not computed)."""
    allowed = {"epsilon": None, "momentum": None, "training_mode": (0, 1), "spatial": (1,)}

    def forward(self, inputs, training):
        x, scale, bias, mean, var = inputs
        batch_statistics = training or bool(self.get("training_mode", 0))
        if batch_statistics and not training:          # statistics read, not updated
            mean, var = mean.copy(), var.copy()
        y, self.cache = N.batch_norm_forward(x, mean, var, scale, bias, batch_statistics,
                                             1.0 - self.get("momentum", 0.9), self.get("epsilon", 1e-5))
        return y

    def backward(self, dy):
        dx, dw, db = N.batch_norm_backward(dy, self.cache)
        return [dx, dw, db, None, None]


class LayerNormalization(Op):
    allowed = {"axis": None, "epsilon": None, "stash_type": (1,)}

    def forward(self, inputs, training):
        x, scale, bias = (inputs + [None])[:3]
        shape = x.shape[self.get("axis", -1) % x.ndim:]
        if scale.shape != shape:
            raise OnnxError(f"{self.where}: scale of shape {scale.shape} for normalised dims {shape} is not supported")
        y, self.cache = N.layer_norm_forward(x, shape, scale, bias, self.get("epsilon", 1e-5))
        return y

    def backward(self, dy):
        return list(N.layer_norm_backward(dy, self.cache))


class InstanceNormalization(Op):
    """Per sample and channel over the positions: group norm with one channel per group."""
    allowed = {"epsilon": None}

    def forward(self, inputs, training):
        x, scale, bias = inputs
        y, self.cache = N.group_norm_forward(x, x.shape[1], scale, bias, self.get("epsilon", 1e-5))
        return y

    def backward(self, dy):
        return list(N.group_norm_backward(dy, self.cache))


# ---- dense and element-wise -----------------------------------------------------------------------
class Gemm(Op):
    """y = alpha * A' B' + beta * C, A' = A or A^T (transA), B' likewise."""
    allowed = {"alpha": None, "beta": None, "transA": (0, 1), "transB": (0, 1)}

    def forward(self, inputs, training):
        a, b, c = (inputs + [None])[:3]
        a2 = a.T if self.get("transA", 0) else a
        b2 = b.T if self.get("transB", 0) else b
        self.cache = (a2, b2, None if c is None else c.shape)
        y = self.get("alpha", 1.0) * (a2 @ b2) if self.get("alpha", 1.0) != 1.0 else a2 @ b2
        if c is not None:
            y = y + (c if self.get("beta", 1.0) == 1.0 else self.get("beta", 1.0) * c)
        return y

    def backward(self, dy):
        a2, b2, c_shape = self.cache
        alpha, beta = self.get("alpha", 1.0), self.get("beta", 1.0)
        da, db = alpha * (dy @ b2.T), alpha * (a2.T @ dy)
        da = da.T if self.get("transA", 0) else da
        db = db.T if self.get("transB", 0) else db
        dc = None if c_shape is None else beta * unbroadcast(dy, c_shape)
        return [da, db, dc]


class MatMul(Op):
    def forward(self, inputs, training):
        a, b = inputs
        if a.ndim < 2 or b.ndim != 2:
            raise OnnxError(f"{self.where}: MatMul of shapes {a.shape} @ {b.shape} (only (..., k) @ (k, m))")
        self.cache = (a, b)
        return a @ b

    def backward(self, dy):
        a, b = self.cache
        return [dy @ b.T, (a.reshape(-1, a.shape[-1]).T @ dy.reshape(-1, dy.shape[-1]))]


class _Binary(Op):
    def forward(self, inputs, training):
        a, b = inputs
        self.cache = (a, b)
        return self.fn(a, b)

    def backward(self, dy):
        a, b = self.cache
        da, db = self.grads(dy, a, b)
        return [None if not _floating(a) else unbroadcast(da, np.shape(a)),
                None if not _floating(b) else unbroadcast(db, np.shape(b))]


def _floating(v) -> bool:
    return np.issubdtype(np.asarray(v).dtype, np.floating)


class Add(_Binary):
    fn = staticmethod(np.add)
    grads = staticmethod(lambda dy, a, b: (dy, dy))


class Sub(_Binary):
    fn = staticmethod(np.subtract)
    grads = staticmethod(lambda dy, a, b: (dy, -dy))


class Mul(_Binary):
    fn = staticmethod(np.multiply)
    grads = staticmethod(lambda dy, a, b: (dy * b, dy * a))


class Div(_Binary):
    @staticmethod
    def fn(a, b):
        if not _floating(a):
            return a // b                     # integer division, as ONNX (shape arithmetic)
        return a / b

    grads = staticmethod(lambda dy, a, b: (dy / b, -dy * a / (b * b)))


class _Unary(Op):
    """An activation from convgrad.functional.activation: (forward, backward) and its arguments."""
    fns = None

    def args(self):
        return ()

    def forward(self, inputs, training):
        y, self.cache = self.fns[0](inputs[0], *self.args(), where=self.where)
        return y

    def backward(self, dy):
        return [self.fns[1](dy, self.cache)]


class Relu(_Unary):
    fns = (A.relu_forward, A.relu_backward)


class Sigmoid(_Unary):
    fns = (A.sigmoid_forward, A.sigmoid_backward)


class Tanh(_Unary):
    fns = (A.tanh_forward, A.tanh_backward)


class LeakyRelu(_Unary):
    allowed = {"alpha": None}
    fns = (A.leaky_relu_forward, A.leaky_relu_backward)

    def args(self):
        return (self.get("alpha", 0.01),)


class Elu(_Unary):
    allowed = {"alpha": None}
    fns = (A.elu_forward, A.elu_backward)

    def args(self):
        return (self.get("alpha", 1.0),)


class Gelu(_Unary):
    allowed = {"approximate": ("none", "tanh")}
    fns = (A.gelu_forward, A.gelu_backward)

    def args(self):
        return (self.get("approximate", "none"),)


class Softmax(_Unary):
    allowed = {"axis": None}
    fns = (A.softmax_forward, A.softmax_backward)

    def args(self):
        return (self.get("axis", -1),)


class LogSoftmax(Softmax):
    fns = (A.log_softmax_forward, A.log_softmax_backward)


class Softplus(Op):
    """log(1 + exp(x)), exactly (no threshold)."""
    def forward(self, inputs, training):
        self.cache = inputs[0]
        return np.logaddexp(0, inputs[0])

    def backward(self, dy):
        return [dy * A.sigmoid(self.cache)]


class Erf(Op):
    def forward(self, inputs, training):
        self.cache = inputs[0]
        return A.erf(inputs[0])

    def backward(self, dy):
        x = self.cache
        return [dy * (2 / math.sqrt(math.pi)) * np.exp(-x * x)]


# ---- shapes and data movement -----------------------------------------------------------------------
class _Reshaping(Op):
    """An op that only rearranges its first input; backward reshapes the gradient back."""
    def forward(self, inputs, training):
        x = inputs[0]
        self.cache = x.shape
        return x.reshape(self.out_shape(x, inputs))

    def backward(self, dy):
        return [dy.reshape(self.cache)] + [None] * 3


class Reshape(_Reshaping):
    allowed = {"allowzero": (0,)}

    def out_shape(self, x, inputs):
        target = [int(s) for s in inputs[1]]
        return tuple(x.shape[i] if s == 0 else s for i, s in enumerate(target))


class Flatten(_Reshaping):
    allowed = {"axis": None}

    def out_shape(self, x, inputs):
        axis = self.get("axis", 1) % (x.ndim + 1) if x.ndim else 0
        return (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


class Squeeze(_Reshaping):
    def out_shape(self, x, inputs):
        axes = None if len(inputs) < 2 or inputs[1] is None else [int(a) % x.ndim for a in inputs[1]]
        return tuple(s for i, s in enumerate(x.shape) if not (s == 1 and (axes is None or i in axes)))


class Unsqueeze(_Reshaping):
    def out_shape(self, x, inputs):
        rank = x.ndim + len(inputs[1])
        axes = sorted(int(a) % rank for a in inputs[1])
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        return tuple(shape)


class Identity(Op):
    allowed = {"seed": None, "ratio": None}          # Dropout's attributes: Dropout runs as identity

    def forward(self, inputs, training):
        return inputs[0]

    def backward(self, dy):
        return [dy, None, None]


class Transpose(Op):
    allowed = {"perm": None}

    def forward(self, inputs, training):
        x = inputs[0]
        self.perm = self.get("perm", list(range(x.ndim))[::-1])
        return np.transpose(x, self.perm)

    def backward(self, dy):
        return [np.ascontiguousarray(np.transpose(dy, np.argsort(self.perm)))]


class Concat(Op):
    allowed = {"axis": None}

    def forward(self, inputs, training):
        axis = self.attrs["axis"] % inputs[0].ndim
        self.cache = (axis, np.cumsum([v.shape[axis] for v in inputs])[:-1], [_floating(v) for v in inputs])
        return np.concatenate(inputs, axis=axis)

    def backward(self, dy):
        axis, splits, floats = self.cache
        return [np.ascontiguousarray(p) if f else None for p, f in zip(np.split(dy, splits, axis=axis), floats)]


class Slice(Op):
    def forward(self, inputs, training):
        x, starts, ends = inputs[:3]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for a, s, e, st in zip(axes, starts, ends, steps):
            index[int(a) % x.ndim] = slice(int(s), int(min(max(e, -2**62), 2**62)), int(st))
        self.cache = (x.shape, x.dtype, tuple(index))
        return x[tuple(index)]

    def backward(self, dy):
        shape, dtype, index = self.cache
        dx = np.zeros(shape, dtype)
        dx[index] = dy
        return [dx, None, None, None, None]


class Shape(Op):
    allowed = {"start": None, "end": None}

    def forward(self, inputs, training):
        return np.array(inputs[0].shape[self.get("start", 0):self.get("end", None)], np.int64)


class Gather(Op):
    """np.take along axis (negative indices count from the end); on float data the gradient
    adds dy into the gathered positions (repeated indices add)."""
    allowed = {"axis": None}

    def forward(self, inputs, training):
        data, indices = inputs
        indices = np.asarray(indices)
        axis = self.get("axis", 0) % max(np.ndim(data), 1)
        size = np.shape(data)[axis]
        if indices.size and (indices.min() < -size or indices.max() >= size):
            raise OnnxError(f"{self.where}: indices {indices.min()}..{indices.max()} out of range for axis {axis} "
                            f"of size {size}")
        self.cache = (np.shape(data), np.asarray(data).dtype, axis, indices % size if size else indices)
        return np.take(data, indices, axis=axis)

    def backward(self, dy):
        shape, dtype, axis, indices = self.cache
        if not np.issubdtype(dtype, np.floating):
            return [None, None]
        moved = np.zeros((shape[axis],) + shape[:axis] + shape[axis + 1:], dtype)
        k = indices.ndim
        np.add.at(moved, indices, np.moveaxis(dy, list(range(axis, axis + k)), list(range(k))))
        return [np.ascontiguousarray(np.moveaxis(moved, 0, axis)), None]


class Cast(Op):
    """A dtype change; the gradient flows back (cast to the input's dtype) between float types only."""
    allowed = {"to": None, "saturate": None}

    def forward(self, inputs, training):
        from ._proto import onnx_package
        dtype = onnx_package().helper.tensor_dtype_to_np_dtype(self.attrs["to"])
        if _floating(inputs[0]) and not np.issubdtype(dtype, np.floating) and dtype != bool:
            raise OnnxError(f"{self.where}: Cast of a float tensor to {np.dtype(dtype)} (rounding) is not supported")
        self.cache = (np.asarray(inputs[0]).dtype, np.issubdtype(dtype, np.floating))
        return np.asarray(inputs[0]).astype(dtype)

    def backward(self, dy):
        source, to_float = self.cache
        return [dy.astype(source) if to_float and np.issubdtype(source, np.floating) else None]


class Neg(Op):
    def forward(self, inputs, training):
        return -inputs[0]

    def backward(self, dy):
        return [-dy]


class _Elementwise(Op):
    """y = f(x) with dy/dx from x and y."""
    def forward(self, inputs, training):
        x = inputs[0]
        y = self.f(x)
        self.cache = (x, y)
        return y

    def backward(self, dy):
        return [dy * self.df(*self.cache)]


class Exp(_Elementwise):
    f = staticmethod(np.exp)
    df = staticmethod(lambda x, y: y)


class Log(_Elementwise):
    f = staticmethod(np.log)
    df = staticmethod(lambda x, y: 1 / x)


class Sqrt(_Elementwise):
    f = staticmethod(np.sqrt)
    df = staticmethod(lambda x, y: 0.5 / y)


class Abs(_Elementwise):
    f = staticmethod(np.abs)
    df = staticmethod(lambda x, y: np.sign(x))


class Pow(Op):
    """x ** p for a constant exponent p."""
    def forward(self, inputs, training):
        x, p = inputs
        self.cache = (x, p)
        return (x ** p).astype(x.dtype, copy=False)

    def backward(self, dy):
        x, p = self.cache
        return [dy * (p * x ** (p - 1)) if np.all(p != 0) else np.zeros_like(dy), None]


class Clip(Op):
    """The gradient passes where min <= x <= max (as torch.clamp)."""
    def forward(self, inputs, training):
        x, lo, hi = (inputs + [None, None])[:3]
        self.cache = (x, lo, hi)
        y = x if lo is None else np.maximum(x, lo)
        return y if hi is None else np.minimum(y, hi)

    def backward(self, dy):
        x, lo, hi = self.cache
        inside = np.ones(x.shape, bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return [dy * inside, None, None]


class _Comparison(Op):
    """A bool mask: no gradient flows through it."""
    def forward(self, inputs, training):
        return self.fn(*inputs)

    def backward(self, dy):
        return [None] * 2


class Greater(_Comparison):
    fn = staticmethod(np.greater)


class GreaterOrEqual(_Comparison):
    fn = staticmethod(np.greater_equal)


class Less(_Comparison):
    fn = staticmethod(np.less)


class LessOrEqual(_Comparison):
    fn = staticmethod(np.less_equal)


class Equal(_Comparison):
    fn = staticmethod(np.equal)


class Not(_Comparison):
    fn = staticmethod(np.logical_not)


class Where(Op):
    def forward(self, inputs, training):
        cond, a, b = inputs
        self.cache = (cond, np.shape(a), np.shape(b))
        return np.where(cond, a, b)

    def backward(self, dy):
        cond, sa, sb = self.cache
        zero = dy.dtype.type(0)
        return [None, unbroadcast(np.where(cond, dy, zero), sa), unbroadcast(np.where(cond, zero, dy), sb)]


class _Reduce(Op):
    """ReduceSum/ReduceMean/ReduceMax: axes from the attribute (opset < 18) or the second input."""
    allowed = {"axes": None, "keepdims": (0, 1), "noop_with_empty_axes": (0,)}

    def forward(self, inputs, training):
        x = inputs[0]
        axes = inputs[1] if len(inputs) > 1 and inputs[1] is not None else self.get("axes")
        axes = tuple(range(x.ndim)) if axes is None or len(axes) == 0 else tuple(int(a) % x.ndim for a in axes)
        keep = bool(self.get("keepdims", 1))
        y = self.reduce(x, axes)
        self.cache = (x, y, axes)
        return y if keep else np.squeeze(y, axes)

    def backward(self, dy):
        x, y, axes = self.cache
        dy = dy.reshape(y.shape)
        return [np.broadcast_to(self.spread(dy, x, y, axes), x.shape).astype(x.dtype, copy=True), None]


class ReduceSum(_Reduce):
    reduce = staticmethod(lambda x, axes: x.sum(axis=axes, keepdims=True))
    spread = staticmethod(lambda dy, x, y, axes: dy)


class ReduceMean(_Reduce):
    reduce = staticmethod(lambda x, axes: x.mean(axis=axes, keepdims=True))
    spread = staticmethod(lambda dy, x, y, axes: dy / dy.dtype.type(math.prod(x.shape[a] for a in axes)))


class ReduceMax(_Reduce):
    """The gradient is shared evenly among tied maxima (as torch.amax)."""
    reduce = staticmethod(lambda x, axes: x.max(axis=axes, keepdims=True))

    @staticmethod
    def spread(dy, x, y, axes):
        winners = x == y
        return winners * (dy / winners.sum(axis=axes, keepdims=True).astype(x.dtype))


OPS = {cls.__name__: cls for cls in (
    Neg, Exp, Log, Sqrt, Abs, Pow, Clip, Greater, GreaterOrEqual, Less, LessOrEqual, Equal, Not, Where,
    ReduceSum, ReduceMean, ReduceMax, BatchNormalization,
    LayerNormalization, InstanceNormalization, Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, LeakyRelu, Elu,
    Gelu, Softmax, LogSoftmax, Softplus, Erf, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Transpose, Concat,
    Slice, Shape, Gather, Cast)}
OPS["Dropout"] = Identity
# inputs that are settings, not values to train: a float initializer used only here is a constant
CONSTANT_INPUTS = {"Resize": {1, 2, 3}, "Clip": {1, 2}, "Pow": {1}, "Pad": {1, 2, 3}}
