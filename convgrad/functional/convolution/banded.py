"""Depthwise 2-D convolution (groups == C_in == C_out) on a row stack: the tap sums and the
banded matrices the depthwise route (depthwise.py) computes.

A depthwise filter touches one channel, so im2col would build K copies of the input for a
matrix-vector product per channel. Instead stack the kw column-shifted copies of each padded
input plane ("row stack"):

    S[n, c, h, b, j] = xpad[n, c, h, j*sw + b*dw]                      (N, C, Hp, kw, Wo)
                                                         taps first:   (N, C, kw, Hp, Wo)

Stride 1 sums the taps over a strided view of the taps-first stack (tap_sum, one einsum):
y[n, c, i] = sum_{a,b} w[c, a, b] S[n, c, b, i + a*dh]. Strided, multiply blocks of Bh output
rows by a small banded matrix that holds the filter taps, one small GEMM per (sample, channel,
row block), all in N, C order (no transposes):

    B[c, i, r, b]    = w[c, 0, a, b]  if r == i*sh + a*dh else 0        (C, Bh, R, kw)
    y[n, c, q*Bh + i] = sum_{r,b} B[c, i, r, b] S[n, c, q*Bh*sh + r, b]  R = (Bh-1)*sh + dh*(kh-1) + 1

The band is the same for every block (a convolution is translation invariant). Backward:
dw is the band of dY_block @ S_block^T summed (band_matrix_adjoint); dS = B^T @ dY is
scattered back by row_stack_adjoint. The band wastes R/kh of the multiply-adds on zeros.
"""
from __future__ import annotations

import numpy as np


def _stack_columns(b: int, stride: int, dilation: int, pad_lo: int, width: int, out_w: int):
    """For column tap b: (j slice into the stack, w slice into the input) of the j whose
    input column j*stride + b*dilation - pad_lo lies inside [0, width)."""
    shift = b * dilation - pad_lo
    j_lo = max(0, -(shift // stride))                            # ceil(-shift / stride)
    j_hi = min(out_w, (width - 1 - shift) // stride + 1) if shift < width else 0
    if j_hi <= j_lo:
        return slice(0, 0), slice(0, 0)
    w_lo = j_lo * stride + shift
    return slice(j_lo, j_hi), slice(w_lo, w_lo + (j_hi - j_lo - 1) * stride + 1, stride)


def row_stack(x: np.ndarray, pads, kernel_w: int, stride_w: int, dilation_w: int, out_w: int,
              out: np.ndarray | None = None, zero_borders: bool = True, taps_first: bool = False) -> np.ndarray:
    """x (N, C, H, W) -> S (N, C, Hp, kw, Wo) with S[n, c, h, b, j] = xpad[n, c, h, j*sw + b*dw],
    or with taps_first (N, C, kw, Hp, Wo). pads = ((top, bottom), (left, right)), non-negative.
    A loop over the kw column taps only. zero_borders=False skips rewriting the padding zeros
    of a reused `out` whose zeros are known intact (many short strided runs: a third of the cost)."""
    n, c, h, w = x.shape
    (top, bottom), (left, _) = pads
    hp = top + h + bottom
    shape = (n, c, kernel_w, hp, out_w) if taps_first else (n, c, hp, kernel_w, out_w)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out, zero_borders = np.empty(shape, dtype=x.dtype), True
    planes = out if taps_first else out.swapaxes(2, 3)          # (N, C, kw, Hp, Wo) view
    if zero_borders:
        planes[:, :, :, :top] = 0
        planes[:, :, :, top + h:] = 0
    flat = taps_first and stride_w == 1 and out_w == w and out.flags.c_contiguous
    for b in range(kernel_w):
        if flat:
            _shifted_plane(x, planes[:, :, b, top:top + h], b * dilation_w - left, zero_borders)
            continue
        j, src = _stack_columns(b, stride_w, dilation_w, left, w, out_w)
        rows = planes[:, :, b, top:top + h]
        if zero_borders:
            rows[..., :j.start] = 0
            rows[..., j.stop:] = 0
        rows[..., j] = x[..., src]
    return out


def _shifted_plane(x: np.ndarray, plane: np.ndarray, shift: int, zero_borders: bool) -> None:
    """plane[n, c, h, j] = x[n, c, h, j + shift] (0 outside the row), for planes as wide as x's
    rows (Wo == W at stride 1, e.g. 'same' padding): one flat copy of each whole plane shifted by
    `shift` elements (long runs instead of one short copy a row), then the columns whose source
    wrapped into the next or previous row set to 0."""
    n, c, h, w = x.shape
    src, dst = x.reshape(n, c, h * w), plane.reshape(n, c, h * w)      # dst: a view (a contiguous stack)
    if abs(shift) >= w:
        if zero_borders:
            dst[...] = 0
    elif shift >= 0:
        dst[..., :h * w - shift] = src[..., shift:]
        if shift:
            plane[..., w - shift:] = 0
    else:
        dst[..., -shift:] = src[..., :h * w + shift]
        plane[..., :-shift] = 0


def strided_view(a: np.ndarray, shape, strides) -> np.ndarray:
    """A read-only view of a's memory with the given shape and strides (bytes, from a's first
    element): np.lib.stride_tricks.as_strided, without its overhead for a contiguous a (these
    views are made once per chunk of the batch)."""
    if a.flags.c_contiguous:
        view = np.ndarray(shape, a.dtype, a, 0, strides)
        view.flags.writeable = False
        return view
    return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)


def row_stack_adjoint(ds: np.ndarray, pads, in_hw, stride_w: int, dilation_w: int) -> np.ndarray:
    """Adjoint of row_stack: dS (N, C, Hp, kw, Wo) -> dx (N, C, H, W), overlaps summed."""
    n, c, _, kernel_w, out_w = ds.shape
    h, w = in_hw
    (top, _), (left, _) = pads
    dx = np.zeros((n, c, h, w), dtype=ds.dtype)
    for b in range(kernel_w):
        j, dst = _stack_columns(b, stride_w, dilation_w, left, w, out_w)
        dx[..., dst] += ds[:, :, top:top + h, b, j]
    return dx


def band_span(rows: int, kernel_h: int, stride_h: int, dilation_h: int) -> int:
    """R: how many stack rows a block of `rows` output rows reads."""
    return (rows - 1) * stride_h + dilation_h * (kernel_h - 1) + 1


def band_matrix(w: np.ndarray, rows: int, stride_h: int, dilation_h: int) -> np.ndarray:
    """w (C, 1, kh, kw) -> B (C, Bh, R, kw) with B[c, i, i*sh + a*dh, b] = w[c, 0, a, b]."""
    c, _, kernel_h, kernel_w = w.shape
    band = np.zeros((c, rows, band_span(rows, kernel_h, stride_h, dilation_h), kernel_w), dtype=w.dtype)
    i = np.arange(rows)
    for a in range(kernel_h):
        band[:, i, i * stride_h + a * dilation_h, :] = w[:, 0, a, None, :]
    return band


def band_matrix_adjoint(d_band: np.ndarray, kernel_h: int, stride_h: int, dilation_h: int) -> np.ndarray:
    """Adjoint of band_matrix, summed over the leading axes: dB (N, C, blocks, Bh, R, kw) ->
    dw (C, 1, kh, kw). The band entries [i, i*sh + a*dh] are read through a strided view."""
    n, c, blocks, rows, _, kernel_w = d_band.shape
    s_n, s_c, s_q, s_i, s_r, s_b = d_band.strides
    band = np.lib.stride_tricks.as_strided(d_band, (n, c, blocks, rows, kernel_h, kernel_w),
                                           (s_n, s_c, s_q, s_i + stride_h * s_r, dilation_h * s_r, s_b),
                                           writeable=False)
    return band.sum(axis=(0, 2, 3))[:, None]


def taps_weight_grad(x: np.ndarray, dy_stack: np.ndarray, kernel_h: int, dilation_h: int) -> np.ndarray:
    """Stride-1 weight gradient from x (N, C, H, W) and the taps-first row stack of the padded
    dy, Sd (N, C, kw, H + dh*(kh-1), W), built for the input gradient:
        dw[c, a, b] = sum_{n,h,w} x[n, c, h, w] Sd[n, c, kw-1-b, h + (kh-1-a)*dh, w]
    One batch of dot products over (n, c) reading each stack plane once. (As matrix-vector
    products BLAS may start its own threads, which collide with convgrad's.)"""
    n, c, h, w = x.shape
    kernel_w = dy_stack.shape[2]
    assert dy_stack.flags.c_contiguous and dy_stack.shape[4] == w
    s_n, s_c, s_b, s_h, s_w = dy_stack.strides
    taps = strided_view(dy_stack, (n, c, kernel_h, kernel_w, h * w), (s_n, s_c, dilation_h * s_h, s_b, s_w))
    if hasattr(np, "vecdot"):              # NumPy >= 2: dot products that never start BLAS threads
        dw = np.vecdot(taps, x.reshape(n, c, 1, 1, h * w)).sum(axis=0)         # (C, kh, kw), both flipped
    else:
        dw = np.matmul(taps, x.reshape(n, c, 1, h * w, 1))[..., 0].sum(axis=0)
    return dw[:, None, ::-1, ::-1]


def tap_sum(stack: np.ndarray, taps: np.ndarray, kernel_h: int, stride_h: int, dilation_h: int,
            out: np.ndarray) -> np.ndarray:
    """The convolution of a taps-first row stack S (N, C, kw, Hs, Wo), filter taps (C, kh, kw):
        out[n, c, i, j] = sum_{a,b} taps[c, a, b] S[n, c, b, i*sh + a*dh, j]      out (N, C, Ho, Wo)
    One einsum over a strided view of S (no copy), whose inner loop multiplies one tap into a
    whole output plane and adds it there: each plane stays in cache while its kh*kw taps are
    added. (At sh == 1 the plane is one axis of Ho*Wo; were rows and columns two axes, the
    einsum would loop over the taps inside the rows.) A sum over each output's own window: a
    NaN or inf reaches only the outputs whose window holds it."""
    n, c, kernel_w, _, out_w = stack.shape
    out_h = out.shape[2]
    s_n, s_c, s_b, s_h, s_w = stack.strides
    o_h, o_w = out.strides[2:]
    if stride_h == 1 and s_h == out_w * s_w and o_h == out_w * o_w:
        view = strided_view(stack, (n, c, kernel_h, kernel_w, out_h * out_w), (s_n, s_c, dilation_h * s_h, s_b, s_w))
        planes = out.reshape(n, c, out_h * out_w)           # a view: rows and columns merge (o_h == Wo*o_w)
        np.einsum("ncabp,cab->ncp", view, taps, out=planes)
        return out
    view = np.lib.stride_tricks.as_strided(stack, (n, c, kernel_h, kernel_w, out_h, out_w),
                                           (s_n, s_c, dilation_h * s_h, s_b, stride_h * s_h, s_w), writeable=False)
    return np.einsum("ncabij,cab->ncij", view, taps, out=out)


def stack_blocks(stack: np.ndarray, first_row: int, blocks: int, rows: int, stride_h: int, span: int) -> np.ndarray:
    """Overlapping row blocks of S (N, C, Hs, kw, Wo), no copy: -> (N, C, blocks, span*kw, Wo),
    block q holding stack rows [first_row + q*rows*sh, ... + span)."""
    n, c, _, kernel_w, out_w = stack.shape
    sn, sc, sh_, sb, sj = stack.strides
    assert sh_ == kernel_w * sb and first_row + (blocks - 1) * rows * stride_h + span <= stack.shape[2]
    return np.lib.stride_tricks.as_strided(stack[:, :, first_row:], (n, c, blocks, span * kernel_w, out_w),
                                           (sn, sc, rows * stride_h * sh_, sb, sj), writeable=False)
