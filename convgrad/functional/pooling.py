"""Pooling: max, average, adaptive and max-unpooling, each a forward and its backward.

Layout (N, C, *spatial) for 1-, 2- and 3-D, with torch's arguments, output sizes, tie and
NaN rules. Every forward returns (y, cache); every backward takes (dy, cache) -> dx.

Window reductions are separable: the max (or sum) over a kh x kw window is the max over
kh rows of the max over kw columns. Reducing the last axis first and the earlier ones
after keeps torch's row-major scan order (the first maximum wins, a NaN always wins), and
costs kh + kw strided passes instead of kh * kw. Each pass is a loop over the taps of one
axis with strided slices — no loop over windows, pixels or batch elements.

The backward passes, as the lectures derive them:

    max:   dJ/dx routes dJ/dy to the arg-max of each window, zero elsewhere;
    mean:  dJ/dx = conv_transpose(dJ/dy / divisor, ones kernel): each input of a window
           receives 1/divisor of that window's gradient.

Where windows overlap (stride < kernel) the contributions are added, never overwritten.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import as_tuple, check_float_array
from ._bits import zero_where

_LAYOUTS = {1: "N, C, L", 2: "N, C, H, W", 3: "N, C, D, H, W"}


# ---------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolGeometry:
    """Normalised pooling arguments for one input shape (tuples per spatial axis)."""
    in_shape: tuple     # (N, C, *spatial)
    kernel: tuple
    stride: tuple
    padding: tuple      # the same on both sides, as in torch
    dilation: tuple
    out: tuple          # output spatial size
    where: str

    @property
    def out_shape(self) -> tuple:
        return (*self.in_shape[:2], *self.out)


def pool_args(kernel_size, stride, padding, dilation, n: int, where: str):
    """Normalise (kernel, stride, padding, dilation) to n-tuples; stride None (or ()) = kernel.
    torch's rule: padding at most half the kernel size."""
    kernel = as_tuple(kernel_size, n, "kernel_size", where)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else as_tuple(stride, n, "stride", where)
    padding = as_tuple(padding, n, "padding", where, minimum=0)
    dilation = as_tuple(dilation, n, "dilation", where)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{where}: padding should be at most half of kernel_size, got padding={padding}, "
                         f"kernel_size={kernel}")
    return kernel, stride, padding, dilation


def pool_out_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: floor (or ceil) of (size + 2p - d(k-1) - 1)/s, plus 1;
    in ceil_mode the last window must start inside the input or its left padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _spatial_dims(x, n_dims, where_prefix):
    if n_dims is None:
        n_dims = x.ndim - 2 if isinstance(x, np.ndarray) and x.ndim in (3, 4, 5) else 2
    return n_dims, f"{where_prefix}{n_dims}d"


def check_pool_input(x, n: int, where: str) -> np.ndarray:
    """float32/float64 array of rank n + 2 with C >= 1 and every spatial size >= 1 (N may be 0)."""
    check_float_array(x, where)
    if x.ndim != n + 2:
        raise ValueError(f"{where}: expected input of rank {n + 2} ({_LAYOUTS[n]}), "
                         f"got shape {x.shape} (rank {x.ndim})")
    if x.shape[1] < 1 or any(s < 1 for s in x.shape[2:]):
        raise ValueError(f"{where}: expected input with non-zero channel and spatial sizes "
                         f"({_LAYOUTS[n]}), got shape {x.shape}")
    return x


def pool_geometry(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, n: int = 2,
                  where: str = "pool") -> PoolGeometry:
    """Validate input and arguments; compute the output size. Raises ValueError/TypeError."""
    check_pool_input(x, n, where)
    kernel, stride, padding, dilation = pool_args(kernel_size, stride, padding, dilation, n, where)
    out = tuple(pool_out_size(size, k, s, p, d, bool(ceil_mode))
                for size, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"{where}: output size {out} is too small: the kernel {kernel} (dilation {dilation}) "
                         f"does not fit the input {x.shape} padded by {padding}")
    return PoolGeometry(tuple(x.shape), kernel, stride, padding, dilation, out, where)


def _check_grad(dy, shape, dtype, where) -> np.ndarray:
    """dy must be a float array of the output's shape; returned in the forward's dtype."""
    check_float_array(dy, f"{where} backward", "grad_output")
    if dy.shape != tuple(shape):
        raise ValueError(f"{where} backward: expected grad_output of shape {tuple(shape)}, got {dy.shape}")
    return dy.astype(dtype, copy=False)


def _all_finite(a: np.ndarray) -> bool:
    # a finite sum means finite entries (one fast pass); otherwise check exactly
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.isfinite(np.sum(a)) or np.isfinite(a).all())


# ---------------------------------------------------------------------------------------
# Per-axis building blocks: the taps of all windows as strided slices
# ---------------------------------------------------------------------------------------
# Tap j of window o reads input position o*s + j*d - p. Along the leading axes padding is
# not materialised: each tap is applied to the range of windows for which that position
# lies inside the input (max pooling's -inf padding never wins, average pooling's zeros add
# nothing). Along the last axis the padding is copied in (see _padded_last_width).

def _on(a: np.ndarray, axis: int, sl: slice) -> np.ndarray:
    return a[(slice(None),) * axis + (sl,)]


def _tap_ranges(size: int, k: int, s: int, p: int, d: int, n_out: int):
    """Per tap j: (lo, hi, input slice): windows lo <= o < hi read x[o*s + j*d - p] inside the input."""
    ranges = []
    for j in range(k):
        off = j * d - p
        lo = max(0, -(off // s))                       # first o with o*s + off >= 0
        hi = max(lo, min(n_out, (size - 1 - off) // s + 1))
        first = lo * s + off
        ranges.append((lo, hi, slice(first, first + (hi - lo - 1) * s + 1, s) if hi > lo else slice(0, 0)))
    return ranges


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A 1-D array shaped to broadcast along `axis` of an ndim array."""
    return values.reshape((-1,) + (1,) * (ndim - 1 - axis))


def _tap_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint8) if k <= 256 else np.dtype(np.int32)


def _buffer(ws: dict | None, key: str, shape, dtype) -> np.ndarray:
    """An uninitialised work array, reused from ws across calls when shape and dtype match
    (untouched memory is slow to fault in; see docs/architecture.md)."""
    if ws is None:
        return np.empty(shape, dtype)
    buf = ws.get(key)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = ws[key] = np.empty(shape, dtype)
    return buf


def _running_max(taps, n_out: int, axis: int, first, nan_aware: bool, ws=None, key="", last=False):
    """Max over the taps of one axis with torch's scan rule: a later tap wins when it is
    strictly larger (or, nan_aware, when it is NaN). taps: per tap (lo, hi, view of the
    values windows lo..hi-1 read). first: per window the first tap inside the input, or None
    when that is tap 0 for every window.
    Returns (max, chosen tap or None for a single tap); the work arrays come from ws, the max
    too unless `last` (it is returned to the caller)."""
    k, v0 = len(taps), taps[0][2]
    if k == 1:
        return v0, None
    shape = v0.shape[:axis] + (n_out,) + v0.shape[axis + 1:]
    dt = _tap_dtype(k)
    m = np.empty(shape, v0.dtype) if last else _buffer(ws, f"max{key}", shape, v0.dtype)
    arg, hit, step = (_buffer(ws, f"{name}{key}", shape, t) for name, t in
                      (("arg", dt), ("hit", np.bool_), ("step", dt)))
    # torch starts each window's scan at -inf and its first tap inside the input. When tap 0
    # reaches every window (its padding, if any, holding -inf) m can start from tap 0 itself.
    full0 = taps[0][:2] == (0, n_out)
    fused = full0 and first is None and taps[1][:2] == (0, n_out)
    if not fused:
        if first is None:
            arg.fill(0)
        else:
            arg[...] = _along(first.astype(dt), axis, len(shape))
        if full0:
            np.copyto(m, v0)
        else:
            m.fill(-np.inf)
    with np.errstate(invalid="ignore"):
        for j in range(1 if full0 else 0, k):
            lo, hi, v = taps[j]
            if hi <= lo:
                continue
            mj, hj = _on(m, axis, slice(lo, hi)), _on(hit, axis, slice(lo, hi))
            prev = v0 if (fused and j == 1) else mj
            np.greater(v, prev, out=hj)
            if nan_aware:
                hj |= np.isnan(v)
                np.copyto(mj, np.where(hj, v, prev))
            else:
                np.maximum(prev, v, out=mj)
            if fused and j == 1:
                np.copyto(arg, hit)
                continue
            # taps come in increasing order, so the latest hit is also the largest index
            aj, sj = _on(arg, axis, slice(lo, hi)), _on(step, axis, slice(lo, hi))
            np.multiply(hj, dt.type(j), out=sj)
            np.maximum(aj, sj, out=aj)
    return m, arg


def _scatter_taps(g, arg, axis: int, size: int, ranges, disjoint: bool, tiles: bool, finite: bool,
                  ws=None, key="", last=False) -> np.ndarray:
    """The adjoint of reading the taps: g (..., n_out, ...) -> (..., size, ...), window o's
    gradient added at the input position of its tap j — of every tap (arg None: mean
    pooling's spread) or of the chosen one (arg[o] == j: max pooling's routing)."""
    shape = g.shape[:axis] + (size,) + g.shape[axis + 1:]
    out = np.empty(shape, g.dtype) if last else _buffer(ws, f"grad{key}", shape, g.dtype)
    if not tiles:                          # some positions belong to no window
        out.fill(0)
    if arg is not None:
        mask = _buffer(ws, f"mask{key}", g.shape, np.bool_)
        part = None if disjoint else _buffer(ws, f"part{key}", g.shape, g.dtype)
    for j, (lo, hi, sl) in enumerate(ranges):
        if hi <= lo:
            continue
        dst, gj = _on(out, axis, sl), _on(g, axis, slice(lo, hi))
        if arg is None:
            if disjoint:
                dst[...] = gj
            else:
                dst += gj
            continue
        mj = _on(mask, axis, slice(lo, hi))
        np.equal(_on(arg, axis, slice(lo, hi)), j, out=mj)
        if not finite:                     # inf * 0 would be NaN: select instead
            picked = np.where(mj, gj, 0)
            if disjoint:
                dst[...] = picked
            else:
                dst += picked
        elif disjoint:
            np.multiply(gj, mj, out=dst)
        else:
            dst += np.multiply(gj, mj, out=_on(part, axis, slice(lo, hi)))
    return out


def _plane_indices(args, bases, steps, in_spatial, out_shape) -> np.ndarray:
    """torch's flat index of each arg-max within its (N, C) plane, row-major over the input.

    Along axis a the chosen position is bases[a][o] + args[a] * steps[a]. args[a] was
    computed after the later axes were reduced, so it is indexed by the positions already
    chosen on the axes before it."""
    ndim = len(out_shape)
    grid = [np.arange(n).reshape((-1,) + (1,) * (ndim - 1 - i)) for i, n in enumerate(out_shape)]
    positions, flat = [], np.zeros(out_shape, dtype=np.int64)
    for a, arg in enumerate(args):
        base = _along(np.asarray(bases[a], dtype=np.int64), 2 + a, ndim)
        if arg is None:
            pos = np.broadcast_to(base, out_shape)
        else:
            pos = base + arg[tuple(grid[:2] + positions + grid[2 + a:])].astype(np.int64) * steps[a]
        # (a window made only of padding has no position inside; clip it for the gathers)
        positions.append(np.clip(pos, 0, in_spatial[a] - 1))
        flat = flat * in_spatial[a] + pos
    return flat


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------
@dataclass
class MaxPoolCache:
    geo: PoolGeometry
    args: list          # per spatial axis: the chosen tap of each partial window (None: k == 1)
    dtype: np.dtype
    workspace: dict | None = None
    relu_zero: np.ndarray | None = None        # relu=True: where relu(y) == 0 (no gradient passes)


def _first_inside(n_out: int, s: int, p: int, d: int) -> np.ndarray | None:
    """First tap j with o*s + j*d - p >= 0 (torch's scan starts there); None if always 0."""
    if p == 0:
        return None
    o = np.arange(n_out)
    return np.maximum(0, -((o * s - p) // d))


def _axis(geo: PoolGeometry, a: int):
    """(size, k, s, p, d, n_out) of spatial axis a."""
    return (geo.in_shape[2 + a], geo.kernel[a], geo.stride[a], geo.padding[a], geo.dilation[a], geo.out[a])


def _tiles(size, k, s, p, d, n_out) -> bool:
    """The windows cover the axis exactly once (the common k == s, no padding, dividing case):
    the backward then writes every input position once, with no zero fill and no adds.
    (A reshape to (..., H/k, k, W/k, k) and a max over the k axes measured ~20x slower than
    the strided taps, so the taps serve this case too.)"""
    return p == 0 and d == 1 and s == k and n_out * k == size


def _padded_last_width(geo: PoolGeometry) -> int | None:
    """Width of the last axis with its padding (and ceil_mode overhang) materialised, or None
    when every window stays inside. Along the last axis a clipped tap range would be one
    short strided row per window, which ufuncs run slowly, so there the padding is copied in."""
    size, k, s, p, d, o = _axis(geo, len(geo.kernel) - 1)
    width = max(p + size, (o - 1) * s + d * (k - 1) + 1)
    return None if width == size else width


def _pad_last(x: np.ndarray, p: int, width: int, fill: float, ws) -> np.ndarray:
    """(..., W) -> (..., width): x at [p, p + W), `fill` around it."""
    buf = _buffer(ws, "padded", x.shape[:-1] + (width,), x.dtype)
    buf[..., :p] = fill
    buf[..., p + x.shape[-1]:] = fill
    buf[..., p:p + x.shape[-1]] = x
    return buf


def _ranges(geo: PoolGeometry, a: int, width: int | None):
    """(length of axis a as processed, taps of axis a) — the last axis padded when width is given."""
    size, k, s, p, d, o = _axis(geo, a)
    if width is not None and a == len(geo.kernel) - 1:
        return width, _tap_ranges(width, k, s, 0, d, o)
    return size, _tap_ranges(size, k, s, p, d, o)


def _max_pool_reduce(x: np.ndarray, geo: PoolGeometry, nan_aware: bool, ws=None):
    """Reduce the spatial axes last to first. Returns (y, per-axis chosen taps)."""
    n = len(geo.kernel)
    width = _padded_last_width(geo)
    cur = x if width is None else _pad_last(x, geo.padding[-1], width, -np.inf, ws)
    args = [None] * n
    for a in reversed(range(n)):
        _, _, s, p, d, o = _axis(geo, a)
        taps = [(lo, hi, _on(cur, 2 + a, sl)) for lo, hi, sl in _ranges(geo, a, width)[1]]
        cur, args[a] = _running_max(taps, o, 2 + a, _first_inside(o, s, p, d), nan_aware, ws, str(a), last=a == 0)
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
    n, name = _spatial_dims(x, n_dims, "max_pool")
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


def _scatter_axes(g, args, geo: PoolGeometry, finite: bool, ws) -> np.ndarray:
    """Apply the tap adjoint along every axis, first to last: (N, C, *out) -> (N, C, *S)."""
    n = len(geo.kernel)
    width = _padded_last_width(geo)
    for a in range(n):
        size, k, s, p, d, o = _axis(geo, a)
        length, ranges = _ranges(geo, a, width)
        final = a == n - 1 and width is None
        g = _scatter_taps(g, args[a], 2 + a, length, ranges, s > d * (k - 1), _tiles(size, k, s, p, d, o),
                          finite, ws, str(a), last=final)
    if width is not None:
        p, size = geo.padding[-1], geo.in_shape[-1]
        g = np.ascontiguousarray(g[..., p:p + size])
    return g


def max_pool_backward(dy, cache: MaxPoolCache) -> np.ndarray:
    """dy (N, C, *out) -> dx (N, C, *S): dy routed to each window's arg-max, overlaps added."""
    geo = cache.geo
    g = _check_grad(dy, geo.out_shape, cache.dtype, geo.where)
    if cache.relu_zero is not None:   # the ReLU in front (relu=True): no gradient where relu(y) == 0
        g = zero_where(g, cache.relu_zero)
    return _scatter_axes(g, cache.args, geo, _all_finite(g), cache.workspace)


def max_pool_indices(cache) -> np.ndarray:
    """torch's return_indices: the flat position of each arg-max within its (N, C) plane of
    the unpadded input, int64 of the output's shape. Accepts a max or adaptive-max cache."""
    if isinstance(cache, AdaptiveMaxPoolCache):
        return cache.indices.copy()
    geo = cache.geo
    bases = [np.arange(o) * s - p for o, s, p in zip(geo.out, geo.stride, geo.padding)]
    return _plane_indices(cache.args, bases, geo.dilation, geo.in_shape[2:], geo.out_shape)


# ---------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------
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
        div = div * _along(_divisor_along(size, k, s, p, o, count_include_pad), 2 + a, 2 + len(geo.out))
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
    n, name = _spatial_dims(x, n_dims, "avg_pool")
    where = where or name
    divisor_override = check_divisor_override(divisor_override, where)
    geo = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, n, where)
    if n == 3 and any(size < k for size, k in zip(x.shape[2:], geo.kernel)):
        raise ValueError(f"{where}: input spatial size {x.shape[2:]} is smaller than kernel_size {geo.kernel} "
                         f"(torch's avg_pool3d requires the unpadded input to hold a window)")
    width = _padded_last_width(geo)
    cur = x if width is None else _pad_last(x, geo.padding[-1], width, 0.0, workspace)
    for a in reversed(range(n)):
        cur = _window_sums(cur, geo, a, width, workspace)
    divisor = avg_pool_divisor(geo, count_include_pad, divisor_override, x.dtype)
    y = np.divide(cur, divisor, out=cur) if geo.kernel[0] > 1 else cur / divisor
    return y, AvgPoolCache(geo, divisor, x.dtype, workspace)


def _window_sums(cur: np.ndarray, geo: PoolGeometry, a: int, width, ws) -> np.ndarray:
    """Sum over the k taps of axis a (zero padding adds nothing): (.., size, ..) -> (.., n_out, ..);
    a fresh array for axis 0 (it becomes the output), a view when k == 1."""
    k, o = geo.kernel[a], geo.out[a]
    taps = [(lo, hi, _on(cur, 2 + a, sl)) for lo, hi, sl in _ranges(geo, a, width)[1]]
    if k == 1:
        return taps[0][2]
    shape = cur.shape[:2 + a] + (o,) + cur.shape[3 + a:]
    acc = np.empty(shape, cur.dtype) if a == 0 else _buffer(ws, f"sum{a}", shape, cur.dtype)
    begin = 0
    if taps[0][:2] == taps[1][:2] == (0, o):            # taps 0 and 1 reach every window
        np.add(taps[0][2], taps[1][2], out=acc)
        begin = 2
    else:
        acc.fill(0)
    for lo, hi, v in taps[begin:]:
        if hi > lo:
            _on(acc, 2 + a, slice(lo, hi))[...] += v
    return acc


def avg_pool_backward(dy, cache: AvgPoolCache) -> np.ndarray:
    """dx = conv_transpose(dy / divisor, ones kernel): each window's input gets 1/divisor of
    its gradient, overlapping windows add. dy (N, C, *out) -> dx (N, C, *S)."""
    geo = cache.geo
    g = _check_grad(dy, geo.out_shape, cache.dtype, geo.where) / cache.divisor
    return _scatter_axes(g, [None] * len(geo.kernel), geo, True, cache.workspace)


# ---------------------------------------------------------------------------------------
# Adaptive pooling: output size given, windows start=floor(i*In/Out), end=ceil((i+1)*In/Out)
# ---------------------------------------------------------------------------------------
def adaptive_windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each of the n_out windows over an axis of length n_in (torch's rule)."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def adaptive_output_size(x, output_size, n: int, where: str) -> tuple:
    """int or n-tuple of ints/None (None keeps that input size) -> n-tuple of ints >= 0."""
    check_pool_input(x, n, where)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != n:
            raise TypeError(f"{where}: output_size must be an int or a tuple of {n} ints/None, got {output_size!r}")
        sizes = tuple(x.shape[2 + a] if v is None else v for a, v in enumerate(output_size))
    else:
        sizes = output_size
    return as_tuple(sizes, n, "output_size", where, minimum=0)


def _adaptive_matrix(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) averaging matrix: row i holds 1/len over window i."""
    start, end = adaptive_windows(n_in, n_out)
    cols = np.arange(n_in)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _apply_along(x: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """Contract `axis` of x (length n_in) with matrix (n_out, n_in): one GEMM."""
    return np.moveaxis(np.tensordot(x, matrix, axes=([axis], [1])), -1, axis)


@dataclass
class AdaptiveAvgPoolCache:
    in_shape: tuple
    matrices: list          # per spatial axis (n_out, n_in); None where n_out == n_in
    dtype: np.dtype
    where: str


def adaptive_avg_pool_forward(x, output_size, *, n_dims: int | None = None, where: str | None = None):
    """x (N, C, *S) -> (y (N, C, *output_size), cache). An average over a rectangle is
    separable, so y = x contracted with one (Out, In) averaging matrix per axis."""
    n, name = _spatial_dims(x, n_dims, "adaptive_avg_pool")
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
    y = np.array(y, copy=True, order="C") if y is x else np.ascontiguousarray(y)
    return y, AdaptiveAvgPoolCache(tuple(x.shape), mats, x.dtype, where)


def adaptive_avg_pool_backward(dy, cache: AdaptiveAvgPoolCache) -> np.ndarray:
    """dx = dy contracted with each averaging matrix transposed: (N, C, *out) -> (N, C, *S)."""
    out_shape = cache.in_shape[:2] + tuple(cache.in_shape[2 + a] if m is None else m.shape[0]
                                           for a, m in enumerate(cache.matrices))
    g = _check_grad(dy, out_shape, cache.dtype, cache.where)
    if all(o == 1 for o in out_shape[2:]):
        dx = np.empty(cache.in_shape, cache.dtype)
        dx[...] = g / math.prod(cache.in_shape[2:])
        return dx
    for a, m in enumerate(cache.matrices):
        if m is not None:
            g = _apply_along(g, m.T, 2 + a)
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
                invalid = _along(~valid, 2 + a, cur.ndim)
                taps[-1] = np.where(invalid, -np.inf, taps[-1])
        cur, args[a] = _running_max([(0, out[a], t) for t in taps], out[a], 2 + a, None, nan_aware)
        starts[a] = start
    return cur, args, starts


def adaptive_max_pool_forward(x, output_size, *, n_dims: int | None = None, where: str | None = None):
    """x (N, C, *S) -> (y (N, C, *output_size), cache); cache.indices as torch's return_indices."""
    n, name = _spatial_dims(x, n_dims, "adaptive_max_pool")
    where = where or name
    out = adaptive_output_size(x, output_size, n, where)
    if any(o == 0 for o in out):
        shape = x.shape[:2] + out
        return np.empty(shape, x.dtype), AdaptiveMaxPoolCache(tuple(x.shape), np.empty(shape, np.int64),
                                                               x.dtype, where)
    y, args, starts = _adaptive_max_reduce(x, out, nan_aware=False)
    if np.isnan(y).any():
        y, args, starts = _adaptive_max_reduce(x, out, nan_aware=True)
    indices = _plane_indices(args, starts, (1,) * n, x.shape[2:], y.shape)
    if y.base is not None:
        y = y.copy()
    return y, AdaptiveMaxPoolCache(tuple(x.shape), indices, x.dtype, where)


def adaptive_max_pool_backward(dy, cache: AdaptiveMaxPoolCache) -> np.ndarray:
    """dx[n, c, index] += dy[n, c, o] for every output o (windows may overlap)."""
    g = _check_grad(dy, cache.indices.shape, cache.dtype, cache.where)
    return _scatter_add(g, cache.indices, cache.in_shape)


def _scatter_add(g: np.ndarray, indices: np.ndarray, in_shape) -> np.ndarray:
    """(N, C, *out) values added at per-plane flat indices of an (N, C, *S) array (bincount)."""
    planes, plane_size = in_shape[0] * in_shape[1], math.prod(in_shape[2:])
    flat = (indices.reshape(planes, math.prod(indices.shape[2:])) + (np.arange(planes) * plane_size)[:, None]).ravel()
    dx = np.bincount(flat, weights=g.ravel(), minlength=planes * plane_size)
    return dx.astype(g.dtype).reshape(in_shape)


# ---------------------------------------------------------------------------------------
# Max unpooling: the scatter that places each value back at its arg-max
# ---------------------------------------------------------------------------------------
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
    n, name = _spatial_dims(x, n_dims, "max_unpool")
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
    g = _check_grad(dy, cache.out_shape, cache.dtype, cache.where)
    planes = cache.indices.shape[0]
    return np.take_along_axis(g.reshape(planes, math.prod(cache.out_shape[2:])), cache.indices,
                              axis=1).reshape(cache.in_shape)


# ---------------------------------------------------------------------------------------
# torch.nn.functional-style conveniences (forward only)
# ---------------------------------------------------------------------------------------
def _max_pool(x, n, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    y, cache = max_pool_forward(x, kernel_size, stride, padding, dilation, ceil_mode, n_dims=n)
    return (y, max_pool_indices(cache)) if return_indices else y


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, L) -> (N, C, L_out) [, indices]."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, H, W) -> (N, C, H_out, W_out) [, indices]."""
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out) [, indices]."""
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """x (N, C, L) -> (N, C, L_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, n_dims=1)[0]


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """x (N, C, H, W) -> (N, C, H_out, W_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            n_dims=2)[0]


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            n_dims=3)[0]


def adaptive_avg_pool1d(x, output_size):
    """x (N, C, L) -> (N, C, output_size)."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=1)[0]


def adaptive_avg_pool2d(x, output_size):
    """x (N, C, H, W) -> (N, C, *output_size); None entries keep the input size."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=2)[0]


def adaptive_avg_pool3d(x, output_size):
    """x (N, C, D, H, W) -> (N, C, *output_size); None entries keep the input size."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=3)[0]


def _adaptive_max(x, n, output_size, return_indices):
    y, cache = adaptive_max_pool_forward(x, output_size, n_dims=n)
    return (y, max_pool_indices(cache)) if return_indices else y


def adaptive_max_pool1d(x, output_size, return_indices=False):
    """x (N, C, L) -> (N, C, output_size) [, indices]."""
    return _adaptive_max(x, 1, output_size, return_indices)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """x (N, C, H, W) -> (N, C, *output_size) [, indices]."""
    return _adaptive_max(x, 2, output_size, return_indices)


def adaptive_max_pool3d(x, output_size, return_indices=False):
    """x (N, C, D, H, W) -> (N, C, *output_size) [, indices]."""
    return _adaptive_max(x, 3, output_size, return_indices)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, L) -> (N, C, L_out), L_out = (L-1)*s - 2p + k unless output_size is given."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=1)[0]


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, H, W) -> (N, C, H_out, W_out)."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=2)[0]


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=3)[0]
