"""The lectures' resampling units and their backward passes.

    downsample(x, s)      keeps every s-th element            (dSample)
    upsample_zeros(x, s)  inserts s-1 zeros between elements  (uSample)
    upsample_nearest(x, s) repeats every element s times

Stride is down-sampling, so its backward is up-sampling by zero insertion, and the other
way round: downsample_backward = upsample_zeros (padded to the input size) and
upsample_zeros_backward = downsample. Nearest up-sampling's backward sums each s-block.
All act on the spatial axes of (N, C, *S), S of length 1, 2 or 3.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_tuple, check_float_array, check_shape


def _factors(x, factor, where, name="input"):
    check_float_array(x, where, name)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{where}: expected {name} of rank 3, 4 or 5 (N, C, *spatial), got shape {x.shape}")
    return as_tuple(factor, x.ndim - 2, "scale factor", where)


def _spatial(x, slices):
    return (slice(None), slice(None), *slices)


def downsample(x: np.ndarray, factor, *, where: str = "downsample", name: str = "input") -> np.ndarray:
    """(N, C, *S) -> (N, C, *ceil(S/f)): x[..., ::f]."""
    f = _factors(x, factor, where, name)
    return np.ascontiguousarray(x[_spatial(x, [slice(None, None, s) for s in f])])


def downsample_backward(dy: np.ndarray, factor, in_spatial) -> np.ndarray:
    """Up-sampling by zero insertion back to the input size: (N, C, *ceil(S/f)) -> (N, C, *S)."""
    where = "downsample_backward"
    f = _factors(dy, factor, where, "grad")
    in_spatial = check_shape(where, "in_spatial", in_spatial)
    expected = tuple(-(-s // k) for s, k in zip(in_spatial, f))
    if len(in_spatial) != dy.ndim - 2 or dy.shape[2:] != expected:
        raise ValueError(f"{where}: expected a gradient of spatial shape {expected} for an input of spatial shape "
                         f"{in_spatial} and scale factor {f}, got shape {dy.shape}")
    dx = np.zeros((*dy.shape[:2], *in_spatial), dtype=dy.dtype)
    dx[_spatial(dx, [slice(None, None, s) for s in f])] = dy
    return dx


def upsample_zeros(x: np.ndarray, factor, *, where: str = "upsample_zeros") -> np.ndarray:
    """Zero insertion: (N, C, *S) -> (N, C, *((S-1)*f + 1)); out[..., ::f] = x."""
    f = _factors(x, factor, where)
    out = np.zeros((*x.shape[:2], *((s - 1) * k + 1 for s, k in zip(x.shape[2:], f))), dtype=x.dtype)
    out[_spatial(out, [slice(None, None, k) for k in f])] = x
    return out


def upsample_zeros_backward(dy: np.ndarray, factor) -> np.ndarray:
    """Down-sampling: (N, C, *((S-1)*f + 1)) -> (N, C, *S)."""
    return downsample(dy, factor, where="upsample_zeros_backward", name="grad")


def upsample_nearest(x: np.ndarray, factor, *, where: str = "upsample_nearest") -> np.ndarray:
    """(N, C, *S) -> (N, C, *(S*f)): every element repeated f times along each spatial axis."""
    f = _factors(x, factor, where)
    out = x
    for axis, k in enumerate(f, start=2):
        out = np.repeat(out, k, axis=axis)
    return out


def upsample_nearest_backward(dy: np.ndarray, factor) -> np.ndarray:
    """Each f-block of the gradient summed: (N, C, *(S*f)) -> (N, C, *S)."""
    f = _factors(dy, factor, "upsample_nearest_backward", "grad")
    if any(s % k for s, k in zip(dy.shape[2:], f)):
        raise ValueError(f"upsample_nearest_backward: expected a gradient whose spatial sizes are multiples of the "
                         f"scale factor {f}, got shape {dy.shape}")
    shape = list(dy.shape[:2])
    for s, k in zip(dy.shape[2:], f):
        shape += [s // k, k]
    return dy.reshape(shape).sum(axis=tuple(range(3, len(shape), 2)))
