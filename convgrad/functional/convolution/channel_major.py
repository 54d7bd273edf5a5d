"""Channel-major route: one large GEMM per group over a chunk of the batch.

    xp   = pad(x) as (C, nb, *padded)               channels first
    cols = im2col(xp)  (C, K, nb, *out)  viewed as (g, C/g * K, nb * P)
    y    = W @ cols                                 (g, C_out/g, nb * P) -> y[n0:n1] (nb, C_out, *out)
    dW  += (cols @ dY^T)^T                          the same products; faster in OpenBLAS for these shapes
    dx   = col2im(W^T @ dY)                         dcols in the memory of cols
    dx   = conv(dY, rot180(W)^T, padding d(k-1)-p)  instead, for stride 1 when C_out <= C_in:
                                                    the lectures' full convolution, one GEMM with
                                                    no scatter (measured ~10% faster there)

An empty batch (N = 0) gives an empty y and dx and a zero dW (the dispatch sends it here).
The batch is worked in chunks of nb samples so that xp, cols and the channel-first output of
one chunk fit in the workspace budget (workspace.py); the buffers come from the per-thread
scratch pool and the cache keeps only x: backward rebuilds each chunk's patch matrix. A layer's
whole-batch patch matrix that fits the budget is instead built once in the layer's workspace
and kept for the backward (small images: rebuilding would cost ~10% of a training step), as
long as all layers' kept patch matrices stay within the kept budget (set_kept_budget; 0, none,
unless the application opts in).
"""
from __future__ import annotations

import math

import numpy as np

from ..im2col import col2im, im2col, pad_channels_first, unpad_channels_first
from ..padding import vjp_padding
from .geometry import ConvGeometry, conv_geometry, flip_swap
from .workspace import ConvCache, chunk_size, kept_buffer, scratch, take_saved

NAME = "channel-major"


def applies(geo: ConvGeometry) -> bool:
    """Any convolution."""
    return True


def grouped(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, *k) -> (g, C_out/g, C_in/g * K)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(g, m, k) @ (g, k, n) -> (g, m, n); one plain BLAS call when g == 1."""
    if out is None:
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    if a.shape[0] == 1:
        np.matmul(a[0], b[0], out=out[0])
    else:
        np.matmul(a, b, out=out)
    return out


def patches(x: np.ndarray, geo: ConvGeometry, pooled: bool = False, cols: np.ndarray | None = None) -> np.ndarray:
    """x (n, C, *S) -> cols viewed as (groups, C/g * K, n * prod(out)); built in `cols`
    (C, K, n, *out) if given, else in scratch-pool buffers if pooled (valid until the next
    pooled call on this thread), else in fresh arrays."""
    n, c = x.shape[:2]
    xp = scratch("xp", (c, n, *geo.padded), x.dtype) if pooled else None
    xp = pad_channels_first(x, geo.pads, geo.lhs_dilation, out=xp)
    k = math.prod(geo.kernel)
    if cols is None and pooled:
        cols = scratch("cols", (c, k, n, *geo.out), x.dtype)
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out, cols=cols)
    return cols.reshape(geo.groups, -1, n * math.prod(geo.out))


def _bytes_per_sample(geo: ConvGeometry, itemsize: int) -> int:
    """Scratch per sample: xp, cols (reused for dcols) and the channel-first output/gradient."""
    c_in, c_out = geo.in_shape[1], geo.w_shape[0]
    p = math.prod(geo.out)
    return itemsize * (c_in * math.prod(geo.padded) + c_in * math.prod(geo.kernel) * p + c_out * p)


def _chunks(geo: ConvGeometry, itemsize: int, whole: bool = False):
    n = geo.in_shape[0]
    step = max(n, 1) if whole else chunk_size(n, _bytes_per_sample(geo, itemsize))
    for n0 in range(0, n, step):
        yield slice(n0, min(n, n0 + step)), geo.with_batch(min(n, n0 + step) - n0)


def conv(x, w, b, geo: ConvGeometry, keep=None) -> np.ndarray:
    """y = W @ im2col(x) (+ b), chunk by chunk: x (N, C_in, *S) -> y (N, C_out, *out).
    keep: an array (C_in, K, N, *out) in which the whole batch's patch matrix is built at
    once (and stays, for the backward)."""
    n, g, c_out = x.shape[0], geo.groups, w.shape[0]
    p = math.prod(geo.out)
    y = np.empty((n, c_out, *geo.out), dtype=x.dtype)
    wg = grouped(w, g)
    for sl, geo_c in _chunks(geo, x.dtype.itemsize, whole=keep is not None):
        nb = sl.stop - sl.start
        cols = patches(x[sl], geo_c, pooled=True, cols=keep)
        y_cf = matmul(wg, cols, out=scratch("y_cf", (g, c_out // g, nb * p), x.dtype))
        src = y_cf.reshape(c_out, nb, p).swapaxes(0, 1)
        dst = y[sl].reshape(nb, c_out, p)
        if b is None:
            dst[...] = src
        else:
            np.add(src, b[:, None], out=dst)
    return y


def input_grad_as_conv(geo: ConvGeometry) -> ConvGeometry | None:
    """The geometry of dx = conv(dy, flip_swap(w), padding d(k-1)-p) when that is the faster
    way to the input gradient (stride 1, no input dilation, C_out <= C_in, the padding
    within d(k-1)), else None."""
    c_in, c_out = geo.in_shape[1], geo.w_shape[0]
    if any(s != 1 for s in geo.stride) or any(d != 1 for d in geo.lhs_dilation) or c_out > c_in:
        return None
    pads = vjp_padding(geo.in_shape[2:], geo.kernel, geo.stride, geo.dilation, geo.pads, geo.out)
    if any(p < 0 for pair in pads for p in pair):
        return None
    w_dagger = (c_in, c_out // geo.groups, *geo.kernel)
    return conv_geometry(geo.out_shape, w_dagger, 1, pads, geo.dilation, geo.groups)


def grads(dy, x, w, geo: ConvGeometry, input_grad: bool = True, weight_grad: bool = True, kept=None):
    """(dx, dw) of y = conv(x, w) chunk by chunk; either is None when not asked for (and x,
    or w, may then be None). kept: the whole batch's patch matrix from the forward, which the
    input gradient may then overwrite (its dcols).
    dy (N, C_out, *out), x (N, C_in, *S) -> dx (N, C_in, *S), dw (C_out, C_in/g, *k)."""
    g, c_out = geo.groups, geo.w_shape[0]
    p = math.prod(geo.out)
    as_conv = input_grad_as_conv(geo) if input_grad else None
    if as_conv is not None:
        dx = conv(dy, np.ascontiguousarray(flip_swap(w, g)), None, as_conv)
        return dx, grads(dy, x, w, geo, input_grad=False, weight_grad=True, kept=kept)[1] if weight_grad else None
    wg_t = grouped(w, g).transpose(0, 2, 1) if input_grad else None
    dx = np.empty(geo.in_shape, dtype=dy.dtype) if input_grad else None
    dw_t = None                                            # (g, C_in/g * K, C_out/g)
    for sl, geo_c in _chunks(geo, dy.dtype.itemsize, whole=kept is not None):
        nb = sl.stop - sl.start
        dy_cf = scratch("y_cf", (g, c_out // g, nb * p), dy.dtype)
        dy_cf.reshape(c_out, nb, p)[...] = dy[sl].reshape(nb, c_out, p).swapaxes(0, 1)
        cols = None
        if weight_grad:
            cols = patches(x[sl], geo_c, pooled=True) if kept is None else kept.reshape(g, -1, nb * p)
            part = matmul(cols, dy_cf.transpose(0, 2, 1))
            dw_t = part if dw_t is None else np.add(dw_t, part, out=dw_t)
        if input_grad:
            c_in, k = geo.in_shape[1], math.prod(geo.kernel)
            dcols_shape = (g, c_in // g * k, nb * p)      # in the memory of cols, which is consumed
            dcols = kept.reshape(dcols_shape) if kept is not None else scratch("cols", dcols_shape, dy.dtype)
            matmul(wg_t, dy_cf, out=dcols)
            dxp = col2im(dcols.reshape(c_in, k, nb, *geo.out), geo.padded, geo.kernel, geo.stride, geo.dilation,
                         geo.out, xp=scratch("xp", (c_in, nb, *geo.padded), dy.dtype))
            unpad_channels_first(dxp, geo.pads, geo.in_shape[2:], geo.lhs_dilation, out=dx[sl])
    if weight_grad and dw_t is None:                       # an empty batch: a sum over no sample
        return dx, np.zeros(geo.w_shape, dtype=dy.dtype)
    dw = None if dw_t is None else dw_t.transpose(0, 2, 1).reshape(geo.w_shape)
    return dx, dw


def forward(x, w, b, geo: ConvGeometry, ws):
    """-> (y, saved): with a workspace, a whole-batch patch matrix within the workspace budget
    is built in the workspace and saved for the backward while the process's kept patch
    matrices stay within the kept budget; else saved is None and the backward rebuilds the
    patch matrix chunk by chunk from the x the cache keeps."""
    n, c = x.shape[:2]
    shape = (c, math.prod(geo.kernel), n, *geo.out)
    keep = kept_buffer(ws, "cols", shape, x.dtype)
    return conv(x, w, b, geo, keep=keep), keep


def rebuild(x, w, geo: ConvGeometry):
    return None


def backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db)."""
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache.has_bias else None
    kept = take_saved(cache, rebuild)[0] if weight_grad else None    # workspace-owned: consumed here
    dx, dw = grads(dy, cache.x, cache.w, cache.geo, input_grad, weight_grad, kept=kept)
    return dx, dw, db
