"""The matrix form of convolution: patch matrices (im2col) and their adjoint (col2im).

Layout used throughout the fast path (channel-major, so one large GEMM does the work):

    padded input   xp   : (C, N, *padded)        channels first, then batch
    patch matrix   cols : (C, K, N, *out)        K = prod(kernel) kernel offsets
                          viewed as (C*K, N*prod(out)) for the GEMM

cols[c, k, n, o] = xp[c, n, o*stride + k*dilation]. col2im is the exact adjoint: it
scatter-adds every patch entry back to the input position it was read from, which is
"convolve the padded, stride-dilated output gradient with the flipped filter" with the
sums taken in the other order.
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


def pad_channels_first(x: np.ndarray, pads, lhs_dilation=None, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, *S) -> (C, N, *padded): zero padding per side (negative crops), optional
    zero insertion of lhs_dilation-1 zeros between elements (the lectures' up-sampling)."""
    n_sp = x.ndim - 2
    lhs_dilation = lhs_dilation or (1,) * n_sp
    dilated = [(s - 1) * d + 1 for s, d in zip(x.shape[2:], lhs_dilation)]
    full = [lo + hi + s for (lo, hi), s in zip(pads, dilated)]
    shape = (x.shape[1], x.shape[0], *full)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.zeros(shape, dtype=x.dtype)
    else:
        out[...] = 0
    src, dst = zip(*(_placement(lo, hi, size, d) for (lo, hi), size, d in zip(pads, x.shape[2:], lhs_dilation)))
    out[(slice(None), slice(None), *dst)] = x.transpose(1, 0, *range(2, x.ndim))[(slice(None), slice(None), *src)]
    return out


def im2col(xp: np.ndarray, kernel, stride, dilation, out, cols: np.ndarray | None = None) -> np.ndarray:
    """xp (C, N, *padded) -> cols (C, K, N, *out). A Python loop over kernel offsets only."""
    c, n = xp.shape[:2]
    shape = (c, int(np.prod(kernel)), n, *out)
    if cols is None or cols.shape != shape or cols.dtype != xp.dtype:
        cols = np.empty(shape, dtype=xp.dtype)
    for k_idx, window in _windows(kernel, stride, dilation, out):
        cols[:, k_idx] = xp[(slice(None), slice(None), *window)]
    return cols


def col2im(cols: np.ndarray, padded, kernel, stride, dilation, out) -> np.ndarray:
    """Adjoint of im2col: cols (C, K, N, *out) -> xp (C, N, *padded), overlaps summed."""
    c, _, n = cols.shape[:3]
    xp = np.zeros((c, n, *padded), dtype=cols.dtype)
    for k_idx, window in _windows(kernel, stride, dilation, out):
        xp[(slice(None), slice(None), *window)] += cols[:, k_idx]
    return xp


def unpad_channels_first(xp: np.ndarray, pads, spatial, lhs_dilation=None) -> np.ndarray:
    """Adjoint of pad_channels_first: (C, N, *padded) -> (N, C, *spatial)."""
    lhs_dilation = lhs_dilation or (1,) * len(spatial)
    n, c = xp.shape[1], xp.shape[0]
    result = np.zeros((n, c, *spatial), dtype=xp.dtype)
    dst, src = zip(*(_placement(lo, hi, size, d) for (lo, hi), size, d in zip(pads, spatial, lhs_dilation)))
    result[(slice(None), slice(None), *dst)] = xp[(slice(None), slice(None), *src)].transpose(1, 0, *range(2, xp.ndim))
    return result
