"""Average pooling: y = (window sum over zero-padded x) / divisor (torch's
count_include_pad and divisor_override). Backward: each input of a window receives
1/divisor of that window's gradient, overlapping windows add. It is computed by the same
per-axis tap scatter as max-pool's backward with every tap taken (taps.scatter_axes); it
equals conv_transpose(dy / divisor, ones kernel), which tests/test_pooling.py checks.

x (N, C, *S) -> y (N, C, *out); dy (N, C, *out) -> dx (N, C, *S)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..._checks import check_bool, check_grad
from .._buffers import buffer as work_buffer
from .geometry import PoolGeometry, pool_geometry, spatial_dims
from .taps import along_axis, axis_ranges, on_axis, pad_last, padded_last_width, scatter_axes


@dataclass
class AvgPoolCache:
    geo: PoolGeometry
    divisor: np.ndarray     # broadcastable to (N, C, *out)
    dtype: np.dtype
    workspace: dict | None = None


def _divisor_along(size, k, s, p, n_out, count_include_pad) -> np.ndarray:
    """torch's per-axis window count: clipped to the padded input when padding counts,
    to the input itself when it does not."""
    start = np.arange(n_out) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool_divisor(geo: PoolGeometry, count_include_pad=True, divisor_override=None, dtype=np.float64):
    """(1, 1, *out) array of the number each window sum is divided by (separable: a product)."""
    if divisor_override is not None:
        return np.full((1, 1) + (1,) * len(geo.out), divisor_override, dtype=dtype)
    div = np.ones((1, 1) + (1,) * len(geo.out), dtype=np.int64)
    for a, (size, k, s, p, o) in enumerate(zip(geo.in_shape[2:], geo.kernel, geo.stride, geo.padding, geo.out)):
        div = div * along_axis(_divisor_along(size, k, s, p, o, count_include_pad), 2 + a, 2 + len(geo.out))
    return div.astype(dtype)


def check_divisor_override(divisor_override, where):
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, (numbers.Integral, np.integer)):
        raise TypeError(f"{where}: divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{where}: divisor_override must not be zero")
    return int(divisor_override)


def avg_pool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None, *, n_dims: int | None = None, where: str | None = None,
                     workspace: dict | None = None):
    """x (N, C, *S) -> (y (N, C, *out), cache): y = (window sum over zero-padded x) / divisor.
    workspace: as in max_pool_forward."""
    n, name = spatial_dims(x, n_dims, "avg_pool")
    where = where or name
    divisor_override = check_divisor_override(divisor_override, where)
    count_include_pad = check_bool(where, "count_include_pad", count_include_pad)
    geo = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, n, where)
    if n == 3 and any(size < k for size, k in zip(x.shape[2:], geo.kernel)):
        raise ValueError(f"{where}: input spatial size {x.shape[2:]} is smaller than kernel_size {geo.kernel} "
                         f"(torch's avg_pool3d requires the unpadded input to hold a window)")
    width = padded_last_width(geo)
    cur = x if width is None else pad_last(x, geo.padding[-1], width, 0.0, workspace)
    for a in reversed(range(n)):
        cur = _window_sums(cur, geo, a, width, workspace)
    divisor = avg_pool_divisor(geo, count_include_pad, divisor_override, x.dtype)
    y = np.divide(cur, divisor, out=cur) if geo.kernel[0] > 1 else cur / divisor
    return y, AvgPoolCache(geo, divisor, x.dtype, workspace)


def _window_sums(cur: np.ndarray, geo: PoolGeometry, a: int, width, ws) -> np.ndarray:
    """Sum over the k taps of axis a (zero padding adds nothing): (.., size, ..) -> (.., n_out, ..);
    a fresh array for axis 0 (it becomes the output), a view when k == 1."""
    k, o = geo.kernel[a], geo.out[a]
    taps = [(lo, hi, on_axis(cur, 2 + a, sl)) for lo, hi, sl in axis_ranges(geo, a, width)[1]]
    if k == 1:
        return taps[0][2]
    shape = cur.shape[:2 + a] + (o,) + cur.shape[3 + a:]
    acc = np.empty(shape, cur.dtype) if a == 0 else work_buffer(ws, f"sum{a}", shape, cur.dtype)
    begin = 0
    if taps[0][:2] == taps[1][:2] == (0, o):            # taps 0 and 1 reach every window
        np.add(taps[0][2], taps[1][2], out=acc)
        begin = 2
    else:
        acc.fill(0)
    for lo, hi, v in taps[begin:]:
        if hi > lo:
            on_axis(acc, 2 + a, slice(lo, hi))[...] += v
    return acc


def avg_pool_backward(dy, cache: AvgPoolCache) -> np.ndarray:
    """Each window's inputs get 1/divisor of its gradient, overlapping windows add: the tap
    scatter with every tap taken (it equals conv_transpose(dy / divisor, ones kernel)).
    dy (N, C, *out) -> dx (N, C, *S)."""
    geo = cache.geo
    g = check_grad(dy, geo.out_shape, cache.dtype, geo.where) / cache.divisor
    return scatter_axes(g, [None] * len(geo.kernel), geo, True, cache.workspace)
