"""Max pooling: y = the max of each window (torch's tie and NaN rules); backward routes
dJ/dy to the arg-max of each window, zero elsewhere (the lectures' rule), by the per-axis
tap scatter of taps.py.

x (N, C, *S) -> y (N, C, *out); dy (N, C, *out) -> dx (N, C, *S)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._checks import all_finite, check_grad
from .._bits import zero_where
from .adaptive import AdaptiveMaxPoolCache
from .geometry import PoolGeometry, pool_geometry, spatial_dims
from .taps import (axis_geometry, axis_ranges, first_inside, on_axis, pad_last, padded_last_width, plane_indices,
                   running_max, scatter_axes)


@dataclass
class MaxPoolCache:
    geo: PoolGeometry
    args: list          # per spatial axis: the chosen tap of each partial window (None: k == 1)
    dtype: np.dtype
    workspace: dict | None = None
    relu_zero: np.ndarray | None = None        # relu=True: where relu(y) == 0 (no gradient passes)


def _max_pool_reduce(x: np.ndarray, geo: PoolGeometry, nan_aware: bool, ws=None):
    """Reduce the spatial axes last to first. Returns (y, per-axis chosen taps)."""
    n = len(geo.kernel)
    width = padded_last_width(geo)
    cur = x if width is None else pad_last(x, geo.padding[-1], width, -np.inf, ws)
    args = [None] * n
    for a in reversed(range(n)):
        _, _, s, p, d, o = axis_geometry(geo, a)
        taps = [(lo, hi, on_axis(cur, 2 + a, sl)) for lo, hi, sl in axis_ranges(geo, a, width)[1]]
        cur, args[a] = running_max(taps, o, 2 + a, first_inside(o, s, p, d), nan_aware, ws, str(a), last=a == 0)
    return cur, args


def max_pool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                     n_dims: int | None = None, where: str | None = None, workspace: dict | None = None,
                     relu: bool = False):
    """x (N, C, *S) -> (y (N, C, *out), cache); the padding counts as -inf and
    out = floor_or_ceil((S + 2p - d(k-1) - 1)/s) + 1 (torch's rule). n_dims defaults to x.ndim - 2.
    workspace: a dict whose work arrays are reused by the next call (that call invalidates
    this call's cache). relu=True: max_pool(relu(x)), computed as relu(max_pool(x)) on the
    pooled values — equal, gradient included, because relu is monotone: where a window's max
    is positive both send the gradient to the same element, otherwise both send none. (A
    window made only of padding is the exception: -inf here, 0 in torch. Sequential uses
    relu=True only for unpadded 2x2 pooling.)"""
    n, name = spatial_dims(x, n_dims, "max_pool")
    where = where or name
    geo = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, n, where)
    y, args = _max_pool_reduce(x, geo, False, workspace)
    if np.isnan(y).any():            # NaN wins every comparison in torch: redo with that rule
        y, args = _max_pool_reduce(x, geo, True, workspace)
    if y.base is not None:           # kernel 1: a view of x
        y = y.copy()
    relu_zero = None
    if relu:                         # torch's ReLU passes the gradient of a NaN: drop only y <= 0
        relu_zero = np.less_equal(y, 0)
        np.maximum(y, 0, out=y)
    return y, MaxPoolCache(geo, args, x.dtype, workspace, relu_zero=relu_zero)


def max_pool_backward(dy, cache: MaxPoolCache) -> np.ndarray:
    """dy (N, C, *out) -> dx (N, C, *S): dy routed to each window's arg-max, overlaps added."""
    geo = cache.geo
    g = check_grad(dy, geo.out_shape, cache.dtype, geo.where)
    if cache.relu_zero is not None:   # the ReLU in front (relu=True): no gradient where relu(y) == 0
        g = zero_where(g, cache.relu_zero)
    return scatter_axes(g, cache.args, geo, all_finite(g), cache.workspace)


def max_pool_indices(cache) -> np.ndarray:
    """torch's return_indices: the flat position of each arg-max within its (N, C) plane of
    the unpadded input, int64 of the output's shape. Accepts a max or adaptive-max cache."""
    if isinstance(cache, AdaptiveMaxPoolCache):
        return cache.indices.copy()
    geo = cache.geo
    bases = [np.arange(o) * s - p for o, s, p in zip(geo.out, geo.stride, geo.padding)]
    return plane_indices(cache.args, bases, geo.dilation, geo.in_shape[2:], geo.out_shape)
