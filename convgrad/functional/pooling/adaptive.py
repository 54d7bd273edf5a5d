"""Adaptive pooling: the output size is given; window i along an axis of size In spans
[floor(i*In/Out), ceil((i+1)*In/Out)). Average as a matrix per axis, max by running max.

x (N, C, *S) -> y (N, C, *output_size). NaN and inf stay in the windows that hold them (torch)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._checks import all_finite, as_tuple, check_grad
from .geometry import check_pool_input, spatial_dims
from .taps import along_axis, plane_indices, running_max


def adaptive_windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each of the n_out windows over an axis of length n_in (torch's rule)."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def check_output_size(output_size, n: int, where: str):
    """The output_size argument: an int >= 1, or an n-tuple of ints >= 1 or None (None keeps
    that input size). Returned as given (validated); a bool, float or string is a TypeError."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != n:
            raise TypeError(f"{where}: output_size must be an int or a tuple of {n} ints/None, got {output_size!r}")
        as_tuple(tuple(1 if v is None else v for v in output_size), n, "output_size", where, minimum=1)
    else:
        as_tuple(output_size, n, "output_size", where, minimum=1)
    return output_size


def adaptive_output_size(x, output_size, n: int, where: str) -> tuple:
    """int or n-tuple of ints/None (None keeps that input size) -> n-tuple of ints >= 1."""
    check_pool_input(x, n, where)
    check_output_size(output_size, n, where)
    if isinstance(output_size, (tuple, list)):
        return tuple(x.shape[2 + a] if v is None else int(v) for a, v in enumerate(output_size))
    return as_tuple(output_size, n, "output_size", where)


def _adaptive_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix: row i holds 1/len over window i."""
    start, end = adaptive_windows(n_in, n_out)
    cols = np.arange(n_in)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _apply_along(x: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """Contract `axis` of x (length n_in) with matrix (n_out, n_in): one GEMM."""
    return np.moveaxis(np.tensordot(x, matrix, axes=([axis], [1])), -1, axis)


def _window_means(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """The mean of each adaptive window along `axis` (one reduction per window)."""
    start, end = adaptive_windows(x.shape[axis], n_out)
    head = (slice(None),) * axis
    return np.stack([x[head + (slice(s, e),)].mean(axis=axis, dtype=x.dtype) for s, e in zip(start, end)], axis=axis)


def _window_spread(g: np.ndarray, n_in: int, axis: int) -> np.ndarray:
    """The adjoint of _window_means: each window's gradient / its length added to its inputs."""
    start, end = adaptive_windows(n_in, g.shape[axis])
    head = (slice(None),) * axis
    dx = np.zeros(g.shape[:axis] + (n_in,) + g.shape[axis + 1:], g.dtype)
    for i, (s, e) in enumerate(zip(start, end)):
        dx[head + (slice(s, e),)] += g[head + (slice(i, i + 1),)] / (e - s)
    return dx


@dataclass
class AdaptiveAvgPoolCache:
    in_shape: tuple
    matrices: list          # per spatial axis (n_out, n_in); None where n_out == n_in
    dtype: np.dtype
    where: str


def adaptive_avg_pool_forward(x, output_size, *, n_dims: int | None = None, where: str | None = None):
    """x (N, C, *S) -> (y (N, C, *output_size), cache). An average over a rectangle is
    separable, so y = x contracted with one (Out, In) averaging matrix per axis."""
    n, name = spatial_dims(x, n_dims, "adaptive_avg_pool")
    where = where or name
    out = adaptive_output_size(x, output_size, n, where)
    mats = [None if o == size else _adaptive_matrix(size, o, x.dtype) for size, o in zip(x.shape[2:], out)]
    if all(o == 1 for o in out):          # global average pooling: one mean per plane
        plane = math.prod(x.shape[2:])
        y = x.reshape(x.shape[0], x.shape[1], plane).mean(axis=-1, dtype=x.dtype).reshape(x.shape[:2] + out)
        return y, AdaptiveAvgPoolCache(tuple(x.shape), mats, x.dtype, where)
    y = x
    for a in reversed(range(n)):
        if mats[a] is not None:
            y = _apply_along(y, mats[a], 2 + a)
    if not all_finite(y):
        # A NaN or inf times a zero of the matrix is NaN: it would reach every window of its
        # row. Redo with window means, which keep it in the windows that hold it (torch).
        y = x
        for a in reversed(range(n)):
            if mats[a] is not None:
                y = _window_means(y, out[a], 2 + a)
    y = np.array(y, copy=True, order="C") if y is x else np.ascontiguousarray(y)
    return y, AdaptiveAvgPoolCache(tuple(x.shape), mats, x.dtype, where)


def adaptive_avg_pool_backward(dy, cache: AdaptiveAvgPoolCache) -> np.ndarray:
    """dx = dy contracted with each averaging matrix transposed: (N, C, *out) -> (N, C, *S)."""
    out_shape = cache.in_shape[:2] + tuple(cache.in_shape[2 + a] if m is None else m.shape[0]
                                           for a, m in enumerate(cache.matrices))
    g = check_grad(dy, out_shape, cache.dtype, cache.where)
    if all(o == 1 for o in out_shape[2:]):
        dx = np.empty(cache.in_shape, cache.dtype)
        dx[...] = g / math.prod(cache.in_shape[2:])
        return dx
    exact = not all_finite(g)             # as in forward: a NaN/inf stays in its windows
    for a, m in enumerate(cache.matrices):
        if m is not None:
            g = _window_spread(g, cache.in_shape[2 + a], 2 + a) if exact else _apply_along(g, m.T, 2 + a)
    return np.array(g, copy=True, order="C") if g is dy else np.ascontiguousarray(g)


@dataclass
class AdaptiveMaxPoolCache:
    in_shape: tuple
    indices: np.ndarray     # (N, C, *out) torch's flat index within each (N, C) plane
    dtype: np.dtype
    where: str


def _adaptive_max_reduce(x: np.ndarray, out: tuple, nan_aware: bool):
    n = len(out)
    cur, args, starts = x, [None] * n, [None] * n
    for a in reversed(range(n)):
        start, end = adaptive_windows(x.shape[2 + a], out[a])
        kmax = int(max(end - start, default=1))
        taps = []
        for j in range(kmax):
            # past its end a window re-reads its first element, which cannot win (strict >)
            valid = start + j < end
            taps.append(np.take(cur, np.where(valid, start + j, start), axis=2 + a))
            if nan_aware and not valid.all():
                invalid = along_axis(~valid, 2 + a, cur.ndim)
                taps[-1] = np.where(invalid, -np.inf, taps[-1])
        cur, args[a] = running_max([(0, out[a], t) for t in taps], out[a], 2 + a, None, nan_aware)
        starts[a] = start
    return cur, args, starts


def adaptive_max_pool_forward(x, output_size, *, n_dims: int | None = None, where: str | None = None):
    """x (N, C, *S) -> (y (N, C, *output_size), cache); cache.indices as torch's return_indices."""
    n, name = spatial_dims(x, n_dims, "adaptive_max_pool")
    where = where or name
    out = adaptive_output_size(x, output_size, n, where)
    y, args, starts = _adaptive_max_reduce(x, out, nan_aware=False)
    if np.isnan(y).any():
        y, args, starts = _adaptive_max_reduce(x, out, nan_aware=True)
    indices = plane_indices(args, starts, (1,) * n, x.shape[2:], y.shape)
    if y.base is not None:
        y = y.copy()
    return y, AdaptiveMaxPoolCache(tuple(x.shape), indices, x.dtype, where)


def adaptive_max_pool_backward(dy, cache: AdaptiveMaxPoolCache) -> np.ndarray:
    """dx[n, c, index] += dy[n, c, o] for every output o (windows may overlap)."""
    g = check_grad(dy, cache.indices.shape, cache.dtype, cache.where)
    return _scatter_add(g, cache.indices, cache.in_shape)


def _scatter_add(g: np.ndarray, indices: np.ndarray, in_shape) -> np.ndarray:
    """(N, C, *out) values added at per-plane flat indices of an (N, C, *S) array (bincount)."""
    planes, plane_size = in_shape[0] * in_shape[1], math.prod(in_shape[2:])
    flat = (indices.reshape(planes, math.prod(indices.shape[2:])) + (np.arange(planes) * plane_size)[:, None]).ravel()
    dx = np.bincount(flat, weights=g.ravel(), minlength=planes * plane_size)
    return dx.astype(g.dtype).reshape(in_shape)
