"""The matrix forms of convolution: patch matrices (im2col) and their adjoint (col2im),
and the zero padding (with input dilation) they read from. (The banded form of depthwise
convolution is in convolution/banded.py.)

Two layouts of the patch matrix are used on the fast path (see convolution/):

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


def zero_outside(out: np.ndarray, region) -> None:
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
        zero_outside(out, dst_sl)
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


def _unpad_from(src: np.ndarray, pads, spatial, lhs_dilation, lead_shape, out=None) -> np.ndarray:
    """Adjoint of _pad_into for a (possibly transposed) view src (A, B, *padded) -> (A, B, *spatial),
    written into `out` if given."""
    lhs_dilation = lhs_dilation or (1,) * len(spatial)
    dst, srcs = zip(*(_placement(lo, hi, size, d) for (lo, hi), size, d in zip(pads, spatial, lhs_dilation)))
    covers = all(d.stop - d.start == size for d, size in zip(dst, spatial))
    if out is None:
        result = (np.empty if covers else np.zeros)((*lead_shape, *spatial), dtype=src.dtype)
    else:
        result = out
        if not covers:
            result[...] = 0
    result[(slice(None), slice(None), *dst)] = src[(slice(None), slice(None), *srcs)]
    return result


def unpad_channels_first(xp: np.ndarray, pads, spatial, lhs_dilation=None, out=None) -> np.ndarray:
    """Adjoint of pad_channels_first: (C, N, *padded) -> (N, C, *spatial) (into `out` if given)."""
    return _unpad_from(xp.swapaxes(0, 1), pads, spatial, lhs_dilation, (xp.shape[1], xp.shape[0]), out)


def unpad_spatial(xp: np.ndarray, pads, spatial, lhs_dilation=None, out=None) -> np.ndarray:
    """Adjoint of pad_spatial: (N, C, *padded) -> (N, C, *spatial) (into `out` if given)."""
    return _unpad_from(xp, pads, spatial, lhs_dilation, xp.shape[:2], out)
