"""Winograd route: F(2x2, 3x3) for 2-d, groups == 1, 3x3, stride 1, no dilation (Lavin & Gray 2015).

Each 2x2 block of outputs is computed from the 4x4 input tile d under it with 16 products
per (output channel, input channel) instead of 36:

    U = G g G^T          (C_out, C_in) per tap xi of the 4x4 transform  -> U (16, C_out, C_in)
    V = B^T d B          (C_in, tiles) per xi                           -> V (16, C_in, nb*tiles)
    M = U[xi] @ V[xi]    16 GEMMs                                       -> M (16, C_out, nb*tiles)
    y = A^T M A          2x2 outputs per tile                           -> y (nb, C_out, Ho, Wo)

    B^T = [[1, 0,-1, 0],   G = [[ 1,   0,   0 ],   A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],        [1/2, 1/2, 1/2],          [0, 1,-1,-1]]
           [0,-1, 1, 0],        [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]        [ 0,   0,   1 ]]

The transforms are whole-array adds and subtracts of strided views of the channel-first
padded input (stride-2 windows of rows, then of columns), written with out= into scratch
buffers laid out as the GEMM reads them. An odd output size is padded by one zero row or
column of input and cropped. The bias joins M[1, 1], which reaches all four outputs of a
tile with coefficient 1. The batch is worked in chunks whose buffers fit the workspace budget.

Backward: dx at stride 1 is the convolution of dy (padded by 2 - p) with rot180(w) with in
and out channels swapped, run through the same forward (a padding above 2 crops dy instead);
dw is the channel-major route's GEMM (dY @ cols^T). The cache keeps only x.

FINITE_ONLY: an inf becomes inf - inf = NaN inside a transform (and a large finite value can
overflow in one), so a non-finite result is redone on the channel-major route by the dispatch.
"""
from __future__ import annotations

import math

import numpy as np

from ..im2col import pad_channels_first
from ..padding import vjp_padding
from . import channel_major
from .geometry import ConvGeometry, conv_geometry, flip_swap
from .workspace import ConvCache, chunk_size, scratch

NAME = "winograd"
FINITE_ONLY = True
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def applies(geo: ConvGeometry) -> bool:
    """2-d, groups == 1, kernel 3x3, stride 1, dilation 1, padding >= 0, no input dilation."""
    return (len(geo.out) == 2 and geo.groups == 1 and geo.kernel == (3, 3) and geo.stride == (1, 1)
            and geo.dilation == (1, 1) and geo.lhs_dilation == (1, 1)
            and all(p >= 0 for pair in geo.pads for p in pair))


def filter_transform(w: np.ndarray) -> np.ndarray:
    """U = G g G^T: w (C_out, C_in, 3, 3) -> (16, C_out, C_in), xi = 4*i + j."""
    g = _G.astype(w.dtype)
    u = g @ w @ g.T                                               # (C_out, C_in, 4, 4)
    return np.ascontiguousarray(u.reshape(*w.shape[:2], 16).transpose(2, 0, 1))


def _tiles(geo: ConvGeometry) -> tuple[int, int]:
    """Tiles per axis: ceil(out / 2)."""
    return (geo.out[0] + 1) // 2, (geo.out[1] + 1) // 2


def _bytes_per_sample(geo: ConvGeometry, itemsize: int) -> int:
    """Scratch per sample: padded input, row-transformed input, V, M and the output tiles."""
    c_in, c_out = geo.in_shape[1], geo.w_shape[0]
    th, tw = _tiles(geo)
    rows, cols = 2 * th + 2, 2 * tw + 2
    return itemsize * (c_in * rows * cols + 4 * c_in * th * cols + 16 * (c_in + c_out) * th * tw
                       + 4 * c_out * th * tw)


def _pair(v: np.ndarray, axis: int, n: int):
    """The four stride-2 windows d0..d3 of length n along `axis` (tile rows or columns 0..3)."""
    lead = (slice(None),) * (axis % v.ndim)
    return [v[(*lead, slice(r, r + 2 * n - 1, 2))] for r in range(4)]


def _input_transform(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """V = B^T d B over every tile: x (nb, C, H, W) -> (4, 4, C, nb, th, tw) in scratch."""
    nb, c = x.shape[:2]
    th, tw = _tiles(geo)
    (plo, phi), (qlo, qhi) = geo.pads
    pads = ((plo, phi + 2 * th + 2 - geo.padded[0]), (qlo, qhi + 2 * tw + 2 - geo.padded[1]))
    xp = pad_channels_first(x, pads, out=scratch("wg_xp", (c, nb, 2 * th + 2, 2 * tw + 2), x.dtype))
    rows = scratch("wg_rows", (4, c, nb, th, 2 * tw + 2), x.dtype)
    d0, d1, d2, d3 = _pair(xp, 2, th)
    np.subtract(d0, d2, out=rows[0])
    np.add(d1, d2, out=rows[1])
    np.subtract(d2, d1, out=rows[2])
    np.subtract(d1, d3, out=rows[3])
    v = scratch("wg_v", (4, 4, c, nb, th, tw), x.dtype)
    e0, e1, e2, e3 = _pair(rows, -1, tw)
    np.subtract(e0, e2, out=v[:, 0])
    np.add(e1, e2, out=v[:, 1])
    np.subtract(e2, e1, out=v[:, 2])
    np.subtract(e1, e3, out=v[:, 3])
    return v


def _output_transform(m: np.ndarray, out: np.ndarray) -> None:
    """y = A^T M A, in place in m: m (4, 4, C_out, nb, th, tw) -> out (2, 2, C_out, nb, th, tw)
    (out[r, c] = output pixel (2*ty + r, 2*tx + c))."""
    np.subtract(m[1], m[3], out=m[3])
    np.add(m[1], m[2], out=m[1])
    np.subtract(m[3], m[2], out=m[3])              # row 1 of A^T M: m1 - m2 - m3
    np.add(m[0], m[1], out=m[0])                   # row 0: m0 + m1 + m2
    s = m[0::3]                                    # (2, 4, ...): the two rows
    np.subtract(s[:, 1], s[:, 3], out=s[:, 3])
    np.add(s[:, 1], s[:, 2], out=s[:, 1])
    np.subtract(s[:, 3], s[:, 2], out=out[:, 1])
    np.add(s[:, 0], s[:, 1], out=out[:, 0])


def conv(x: np.ndarray, u: np.ndarray, b, geo: ConvGeometry) -> np.ndarray:
    """y = conv(x, w) + b chunk by chunk, w given as U = filter_transform(w).
    x (N, C_in, H, W) -> y (N, C_out, Ho, Wo). The pads of geo may be negative (they crop)."""
    n, c_in = x.shape[:2]
    c_out = u.shape[1]
    ho, wo = geo.out
    th, tw = _tiles(geo)
    y = np.empty((n, c_out, ho, wo), dtype=x.dtype)
    step = chunk_size(n, _bytes_per_sample(geo, x.dtype.itemsize))
    for n0 in range(0, n, step):
        sl = slice(n0, min(n, n0 + step))
        nb = sl.stop - sl.start
        v = _input_transform(x[sl], geo)
        m = scratch("wg_m", (4, 4, c_out, nb, th, tw), x.dtype)
        np.matmul(u, v.reshape(16, c_in, -1), out=m.reshape(16, c_out, -1))
        if b is not None:
            m[1, 1] += b[:, None, None, None]
        if ho % 2 == 0 and wo % 2 == 0:              # straight into y, (nb, C_out, Ho, Wo) as (r, c, C_out, nb, th, tw)
            _output_transform(m, y[sl].reshape(nb, c_out, th, 2, tw, 2).transpose(3, 5, 1, 0, 2, 4))
        else:
            full = scratch("wg_y", (c_out, nb, th, 2, tw, 2), x.dtype)
            _output_transform(m, full.transpose(3, 5, 0, 1, 2, 4))
            y[sl] = full.reshape(c_out, nb, 2 * th, 2 * tw)[:, :, :ho, :wo].swapaxes(0, 1)
    return y


def forward(x, w, b, geo: ConvGeometry, ws):
    """-> (y (N, C_out, Ho, Wo), None)."""
    return conv(x, filter_transform(w), b, geo), None


def rebuild(x, w, geo: ConvGeometry):
    return None


def input_gradient(dy: np.ndarray, w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dx = conv(dy, flip_swap(w), padding 2 - p): dy (N, C_out, Ho, Wo) -> (N, C_in, H, W)."""
    pads = vjp_padding(geo.in_shape[2:], geo.kernel, geo.stride, geo.dilation, geo.pads, geo.out)
    geo_dx = conv_geometry(geo.out_shape, (geo.in_shape[1], geo.w_shape[0], 3, 3), 1, pads,
                           allow_negative_padding=True)
    return conv(dy, filter_transform(flip_swap(w, 1)), None, geo_dx)


def backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db): dx by the Winograd forward, dw by the channel-major GEMM."""
    geo = cache.geo
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    dx = input_gradient(dy, cache.w, geo) if input_grad else None
    dw = channel_major.grads(dy, cache.x, None, geo, input_grad=False, weight_grad=True)[1] if weight_grad else None
    return dx, dw, db
