"""Per-axis building blocks of every window reduction: the taps of all windows as strided
slices (tap j of window o reads input position o*s + j*d - p), the running max over them,
and the scatter of a gradient back through them.

Window reductions are separable: the max (or sum) over a kh x kw window is the max over
kh rows of the max over kw columns. Reducing the last axis first and the earlier ones after
keeps torch's row-major scan order (the first maximum wins, a NaN always wins), and costs
kh + kw strided passes instead of kh * kw. Each pass is a loop over the taps of one axis
with strided slices: no loop over windows, pixels or batch elements. Where windows overlap
(stride < kernel) the contributions are added, never overwritten."""
from __future__ import annotations

import numpy as np

from .._buffers import buffer as work_buffer
from .geometry import PoolGeometry


# Tap j of window o reads input position o*s + j*d - p. Along the leading axes padding is
# not materialised: each tap is applied to the range of windows for which that position
# lies inside the input (max pooling's -inf padding never wins, average pooling's zeros add
# nothing). Along the last axis the padding is copied in (see padded_last_width).
def on_axis(a: np.ndarray, axis: int, sl: slice) -> np.ndarray:
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


def along_axis(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A 1-D array shaped to broadcast along `axis` of an ndim array."""
    return values.reshape((-1,) + (1,) * (ndim - 1 - axis))


def _tap_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint8) if k <= 256 else np.dtype(np.int32)


def running_max(taps, n_out: int, axis: int, first, nan_aware: bool, ws=None, key="", last=False):
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
    m = np.empty(shape, v0.dtype) if last else work_buffer(ws, f"max{key}", shape, v0.dtype)
    arg, hit, step = (work_buffer(ws, f"{name}{key}", shape, t) for name, t in
                      (("arg", dt), ("hit", np.bool_), ("step", dt)))
    # torch starts each window's scan at -inf and its first tap inside the input. When tap 0
    # reaches every window (its padding, if any, holding -inf) m can start from tap 0 itself.
    full0 = taps[0][:2] == (0, n_out)
    fused = full0 and first is None and taps[1][:2] == (0, n_out)
    if not fused:
        if first is None:
            arg.fill(0)
        else:
            arg[...] = along_axis(first.astype(dt), axis, len(shape))
        if full0:
            np.copyto(m, v0)
        else:
            m.fill(-np.inf)
    with np.errstate(invalid="ignore"):
        for j in range(1 if full0 else 0, k):
            lo, hi, v = taps[j]
            if hi <= lo:
                continue
            mj, hj = on_axis(m, axis, slice(lo, hi)), on_axis(hit, axis, slice(lo, hi))
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
            aj, sj = on_axis(arg, axis, slice(lo, hi)), on_axis(step, axis, slice(lo, hi))
            np.multiply(hj, dt.type(j), out=sj)
            np.maximum(aj, sj, out=aj)
    return m, arg


def _scatter_taps(g, arg, axis: int, size: int, ranges, disjoint: bool, tiles: bool, finite: bool,
                  ws=None, key="", last=False) -> np.ndarray:
    """The adjoint of reading the taps: g (..., n_out, ...) -> (..., size, ...), window o's
    gradient added at the input position of its tap j — of every tap (arg None: mean
    pooling's spread) or of the chosen one (arg[o] == j: max pooling's routing)."""
    shape = g.shape[:axis] + (size,) + g.shape[axis + 1:]
    out = np.empty(shape, g.dtype) if last else work_buffer(ws, f"grad{key}", shape, g.dtype)
    if not tiles:                          # some positions belong to no window
        out.fill(0)
    if arg is not None:
        mask = work_buffer(ws, f"mask{key}", g.shape, np.bool_)
        part = None if disjoint else work_buffer(ws, f"part{key}", g.shape, g.dtype)
    for j, (lo, hi, sl) in enumerate(ranges):
        if hi <= lo:
            continue
        dst, gj = on_axis(out, axis, sl), on_axis(g, axis, slice(lo, hi))
        if arg is None:
            if disjoint:
                dst[...] = gj
            else:
                dst += gj
            continue
        mj = on_axis(mask, axis, slice(lo, hi))
        np.equal(on_axis(arg, axis, slice(lo, hi)), j, out=mj)
        if not finite:                     # inf * 0 would be NaN: select instead
            picked = np.where(mj, gj, 0)
            if disjoint:
                dst[...] = picked
            else:
                dst += picked
        elif disjoint:
            np.multiply(gj, mj, out=dst)
        else:
            dst += np.multiply(gj, mj, out=on_axis(part, axis, slice(lo, hi)))
    return out


def plane_indices(args, bases, steps, in_spatial, out_shape) -> np.ndarray:
    """torch's flat index of each arg-max within its (N, C) plane, row-major over the input.

    Along axis a the chosen position is bases[a][o] + args[a] * steps[a]. args[a] was
    computed after the later axes were reduced, so it is indexed by the positions already
    chosen on the axes before it."""
    ndim = len(out_shape)
    grid = [np.arange(n).reshape((-1,) + (1,) * (ndim - 1 - i)) for i, n in enumerate(out_shape)]
    positions, flat = [], np.zeros(out_shape, dtype=np.int64)
    for a, arg in enumerate(args):
        base = along_axis(np.asarray(bases[a], dtype=np.int64), 2 + a, ndim)
        if arg is None:
            pos = np.broadcast_to(base, out_shape)
        else:
            pos = base + arg[tuple(grid[:2] + positions + grid[2 + a:])].astype(np.int64) * steps[a]
        # (a window made only of padding has no position inside; clip it for the gathers)
        positions.append(np.clip(pos, 0, in_spatial[a] - 1))
        flat = flat * in_spatial[a] + pos
    return flat


def first_inside(n_out: int, s: int, p: int, d: int) -> np.ndarray | None:
    """First tap j with o*s + j*d - p >= 0 (torch's scan starts there); None if always 0."""
    if p == 0:
        return None
    o = np.arange(n_out)
    return np.maximum(0, -((o * s - p) // d))


def axis_geometry(geo: PoolGeometry, a: int):
    """(size, k, s, p, d, n_out) of spatial axis a."""
    return (geo.in_shape[2 + a], geo.kernel[a], geo.stride[a], geo.padding[a], geo.dilation[a], geo.out[a])


def _tiles(size, k, s, p, d, n_out) -> bool:
    """The windows cover the axis exactly once (the common k == s, no padding, dividing case):
    the backward then writes every input position once, with no zero fill and no adds.
    (A reshape to (..., H/k, k, W/k, k) and a max over the k axes measured ~20x slower than
    the strided taps, so the taps serve this case too.)"""
    return p == 0 and d == 1 and s == k and n_out * k == size


def padded_last_width(geo: PoolGeometry) -> int | None:
    """Width of the last axis with its padding (and ceil_mode overhang) materialised, or None
    when every window stays inside. Along the last axis a clipped tap range would be one
    short strided row per window, which ufuncs run slowly, so there the padding is copied in."""
    size, k, s, p, d, o = axis_geometry(geo, len(geo.kernel) - 1)
    width = max(p + size, (o - 1) * s + d * (k - 1) + 1)
    return None if width == size else width


def pad_last(x: np.ndarray, p: int, width: int, fill: float, ws) -> np.ndarray:
    """(..., W) -> (..., width): x at [p, p + W), `fill` around it."""
    buf = work_buffer(ws, "padded", x.shape[:-1] + (width,), x.dtype)
    buf[..., :p] = fill
    buf[..., p + x.shape[-1]:] = fill
    buf[..., p:p + x.shape[-1]] = x
    return buf


def axis_ranges(geo: PoolGeometry, a: int, width: int | None):
    """(length of axis a as processed, taps of axis a) — the last axis padded when width is given."""
    size, k, s, p, d, o = axis_geometry(geo, a)
    if width is not None and a == len(geo.kernel) - 1:
        return width, _tap_ranges(width, k, s, 0, d, o)
    return size, _tap_ranges(size, k, s, p, d, o)


def scatter_axes(g, args, geo: PoolGeometry, finite: bool, ws) -> np.ndarray:
    """Apply the tap adjoint along every axis, first to last: (N, C, *out) -> (N, C, *S)."""
    n = len(geo.kernel)
    width = padded_last_width(geo)
    for a in range(n):
        size, k, s, p, d, o = axis_geometry(geo, a)
        length, ranges = axis_ranges(geo, a, width)
        final = a == n - 1 and width is None
        g = _scatter_taps(g, args[a], 2 + a, length, ranges, s > d * (k - 1), _tiles(size, k, s, p, d, o),
                          finite, ws, str(a), last=final)
    if width is not None:
        p, size = geo.padding[-1], geo.in_shape[-1]
        g = np.ascontiguousarray(g[..., p:p + size])
    return g
