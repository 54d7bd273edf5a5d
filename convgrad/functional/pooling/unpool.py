"""Max unpooling: the scatter that places each value back at its arg-max (the indices
max pooling returns); its backward gathers.

x (N, C, *S), indices (N, C, *S) -> y (N, C, *output_size)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._checks import as_tuple, check_grad
from .geometry import check_pool_input, pool_args, spatial_dims


@dataclass
class MaxUnpoolCache:
    indices: np.ndarray     # (N*C, prod(in)) flat positions in the output planes
    in_shape: tuple
    out_shape: tuple
    dtype: np.dtype
    where: str


def unpool_output_size(in_spatial, kernel, stride, padding, output_size, where) -> tuple:
    """torch's _unpool_output_size: (In - 1)*s - 2p + k, or a given size within s of it."""
    n = len(kernel)
    default = tuple((i - 1) * s + k - 2 * p for i, k, s, p in zip(in_spatial, kernel, stride, padding))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        if len(size) == n + 2:
            size = size[2:]
        if len(size) != n:
            raise ValueError(f"{where}: output_size should be a sequence of {n} or {n + 2} ints, got {output_size!r}")
        size = as_tuple(size, n, "output_size", where)
        for d, (o, base, s) in enumerate(zip(size, default, stride)):
            if not base - s < o < base + s:
                raise ValueError(f"{where}: invalid output_size {tuple(output_size)} (dim {d} must be between "
                                 f"{base - s} and {base + s}, exclusive)")
    if any(o < 1 for o in size):
        raise ValueError(f"{where}: output size {size} is not positive for input spatial size {tuple(in_spatial)}")
    return size


def max_unpool_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                       n_dims: int | None = None, where: str | None = None):
    """x, indices (N, C, *S) -> (y (N, C, *out), cache): y's (n, c) plane, flattened, holds
    x[n, c] at indices[n, c] and zeros elsewhere (torch's max_unpool)."""
    n, name = spatial_dims(x, n_dims, "max_unpool")
    where = where or name
    check_pool_input(x, n, where)
    if not isinstance(indices, np.ndarray) or not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{where}: expected indices as an integer numpy.ndarray, got "
                        f"{indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__}")
    if indices.shape != x.shape:
        raise ValueError(f"{where}: expected indices of the input's shape {x.shape}, got {indices.shape}")
    kernel, stride, _, _ = pool_args(kernel_size, stride, 0, 1, n, where)
    padding = as_tuple(padding, n, "padding", where, minimum=0)
    out = unpool_output_size(x.shape[2:], kernel, stride, padding, output_size, where)
    planes, plane_size = x.shape[0] * x.shape[1], math.prod(out)
    flat = indices.reshape(planes, math.prod(x.shape[2:])).astype(np.int64, copy=False)
    bad = (flat < 0) | (flat >= plane_size)
    if bad.any():
        raise ValueError(f"{where}: found an invalid max index {int(flat[bad][0])} "
                         f"(output planes are of size {'x'.join(map(str, out))})")
    y = np.zeros((planes, plane_size), dtype=x.dtype)
    np.put_along_axis(y, flat, x.reshape(flat.shape), axis=1)
    out_shape = x.shape[:2] + out
    return y.reshape(out_shape), MaxUnpoolCache(flat, tuple(x.shape), out_shape, x.dtype, where)


def max_unpool_backward(dy, cache: MaxUnpoolCache) -> np.ndarray:
    """dx[n, c, i] = dy[n, c, indices[n, c, i]] (a gather): (N, C, *out) -> (N, C, *S)."""
    g = check_grad(dy, cache.out_shape, cache.dtype, cache.where)
    planes = cache.indices.shape[0]
    return np.take_along_axis(g.reshape(planes, math.prod(cache.out_shape[2:])), cache.indices,
                              axis=1).reshape(cache.in_shape)
