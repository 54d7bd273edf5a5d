"""Per-sample route: a batch of N GEMMs, x, y, dy, dx kept in N, C order (no transposes).

    cols (N, K, C, *out) viewed as (N, K*C, P)      rows ordered (kernel offset, channel)
    y[n] = W' @ cols[n]                             W' (C_out, K*C_in)
    dW   = sum_n dY[n] @ cols[n]^T
    dx   = col2im(W'^T @ dY[n])                     (x itself for a plain 1x1)

Chosen for groups == 1 with a short patch (1x1, or a tiny C_in) where N small GEMMs beat one
wide one. The patch matrix lives in the layer's workspace and backs the cache.
"""
from __future__ import annotations

import math

import numpy as np

from ..im2col import col2im, im2col, pad_spatial, unpad_spatial
from .geometry import ConvGeometry
from .workspace import ConvCache, buffer, release_saved, take_saved

NAME = "per-sample"


def applies(geo: ConvGeometry) -> bool:
    """groups == 1, no input dilation."""
    return geo.groups == 1 and all(d == 1 for d in geo.lhs_dilation)


def is_plain_1x1(geo: ConvGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the patch matrix is x itself."""
    return (math.prod(geo.kernel) == 1 and all(s == 1 for s in geo.stride)
            and all(p == 0 for pair in geo.pads for p in pair))


def patches(x, w, geo: ConvGeometry, ws=None) -> np.ndarray:
    """x (N, C, *S) -> cols (N, K*C, P), rows ordered (kernel offset, channel)."""
    n, c = x.shape[:2]
    p = math.prod(geo.out)
    if is_plain_1x1(geo):
        return x.reshape(n, c, p)
    xp = pad_spatial(x, geo.pads, out=None if ws is None else ws.get("xp_ps"))
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out,
                  cols=None if ws is None else ws.get("cols_ps"))
    if ws is not None:
        ws["xp_ps"], ws["cols_ps"] = xp, cols
    return cols.reshape(n, -1, p)


def _weight(w: np.ndarray) -> np.ndarray:
    """(C_out, C_in, *k) -> (C_out, K*C_in), columns ordered (kernel offset, channel)."""
    return w.reshape(w.shape[0], w.shape[1], -1).swapaxes(1, 2).reshape(w.shape[0], -1)


def forward(x, w, b, geo: ConvGeometry, ws):
    """y[n] = W' @ cols[n] -> (y (N, C_out, *out), cols)."""
    cols = patches(x, w, geo, ws)
    y = np.matmul(_weight(w), cols)
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape[0], w.shape[0], *geo.out), cols


def rebuild(x, w, geo: ConvGeometry):
    return patches(x, w, geo)


def backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db); dw first, so the patch matrix can take dcols."""
    geo, w, ws = cache.geo, cache.w, cache.workspace
    n, c_out = dy.shape[:2]
    dy3 = dy.reshape(n, c_out, -1)
    db = dy3.sum(axis=2).sum(axis=0) if cache.has_bias else None
    kernel = math.prod(geo.kernel)
    if weight_grad:
        cols, scratch = take_saved(cache, rebuild)
        per_n = np.matmul(dy3, cols.transpose(0, 2, 1), out=buffer(ws, "dw_ps", (n, c_out, cols.shape[1]), dy.dtype))
        dw = per_n.sum(axis=0).reshape(c_out, kernel, -1).swapaxes(1, 2).reshape(geo.w_shape)
    else:
        cols, scratch, dw = release_saved(cache), True, None
    if not input_grad:
        return None, dw, db
    w_t = _weight(w).T
    if is_plain_1x1(geo):                    # cols is x itself: never a scratch buffer
        return np.matmul(w_t, dy3).reshape(geo.in_shape), dw, db
    dcols = np.matmul(w_t, dy3, out=cols if scratch and cols is not None else None)
    dcols = dcols.reshape(n, kernel, geo.in_shape[1], *geo.out)
    dxp = col2im(dcols, geo.padded, geo.kernel, geo.stride, geo.dilation, geo.out,
                 xp=None if ws is None else ws.get("xp_ps"))
    return unpad_spatial(dxp, geo.pads, geo.in_shape[2:]), dw, db
