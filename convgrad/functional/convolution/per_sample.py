"""Per-sample route: a batch of GEMMs, x, y, dy, dx kept in N, C order (no transposes).

    cols (nb, K, C, *out) viewed as (nb, K*C, P)    rows ordered (kernel offset, channel)
    y[n] = W' @ cols[n]                             W' (C_out, K*C_in)
    dW   = sum_n dY[n] @ cols[n]^T
    dx   = col2im(W'^T @ dY[n])                     (x itself for a plain 1x1)

Chosen for groups == 1 with a short patch (1x1, or a tiny C_in) where small GEMMs beat one
wide one. Like the channel-major route it works the batch in chunks that fit the workspace
budget, in scratch-pool buffers, and the cache keeps only x (a plain 1x1 needs no patches);
and like it, a whole-batch patch matrix that fits the workspace budget is built in the
layer's workspace and kept for the backward while the kept budget allows (set_kept_budget).
"""
from __future__ import annotations

import math

import numpy as np

from ..im2col import col2im, im2col, pad_spatial, unpad_spatial
from .geometry import ConvGeometry
from .workspace import ConvCache, chunk_size, kept_buffer, scratch, take_saved

NAME = "per-sample"


def applies(geo: ConvGeometry) -> bool:
    """groups == 1, no input dilation."""
    return geo.groups == 1 and all(d == 1 for d in geo.lhs_dilation)


def is_plain_1x1(geo: ConvGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the patch matrix is x itself."""
    return (math.prod(geo.kernel) == 1 and all(s == 1 for s in geo.stride)
            and all(p == 0 for pair in geo.pads for p in pair))


def _cols_shape(n: int, geo: ConvGeometry) -> tuple:
    return (n, math.prod(geo.kernel), geo.in_shape[1], *geo.out)


def patches(x, geo: ConvGeometry, cols: np.ndarray | None = None) -> np.ndarray:
    """x (nb, C, *S) -> cols (nb, K*C, P), built in `cols` (nb, K, C, *out) if given, else in
    scratch-pool buffers (x itself for a plain 1x1)."""
    n, c = x.shape[:2]
    p = math.prod(geo.out)
    if is_plain_1x1(geo):
        return x.reshape(n, c, p)
    xp = pad_spatial(x, geo.pads, out=scratch("xp", (n, c, *geo.padded), x.dtype))
    if cols is None:
        cols = scratch("cols", _cols_shape(n, geo), x.dtype)
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out, cols=cols)
    return cols.reshape(n, -1, p)


def _weight(w: np.ndarray) -> np.ndarray:
    """(C_out, C_in, *k) -> (C_out, K*C_in), columns ordered (kernel offset, channel)."""
    return w.reshape(w.shape[0], w.shape[1], -1).swapaxes(1, 2).reshape(w.shape[0], -1)


def _chunks(geo: ConvGeometry, itemsize: int, whole: bool = False):
    """Batch slices whose padded input, patch matrix and per-sample dW fit the budget (one
    slice if whole)."""
    n, c_in = geo.in_shape[:2]
    c_out, patch = geo.w_shape[0], c_in * math.prod(geo.kernel)
    per_sample = itemsize * (c_in * math.prod(geo.padded) + patch * math.prod(geo.out) + c_out * patch)
    step = max(n, 1) if whole or is_plain_1x1(geo) else chunk_size(n, per_sample)
    for n0 in range(0, n, step):
        yield slice(n0, min(n, n0 + step))


def forward(x, w, b, geo: ConvGeometry, ws):
    """y[n] = W' @ cols[n] chunk by chunk -> (y (N, C_out, *out), saved): with a workspace, a
    whole-batch patch matrix within the workspace budget is built there and saved for the
    backward while the kept budget allows; else saved is None (backward rebuilds from x)."""
    n, c_out = x.shape[0], w.shape[0]
    y = np.empty((n, c_out, *geo.out), dtype=x.dtype)
    w2 = _weight(w)
    keep = None if is_plain_1x1(geo) else kept_buffer(ws, "cols", _cols_shape(n, geo), x.dtype)
    for sl in _chunks(geo, x.dtype.itemsize, whole=keep is not None):
        out = y[sl].reshape(sl.stop - sl.start, c_out, -1)
        np.matmul(w2, patches(x[sl], geo, cols=keep), out=out)
        if b is not None:
            out += b[:, None]
    return y, keep


def rebuild(x, w, geo: ConvGeometry):
    return None


def backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db), chunk by chunk: dW from each chunk's patches (the kept whole-batch ones,
    else rebuilt), then dcols in their memory."""
    geo, x, w = cache.geo, cache.x, cache.w
    kept = take_saved(cache, rebuild)[0] if weight_grad else None    # workspace-owned: consumed here
    n, c_out = dy.shape[:2]
    c_in, kernel = geo.in_shape[1], math.prod(geo.kernel)
    dy3 = dy.reshape(n, c_out, -1)
    db = dy3.sum(axis=2).sum(axis=0) if cache.has_bias else None
    dw = np.zeros((c_out, kernel * c_in), dtype=dy.dtype) if weight_grad else None
    dx = np.empty(geo.in_shape, dtype=dy.dtype) if input_grad else None
    w_t = _weight(w).T
    for sl in _chunks(geo, dy.dtype.itemsize, whole=kept is not None):
        nb, g = sl.stop - sl.start, dy3[sl]
        if weight_grad:
            cols = patches(x[sl], geo) if kept is None else kept.reshape(nb, -1, math.prod(geo.out))
            per_n = np.matmul(g, cols.transpose(0, 2, 1), out=scratch("dw_ps", (nb, c_out, kernel * c_in), dy.dtype))
            dw += per_n.sum(axis=0)
        if not input_grad:
            continue
        if is_plain_1x1(geo):
            np.matmul(w_t, g, out=dx[sl].reshape(nb, c_in, -1))
            continue
        dcols_shape = (nb, kernel * c_in, math.prod(geo.out))      # in the memory of cols (consumed)
        dcols = np.matmul(w_t, g, out=kept.reshape(dcols_shape) if kept is not None
                          else scratch("cols", dcols_shape, dy.dtype))
        dxp = col2im(dcols.reshape(nb, kernel, c_in, *geo.out), geo.padded, geo.kernel, geo.stride, geo.dilation,
                     geo.out, xp=scratch("xp", (nb, c_in, *geo.padded), dy.dtype))
        unpad_spatial(dxp, geo.pads, geo.in_shape[2:], out=dx[sl])
    if dw is not None:
        dw = dw.reshape(c_out, kernel, c_in).swapaxes(1, 2).reshape(geo.w_shape)
    return dx, dw, db
