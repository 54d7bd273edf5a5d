"""The Tensor ops as forward/backward pairs on arrays, like every other op in the library.

forward(*arrays, **params) -> (y, cache); backward(dy, cache, needs) -> one gradient per array
argument, None where `needs` says that argument wants none. Binary ops broadcast as NumPy (and
torch) do; their backward sums the gradient back over the broadcast axes (`unbroadcast`).
"""
from __future__ import annotations

import numpy as np

from ..functional import activation as A


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g over the axes along which an array of `shape` was broadcast to g's shape."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def _spread(dy: np.ndarray, shape: tuple, dim, keepdim: bool) -> np.ndarray:
    """dy of a reduction over `dim` back to the input's shape (a fresh array)."""
    if dim is not None and not keepdim:
        dy = np.expand_dims(dy, dim)
    return np.array(np.broadcast_to(dy, shape))


# ---- arithmetic ---------------------------------------------------------------------------
def add_forward(a, b):
    return a + b, (np.shape(a), np.shape(b))


def add_backward(dy, cache, needs):
    sa, sb = cache
    return (unbroadcast(dy, sa) if needs[0] else None), (unbroadcast(dy, sb) if needs[1] else None)


def sub_forward(a, b):
    return a - b, (np.shape(a), np.shape(b))


def sub_backward(dy, cache, needs):
    sa, sb = cache
    return (unbroadcast(dy, sa) if needs[0] else None), (unbroadcast(-dy, sb) if needs[1] else None)


def mul_forward(a, b):
    return a * b, (a, b)


def mul_backward(dy, cache, needs):
    a, b = cache
    return (unbroadcast(dy * b, np.shape(a)) if needs[0] else None,
            unbroadcast(dy * a, np.shape(b)) if needs[1] else None)


def div_forward(a, b):
    return a / b, (a, b)


def div_backward(dy, cache, needs):
    a, b = cache
    da = dy / b
    return (unbroadcast(da, np.shape(a)) if needs[0] else None,
            unbroadcast(-da * a / b, np.shape(b)) if needs[1] else None)


def neg_forward(x):
    return -x, None


def neg_backward(dy, cache, needs):
    return -dy


def pow_forward(x, exponent):
    return x ** exponent, (x, exponent)


def pow_backward(dy, cache, needs):
    """d(x^p)/dx = p x^(p-1); exactly 0 for p = 0 (as torch, also at x = 0)."""
    x, p = cache
    if p == 0:
        return np.zeros_like(dy)
    return dy * (p * x ** (p - 1))


def rpow_forward(x, base):
    """base ** x for a Python number base (Tensor.__rpow__); 0 ** -1 = inf as torch, no warning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.asarray(base, x.dtype) ** x
    return y, (x, y, base)


def rpow_backward(dy, cache, needs):
    """d(b^x)/dx = b^x ln b (NaN for b < 0); for b = 0, 0 where x >= 0 (as torch)."""
    x, y, base = cache
    with np.errstate(divide="ignore", invalid="ignore"):
        d = y * np.log(np.asarray(base, y.dtype))
        if base == 0:
            d = np.where(x >= 0, 0.0, d).astype(y.dtype)
        return dy * d


def matmul_forward(a, b):
    return a @ b, (a, b)


def matmul_backward(dy, cache, needs):
    """dA = dY @ B^T, dB = A^T @ dY, with 1-d operands promoted as matmul promotes them and
    batch axes summed back where they were broadcast."""
    a, b = cache
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    dy2 = dy
    if b.ndim == 1:
        dy2 = dy2[..., None]
    if a.ndim == 1:
        dy2 = np.expand_dims(dy2, -2)
    da = unbroadcast(dy2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if needs[0] else None
    db = unbroadcast(np.swapaxes(a2, -1, -2) @ dy2, b2.shape).reshape(b.shape) if needs[1] else None
    return da, db


# ---- element-wise functions --------------------------------------------------------------
def exp_forward(x):
    y = np.exp(x)
    return y, y


def exp_backward(dy, y, needs):
    return dy * y


def log_forward(x):
    return np.log(x), x


def log_backward(dy, x, needs):
    return dy / x


def sqrt_forward(x):
    y = np.sqrt(x)
    return y, y


def sqrt_backward(dy, y, needs):
    return dy / (2 * y)


def abs_forward(x):
    return np.abs(x), x


def abs_backward(dy, x, needs):
    """dy * sign(x), with sign(NaN) = 0 as torch's."""
    sign = np.sign(x)
    sign[np.isnan(sign)] = 0
    return dy * sign


def clamp_forward(x, min=None, max=None):
    y = x if min is None else np.maximum(x, np.asarray(min, x.dtype))
    y = y if max is None else np.minimum(y, np.asarray(max, x.dtype))
    return y, (x, min, max)


def clamp_backward(dy, cache, needs):
    """The gradient passes where min <= x <= max (as torch)."""
    x, lo, hi = cache
    inside = np.ones(x.shape, bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return dy * inside


def _activation(forward, backward):
    """A functional activation pair (forward(x, ...) -> (y, cache), backward(dy, cache)) as an op pair."""
    return forward, lambda dy, cache, needs: backward(dy, cache)


relu_forward, relu_backward = _activation(A.relu_forward, A.relu_backward)
sigmoid_forward, sigmoid_backward = _activation(A.sigmoid_forward, A.sigmoid_backward)
tanh_forward, tanh_backward = _activation(A.tanh_forward, A.tanh_backward)
softmax_forward, softmax_backward = _activation(A.softmax_forward, A.softmax_backward)
log_softmax_forward, log_softmax_backward = _activation(A.log_softmax_forward, A.log_softmax_backward)


# ---- shape ----------------------------------------------------------------------------------
def reshape_forward(x, shape):
    return x.reshape(shape), x.shape


def reshape_backward(dy, in_shape, needs):
    return dy.reshape(in_shape)


def permute_forward(x, dims):
    return x.transpose(dims), dims


def permute_backward(dy, dims, needs):
    return dy.transpose(np.argsort(dims))


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


def getitem_forward(x, index):
    return x[index], (x.shape, x.dtype, index)


def getitem_backward(dy, cache, needs):
    """Scatter dy back into zeros; repeated positions of an integer-array index add."""
    shape, dtype, index = cache
    g = np.zeros(shape, dtype)
    if _is_basic(index):
        g[index] = dy
    else:
        np.add.at(g, index, dy)
    return g


# ---- reductions -------------------------------------------------------------------------
def sum_forward(x, dim=None, keepdim=False):
    return np.asarray(x.sum(axis=dim, keepdims=keepdim)), (x.shape, dim, keepdim)


def sum_backward(dy, cache, needs):
    shape, dim, keepdim = cache
    return _spread(dy, shape, dim, keepdim)


def mean_forward(x, dim=None, keepdim=False):
    count = x.size if dim is None else int(np.prod([x.shape[d] for d in np.atleast_1d(dim)]))
    return np.asarray(x.mean(axis=dim, keepdims=keepdim)), (x.shape, dim, keepdim, count)


def mean_backward(dy, cache, needs):
    shape, dim, keepdim, count = cache
    return _spread(dy / dy.dtype.type(count) if count else dy * np.nan, shape, dim, keepdim)


def amax_forward(x, dim=None, keepdim=False, nan_ties=False):
    y = x.max(axis=dim, keepdims=True)
    out = y if keepdim else (y.reshape(()) if dim is None else np.squeeze(y, dim))
    return out, (x, y, dim, nan_ties)


def amax_backward(dy, cache, needs):
    """The gradient is shared evenly among tied maxima (as torch.amax: a NaN maximum ties with
    nothing, so the gradient is NaN); nan_ties: a NaN maximum's NaNs share it (as torch's
    whole-tensor max())."""
    x, y, dim, nan_ties = cache
    winners = (x == y) | (np.isnan(x) & np.isnan(y)) if nan_ties else x == y
    count = winners.sum(axis=dim, keepdims=True).astype(x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):      # no winner (a NaN maximum): NaN, as torch
        return winners * (dy.reshape(y.shape) / count)


def max_dim_forward(x, dim, keepdim=False):
    """Values and (first) arg-max indices along dim, as torch.max(x, dim)."""
    idx = np.expand_dims(np.argmax(x, axis=dim), dim)
    y = np.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        y, idx = np.squeeze(y, dim), np.squeeze(idx, dim)
    return y, (x.shape, x.dtype, dim, keepdim, idx)


def max_dim_backward(dy, cache, needs):
    """The whole gradient goes to the returned index."""
    shape, dtype, dim, keepdim, idx = cache
    g = np.zeros(shape, dtype)
    if not keepdim:
        dy, idx = np.expand_dims(dy, dim), np.expand_dims(idx, dim)
    np.put_along_axis(g, idx, dy, axis=dim)
    return g


# ---- joining and selecting ----------------------------------------------------------------
def cat_forward(*arrays, dim=0):
    return np.concatenate(arrays, axis=dim), (dim, np.cumsum([a.shape[dim] for a in arrays])[:-1])


def cat_backward(dy, cache, needs):
    dim, splits = cache
    return tuple(np.split(dy, splits, axis=dim))


def stack_forward(*arrays, dim=0):
    return np.stack(arrays, axis=dim), (dim, len(arrays))


def stack_backward(dy, cache, needs):
    dim, n = cache
    return tuple(np.take(dy, i, axis=dim) for i in range(n))


def where_forward(condition, a, b):
    return np.where(condition, a, b), (condition, np.shape(a), np.shape(b))


def where_backward(dy, cache, needs):
    condition, sa, sb = cache
    zero = dy.dtype.type(0)
    return (None,
            unbroadcast(np.where(condition, dy, zero), sa) if needs[1] else None,
            unbroadcast(np.where(condition, zero, dy), sb) if needs[2] else None)


def _comparison(fn):
    def forward(a, b):
        return fn(a, b), None
    return forward


# element-wise comparisons: bool outputs, no backward
COMPARISONS = {"lt": _comparison(np.less), "le": _comparison(np.less_equal), "gt": _comparison(np.greater),
               "ge": _comparison(np.greater_equal), "eq": _comparison(np.equal), "ne": _comparison(np.not_equal)}
