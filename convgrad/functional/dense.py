"""The fully connected layer and dropout, each a forward and a backward function.

    y, cache = linear_forward(x, w, b)      x (*, in), w (out, in), b (out,) -> y (*, out)
    dx, dw, db = linear_backward(dy, cache)
    y, cache = dropout_forward(x, p, training, rng)
    dx = dropout_backward(dy, cache)
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_bool, check_float_array, check_generator, check_grad, check_real, check_same_dtype
from .._rng import make_rng

__all__ = ["linear", "linear_forward", "linear_backward",
           "dropout", "dropout2d", "dropout_forward", "dropout_backward", "dropout_mask"]


# ---------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------
def _check_linear(x, w, b, where):
    check_float_array(x, where, "input")
    check_float_array(w, where, "weight")
    check_same_dtype(x, w, where, "input", "weight")
    if w.ndim != 2:
        raise ValueError(f"{where}: expected weight of shape (out_features, in_features), got {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"{where}: expected input with last dimension {w.shape[1]} (in_features), "
                         f"got shape {x.shape}")
    if b is not None:
        check_float_array(b, where, "bias")
        check_same_dtype(x, b, where, "input", "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"{where}: expected bias of shape ({w.shape[0]},) (out_features), got {b.shape}")


def linear_forward(x, w, b=None, *, where="linear", keep=True):
    """y = x @ w^T + b over the last axis. x (*, in), w (out, in), b (out,) or None
    -> y (*, out), cache. Leading axes are flattened into one matrix multiply.
    keep=False: no backward will follow; no copy of x is taken and the cache is None."""
    _check_linear(x, w, b, where)
    x2 = x.reshape(math.prod(x.shape[:-1]), w.shape[1])
    if keep and np.may_share_memory(x2, x):
        x2 = x2.copy()         # the weight gradient must not see later writes into the caller's x
    y2 = x2 @ w.T              # (from the copy, while it is in cache)
    if b is not None:
        y2 += b
    if not keep:
        return y2.reshape(*x.shape[:-1], w.shape[0]), None
    return y2.reshape(*x.shape[:-1], w.shape[0]), (x2, w, b is not None, x.shape, where)


def linear_backward(dy, cache):
    """dy (*, out) -> (dx (*, in), dw (out, in), db (out,) or None):
    dx = dy @ w, dw = dy^T @ x, db = sum of dy over the leading axes."""
    x2, w, has_bias, x_shape, where = cache
    dy = check_grad(dy, (*x_shape[:-1], w.shape[0]), x2.dtype, where)
    dy2 = dy.reshape(math.prod(x_shape[:-1]), w.shape[0])
    dx = (dy2 @ w).reshape(x_shape)
    return dx, dy2.T @ x2, (dy2.sum(axis=0) if has_bias else None)


def linear(x, w, b=None):
    """torch.nn.functional.linear: x (*, in), w (out, in), b (out,) -> (*, out)."""
    return linear_forward(x, w, b, keep=False)[0]


# ---------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------
def check_p(p, where: str) -> float:
    """Dropout probability: a number in [0, 1]."""
    return check_real(where, "dropout probability p", p, minimum=0.0, maximum=1.0)


def dropout_mask(shape, p: float, rng: np.random.Generator, dtype) -> np.ndarray:
    """Keep-mask already scaled: 1/(1-p) with probability 1-p, else 0 (all 0 when p = 1)."""
    if p >= 1:
        return np.zeros(shape, dtype=dtype)
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def dropout_forward(x, p=0.5, training=True, rng=None, channelwise=False, *, where="dropout", rows=None,
                    share=None):
    """Inverted dropout: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p).
    channelwise: one draw per (dim 0, dim 1) entry, broadcast over the remaining axes
    (torch's feature dropout: whole channels of (N, C, H, W)). Identity when not training
    or p = 0. rng: a numpy Generator (needed when training with p > 0).
    rows: (slice, N) when x is rows `slice` of a batch of N spread over processes: the mask is
    drawn for all N rows, as for the whole batch, and these rows of it are used.
    share: with rows, for threads computing parts of one batch: share(make) returns make()
    computed once for all of them (batch_parts.Part.from_first), so the mask is drawn once.
    Returns (y, cache); the cache holds the scaled mask (None for the identity)."""
    check_float_array(x, where, "input")
    p = check_p(p, where)
    training = check_bool(where, "training", training)
    if not training or p == 0:
        return x, (None, x.shape, x.dtype, where)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{where}: expected rng as a numpy.random.Generator, got {type(rng).__name__}")
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if channelwise else x.shape
    if rows is None:
        mask = dropout_mask(shape, p, rng, x.dtype)
    else:
        def whole_batch_mask():
            return dropout_mask((rows[1],) + shape[1:], p, rng, x.dtype)
        mask = (whole_batch_mask() if share is None else share(whole_batch_mask))[rows[0]]
    return x * mask, (mask, x.shape, x.dtype, where)


def dropout_backward(dy, cache):
    """dx = dy * mask, the very mask of the forward pass (already scaled by 1/(1-p))."""
    mask, shape, dtype, where = cache
    dy = check_grad(dy, shape, dtype, where)
    return dy if mask is None else dy * mask


def _rng(generator, where: str) -> np.random.Generator:
    return make_rng(check_generator(where, generator))


def dropout(x, p=0.5, training=True, generator=None):
    """torch.nn.functional.dropout; generator: None (the global one), an int seed or a
    numpy Generator. Any shape."""
    return dropout_forward(x, p, training, _rng(generator, "dropout"))[0]


def dropout2d(x, p=0.5, training=True, generator=None):
    """torch.nn.functional.dropout2d on (N, C, H, W): whole channels zeroed. A 3-D input is
    taken as (N, C, L), as torch 2.x still does."""
    if not isinstance(x, np.ndarray) or x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of rank 4 (N, C, H, W) or 3, got shape "
                         f"{getattr(x, 'shape', None)}")
    return dropout_forward(x, p, training, _rng(generator, "dropout2d"), channelwise=True, where="dropout2d")[0]
