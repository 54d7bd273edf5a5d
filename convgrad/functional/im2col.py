"""The matrix forms of convolution: patch matrices (im2col) and their adjoint (col2im),
and the banded-filter form used for depthwise convolution.

Two layouts of the patch matrix are used on the fast path (see convolution.py):

    channel-major (one large GEMM; any groups)
        padded input   xp   : (C, N, *padded)        channels first, then batch
        patch matrix   cols : (C, K, N, *out)        K = prod(kernel) kernel offsets
                              viewed as (C*K, N*prod(out))
    per-sample (a batch of GEMMs; no transposes of x, y, dy, dx)
        padded input   xp   : (N, C, *padded)
        patch matrix   cols : (N, K, C, *out)        viewed as (N, K*C, prod(out))

im2col and col2im work on either: for xp (A, B, *padded) the patch matrix is (A, K, B, *out)
with cols[a, k, b, o] = xp[a, b, o*stride + k*dilation]. col2im is the exact adjoint: it
scatter-adds every patch entry back to the input position it was read from, which is
"convolve the padded, stride-dilated output gradient with the flipped filter" with the sums
taken in the other order.
"""
from __future__ import annotations

import itertools

import numpy as np


def out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int) -> int:
    """floor((size + pad_lo + pad_hi - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def _windows(kernel, stride, dilation, out):
    """For each kernel offset: (flat index, tuple of slices into the padded spatial axes)."""
    for k_idx, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        yield k_idx, tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                           for o, d, s, n in zip(offset, dilation, stride, out))


def _placement(lo: int, hi: int, size: int, dilation: int) -> tuple[slice, slice]:
    """Input element i sits at lo + i*dilation of an axis of length lo + hi + (size-1)*dilation + 1.
    Returns (input slice, padded slice) of the elements that fall inside (negative pads crop)."""
    full = lo + hi + (size - 1) * dilation + 1
    first = 0 if lo >= 0 else (-lo + dilation - 1) // dilation
    last = min(size - 1, (full - 1 - lo) // dilation)
    if last < first:
        return slice(0, 0), slice(0, 0)
    return slice(first, last + 1), slice(lo + first * dilation, lo + last * dilation + 1, dilation)


def _zero_outside(out: np.ndarray, region) -> None:
    """Zero every element of out (A, B, *S) outside the box `region` (one step-1 slice per
    spatial axis): the border slabs only, not the whole array."""
    lead = (slice(None), slice(None))
    for axis, sl in enumerate(region):
        before = (slice(None),) * axis
        out[(*lead, *before, slice(0, sl.start))] = 0
        out[(*lead, *before, slice(sl.stop, None))] = 0


def _pad_into(src: np.ndarray, pads, lhs_dilation, out: np.ndarray | None) -> np.ndarray:
    """src (A, B, *S) (any strides) -> (A, B, *padded), zero padded (negative pads crop), with
    lhs_dilation-1 zeros inserted between elements. A reused `out` has only its zeros rewritten."""
    lhs_dilation = lhs_dilation or (1,) * (src.ndim - 2)
    dilated = [(s - 1) * d + 1 for s, d in zip(src.shape[2:], lhs_dilation)]
    shape = (*src.shape[:2], *(lo + hi + s for (lo, hi), s in zip(pads, dilated)))
    src_sl, dst_sl = zip(*(_placement(lo, hi, size, d) for (lo, hi), size, d in zip(pads, src.shape[2:], lhs_dilation)))
    if out is None or out.shape != shape or out.dtype != src.dtype:
        out = np.zeros(shape, dtype=src.dtype)
    elif any(d != 1 for d in lhs_dilation):
        out[...] = 0
    else:
        _zero_outside(out, dst_sl)
    out[(slice(None), slice(None), *dst_sl)] = src[(slice(None), slice(None), *src_sl)]
    return out


def pad_channels_first(x: np.ndarray, pads, lhs_dilation=None, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, *S) -> (C, N, *padded): zero padding per side (negative crops), optional
    zero insertion of lhs_dilation-1 zeros between elements (the lectures' up-sampling)."""
    return _pad_into(x.swapaxes(0, 1), pads, lhs_dilation, out)


def pad_spatial(x: np.ndarray, pads, lhs_dilation=None, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, *S) -> (N, C, *padded): as pad_channels_first, keeping the batch axis first."""
    return _pad_into(x, pads, lhs_dilation, out)


def im2col(xp: np.ndarray, kernel, stride, dilation, out, cols: np.ndarray | None = None) -> np.ndarray:
    """xp (A, B, *padded) -> cols (A, K, B, *out). A Python loop over kernel offsets only."""
    a, b = xp.shape[:2]
    shape = (a, int(np.prod(kernel)), b, *out)
    if cols is None or cols.shape != shape or cols.dtype != xp.dtype:
        cols = np.empty(shape, dtype=xp.dtype)
    for k_idx, window in _windows(kernel, stride, dilation, out):
        cols[:, k_idx] = xp[(slice(None), slice(None), *window)]
    return cols


def col2im(cols: np.ndarray, padded, kernel, stride, dilation, out, xp: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of im2col: cols (A, K, B, *out) -> xp (A, B, *padded), overlaps summed.
    `xp`, if given with the right shape, is reused as the (zeroed) accumulator."""
    a, _, b = cols.shape[:3]
    shape = (a, b, *padded)
    if xp is None or xp.shape != shape or xp.dtype != cols.dtype:
        xp = np.zeros(shape, dtype=cols.dtype)
    else:
        xp[...] = 0
    for k_idx, window in _windows(kernel, stride, dilation, out):
        xp[(slice(None), slice(None), *window)] += cols[:, k_idx]
    return xp


def _unpad_from(src: np.ndarray, pads, spatial, lhs_dilation, lead_shape) -> np.ndarray:
    """Adjoint of _pad_into for a (possibly transposed) view src (A, B, *padded) -> (A, B, *spatial)."""
    lhs_dilation = lhs_dilation or (1,) * len(spatial)
    dst, srcs = zip(*(_placement(lo, hi, size, d) for (lo, hi), size, d in zip(pads, spatial, lhs_dilation)))
    covers = all(d.stop - d.start == size for d, size in zip(dst, spatial))
    result = (np.empty if covers else np.zeros)((*lead_shape, *spatial), dtype=src.dtype)
    result[(slice(None), slice(None), *dst)] = src[(slice(None), slice(None), *srcs)]
    return result


def unpad_channels_first(xp: np.ndarray, pads, spatial, lhs_dilation=None) -> np.ndarray:
    """Adjoint of pad_channels_first: (C, N, *padded) -> (N, C, *spatial)."""
    return _unpad_from(xp.swapaxes(0, 1), pads, spatial, lhs_dilation, (xp.shape[1], xp.shape[0]))


def unpad_spatial(xp: np.ndarray, pads, spatial, lhs_dilation=None) -> np.ndarray:
    """Adjoint of pad_spatial: (N, C, *padded) -> (N, C, *spatial)."""
    return _unpad_from(xp, pads, spatial, lhs_dilation, xp.shape[:2])


# ---------------------------------------------------------------------------------------
# Depthwise 2-D convolution as banded matrices (groups == C_in == C_out)
# ---------------------------------------------------------------------------------------
# A depthwise filter touches one channel, so im2col would build K copies of the input for
# a matrix-vector product per channel. Instead stack the kw column-shifted copies of each
# padded input plane ("row stack") and multiply blocks of Bh output rows by a small banded
# matrix that holds the filter taps, one small GEMM per (sample, channel, row block), all
# in N, C order (no transposes):
#
#     S[n, c, h, b, j] = xpad[n, c, h, j*sw + b*dw]                      (N, C, Hp, kw, Wo)
#     B[c, i, r, b]    = w[c, 0, a, b]  if r == i*sh + a*dh else 0        (C, Bh, R, kw)
#     y[n, c, q*Bh + i] = sum_{r,b} B[c, i, r, b] S[n, c, q*Bh*sh + r, b]  R = (Bh-1)*sh + dh*(kh-1) + 1
#
# The band is the same for every block (a convolution is translation invariant). Backward:
# dw is the band of dY_block @ S_block^T summed (band_matrix_adjoint); dS = B^T @ dY is
# scattered back by row_stack_adjoint. The band wastes R/kh of the multiply-adds on zeros,
# which small BLAS calls still do faster than NumPy's single-threaded elementwise products.
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
    for b in range(kernel_w):
        j, src = _stack_columns(b, stride_w, dilation_w, left, w, out_w)
        rows = planes[:, :, b, top:top + h]
        if zero_borders:
            rows[..., :j.start] = 0
            rows[..., j.stop:] = 0
        rows[..., j] = x[..., src]
    return out


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
    taps = np.lib.stride_tricks.as_strided(dy_stack, (n, c, kernel_h, kernel_w, h * w),
                                           (s_n, s_c, dilation_h * s_h, s_b, s_w), writeable=False)
    if hasattr(np, "vecdot"):              # NumPy >= 2: dot products that never start BLAS threads
        dw = np.vecdot(taps, x.reshape(n, c, 1, 1, h * w)).sum(axis=0)         # (C, kh, kw), both flipped
    else:
        dw = np.matmul(taps, x.reshape(n, c, 1, h * w, 1))[..., 0].sum(axis=0)
    return dw[:, None, ::-1, ::-1]


def stack_blocks(stack: np.ndarray, first_row: int, blocks: int, rows: int, stride_h: int, span: int) -> np.ndarray:
    """Overlapping row blocks of S (N, C, Hs, kw, Wo), no copy: -> (N, C, blocks, span*kw, Wo),
    block q holding stack rows [first_row + q*rows*sh, ... + span)."""
    n, c, _, kernel_w, out_w = stack.shape
    sn, sc, sh_, sb, sj = stack.strides
    assert sh_ == kernel_w * sb and first_row + (blocks - 1) * rows * stride_h + span <= stack.shape[2]
    return np.lib.stride_tricks.as_strided(stack[:, :, first_row:], (n, c, blocks, span * kernel_w, out_w),
                                           (sn, sc, rows * stride_h * sh_, sb, sj), writeable=False)
