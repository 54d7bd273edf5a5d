"""Depthwise route (2-d, groups == C_in == C_out): tap sums at stride 1, banded matrices otherwise.

Stride 1 (the common case): per chunk of the batch, build the taps-first row stack S (kw
column-shifted copies of each padded input plane, banded.row_stack) and sum the taps into whole
output planes with one einsum over a strided view of S (banded.tap_sum):

    y[n, c] = sum_{a,b} w[c, 0, a, b] * S[n, c, b, rows a*dh .. a*dh + Ho)          y (N, C, Ho, Wo)

exactly kh*kw multiply-adds an output, each plane in cache while its taps are added (a
chunk's stack is at most STACK_CHUNK_BYTES). Backward: the lectures' full convolution
dx = conv(pad(dy, d(k-1) - p), rot180(w)) is the same tap sum on dy's row stack, and that
stack gives dw (taps_weight_grad), chunk by chunk. (Measured, fwd+bwd, against the banded
GEMMs this replaced at stride 1: 0.6x the time on 64x64 32x32 3x3, whose N*C*row-blocks
small GEMMs were call overhead, 0.17x on 112x112 planes; 2-MiB chunks instead of whole-batch
stacks: 8 instead of 102 MiB of buffers there.)

Stride > 1: banded filter matrices, y[n, c, block] = B[c] @ S[n, c, block rows] (banded.py);
dw from the saved stack (blocked), dx = row_stack_adjoint(B^T @ dY). (Tap sums there run
over rows of Wo elements and measured 1.4-3x slower.)

Threads: depthwise channels are independent, and this route is many short NumPy loops that
run on one core, so the stride-1 case splits its work into one part per thread
(convgrad._threads), each part writing its block of y and dx (a block of samples when the
batch has one for every part, else of channels) and returning its dw and db. The whole-batch passes
a call would otherwise make on one thread are done in the parts, chunk by chunk in cache:
the cache's copy of x (COPIES_INPUT) and the NaN/inf checks of y and dy (checks_finite,
raising NotFinite when the work is done; the dispatch then redoes it on channel-major). (Main
thread's CPU time of a 2-thread fwd+bwd, 64x64 32x32 3x3, against one serial copy and two
serial checks: 16 instead of 19-20 ms.)
"""
from __future__ import annotations

import math

import numpy as np

from ... import _threads
from ..._checks import NotFinite, all_finite
from ..padding import vjp_padding
from .banded import (band_matrix, band_matrix_adjoint, band_span, row_stack, row_stack_adjoint, stack_blocks,
                     tap_sum, taps_weight_grad)
from .geometry import ConvGeometry, conv_geometry
from .._buffers import buffer
from .workspace import ConvCache, chunk_size, release_saved, take_saved

NAME = "depthwise"
FINITE_ONLY = True      # a band's zeros times a NaN/inf are NaN, and the stride-1 dw multiplies x outside a
                        # tap's reach by dy's padding zeros: the dispatch redoes those on channel-major
COPIES_INPUT = True     # the cache's copy of x is made chunk by chunk, split over the threads
MAX_ROWS = 64           # strided depthwise: its input gradient uses one band of Ho rows


def applies(geo: ConvGeometry) -> bool:
    """2-d, groups == C_in == C_out, non-negative padding, no input dilation."""
    c_in, c_out, g = geo.in_shape[1], geo.w_shape[0], geo.groups
    return (g == c_in == c_out and len(geo.out) == 2 and all(p >= 0 for pair in geo.pads for p in pair)
            and all(d == 1 for d in geo.lhs_dilation))


def suits(geo: ConvGeometry) -> bool:
    """Where it is the fastest route: more than one channel; strided only up to MAX_ROWS output rows."""
    return applies(geo) and geo.groups > 1 and (geo.stride == (1, 1) or geo.out[0] <= MAX_ROWS)


def rebuild(x, w, geo: ConvGeometry):
    return _stack(x, geo, None)


BLOCK_ROWS = 8   # output rows per banded GEMM block


def _parts(out_h: int) -> list[tuple[int, int, int]]:
    """Blocks of output rows covering [0, Ho): (first row, number of blocks, rows per block)
    for the full blocks, then one for the remainder."""
    rows = min(BLOCK_ROWS, out_h)
    full = out_h // rows
    parts = [(0, full, rows)]
    if out_h > full * rows:
        parts.append((full * rows, 1, out_h - full * rows))
    return parts


def _stack(x, geo: ConvGeometry, ws, out=None) -> np.ndarray:
    """x (N, C, H, W) -> S (N, C, Hp, kw, Wo). The workspace remembers for which geometry its
    stack buffer's padding zeros are intact ("stack_zeros"), so they are written once."""
    n, c = x.shape[:2]
    key = (x.shape, x.dtype, geo.pads, geo.kernel[1], geo.stride[1], geo.dilation[1])
    if out is None and ws is not None:
        out = buffer(ws, "stack", (n, c, geo.padded[0], geo.kernel[1], geo.out[1]), x.dtype)
    clean = ws is not None and out is ws.get("stack") and ws.get("stack_zeros") == key
    stack = row_stack(x, geo.pads, geo.kernel[1], geo.stride[1], geo.dilation[1], geo.out[1], out=out,
                      zero_borders=not clean)
    if ws is not None and stack is ws.get("stack"):
        ws["stack_zeros"] = key
    return stack


def _forward(x, w, b, geo: ConvGeometry, ws, stack_out=None, y=None):
    """y[n, c, block] = B[c] @ S[n, c, block rows] -> (y (N, C, Ho, Wo), S). y: where to write
    (a view of a larger output is fine)."""
    n, c = x.shape[:2]
    (kh, kw), sh, dh = geo.kernel, geo.stride[0], geo.dilation[0]
    stack = _stack(x, geo, ws, out=stack_out)
    if y is None:
        y = np.empty((n, c, *geo.out), dtype=x.dtype)
    for first, blocks, rows in _parts(geo.out[0]):
        span = band_span(rows, kh, sh, dh)
        band = band_matrix(w, rows, sh, dh).reshape(c, 1, rows, span * kw)
        out = y[:, :, first:first + blocks * rows].reshape(n, c, blocks, rows, geo.out[1])
        np.matmul(band, stack_blocks(stack, first * sh, blocks, rows, sh, span), out=out)
    if b is not None:
        y += b[:, None, None]
    return y, stack


STACK_CHUNK_BYTES = 2 << 20   # row stack per chunk of the batch, in cache (2-4 MiB measured alike, 0.5-1 MiB slower)


def _stacks(x, pads, kernel_w: int, stride_w: int, dilation_w: int, out_w: int, ws, key: str, copy=None):
    """Chunks of the batch with their taps-first row stacks: yields (samples slice, S) with S
    (chunk, C, kw, Hp, Wo) in one buffer (ws[key], or fresh when ws is None) whose padding
    zeros are written once per geometry (ws[key + "_zeros"] remembers it). A chunk's stack is
    at most STACK_CHUNK_BYTES (and the workspace budget), at least one sample. copy: an array
    of x's shape that receives x chunk by chunk (the stack is then built from the copy, in cache)."""
    n, c, h, _ = x.shape
    shape = (c, kernel_w, h + pads[0][0] + pads[0][1], out_w)
    per_sample = math.prod(shape) * x.itemsize
    chunk = max(1, min(chunk_size(n, per_sample), STACK_CHUNK_BYTES // per_sample))
    buf = buffer(ws, key, (chunk, *shape), x.dtype)
    geometry = (buf.shape, x.dtype, x.shape[2:], pads, kernel_w, stride_w, dilation_w)
    clean = ws is not None and buf is ws.get(key) and ws.get(key + "_zeros") == geometry
    for first in range(0, n, chunk):
        rows = slice(first, min(n, first + chunk))
        src = x[rows]
        if copy is not None:
            copy[rows] = src
            src = copy[rows]
        stack = row_stack(src, pads, kernel_w, stride_w, dilation_w, out_w, out=buf[:rows.stop - first],
                          zero_borders=not clean, taps_first=True)
        if ws is not None and not clean:
            ws[key + "_zeros"] = geometry
        clean = True             # the first chunk is a whole one: every border of buf is zero now
        yield rows, stack


def _forward_stride1(x, w, b, geo: ConvGeometry, ws, y=None, private=None):
    """Stride 1: y[n, c] = sum_{a,b} w[c, 0, a, b] S[n, c, b, rows shifted by a*dh] (tap_sum),
    chunk by chunk of the batch -> y (N, C, Ho, Wo). y: where to write (a view is fine);
    private: where to copy x (for the cache), chunk by chunk. -> (y, whether y is all finite)."""
    (kh, kw), dh = geo.kernel, geo.dilation[0]
    if y is None:
        y = np.empty((x.shape[0], x.shape[1], *geo.out), dtype=x.dtype)
    finite = True
    for rows, stack in _stacks(x, geo.pads, kw, 1, geo.dilation[1], geo.out[1], ws, "stack_taps", copy=private):
        out = tap_sum(stack, w[:, 0], kh, 1, dh, out=y[rows])
        if b is not None:
            out += b[:, None, None]
        finite = finite and all_finite(out)                   # in cache
    return y, finite


def _weight_grad(dy, stack, geo: ConvGeometry, ws) -> np.ndarray:
    """dw: the band of dY_block @ S_block^T, summed over samples and blocks."""
    n, c, _, wo = dy.shape
    (kh, kw), sh, dh = geo.kernel, geo.stride[0], geo.dilation[0]
    dw = 0
    for first, blocks, rows in _parts(geo.out[0]):
        span = band_span(rows, kh, sh, dh)
        dy_blocks = dy[:, :, first:first + blocks * rows].reshape(n, c, blocks, rows, wo)
        out = buffer(ws, "d_band_tail" if first else "d_band", (n, c, blocks, rows, span * kw), dy.dtype)
        d_band = np.matmul(dy_blocks, stack_blocks(stack, first * sh, blocks, rows, sh, span).swapaxes(3, 4), out=out)
        dw = dw + band_matrix_adjoint(d_band.reshape(n, c, blocks, rows, span, kw), kh, sh, dh)
    return dw


def _reuse_memory(arr: np.ndarray | None, shape, dtype) -> np.ndarray | None:
    """A view of arr's memory with the given shape, if arr is contiguous and large enough."""
    size = math.prod(shape)
    if arr is None or arr.dtype != dtype or arr.size < size or not arr.flags.c_contiguous:
        return None
    return arr.reshape(-1)[:size].reshape(shape)


def _backward_stride1(dy, x, w, geo: ConvGeometry, ws, flipped_pads, dx_out=None, input_grad=True, weight_grad=True):
    """Stride 1: the lectures' full convolution, dx = conv(pad(dy, d(k-1) - p), rot180(w)), as
    tap sums (tap_sum) over the taps-first row stack of dy, chunk by chunk of the batch; the
    same stack gives the chunk's part of dw (taps_weight_grad). -> (dx, dw, db), None for a
    gradient not asked for; db: dy summed per channel, chunk by chunk (in cache), always: it
    also tells whether dy is finite (_finite_sums)."""
    (kh, kw), (dh, dw_) = geo.kernel, geo.dilation
    dx = None
    if input_grad:
        dx = np.empty(geo.in_shape, dtype=dy.dtype) if dx_out is None else dx_out
    flipped = w[:, 0, ::-1, ::-1]
    d_weight = np.zeros(w.shape, dtype=w.dtype) if weight_grad else None
    db = np.zeros(dy.shape[1], dtype=dy.dtype)
    for rows, dy_stack in _stacks(dy, flipped_pads, kw, 1, dw_, geo.in_shape[3], ws, "stack_t"):
        db += dy[rows].sum(axis=(0, 2, 3))
        if input_grad:
            tap_sum(dy_stack, flipped, kh, 1, dh, out=dx[rows])
        if weight_grad:
            d_weight += taps_weight_grad(x[rows], dy_stack, kh, dh)
    return dx, d_weight, db


def _finite_sums(db: np.ndarray, dy: np.ndarray) -> bool:
    """Whether dy is all finite, given its sums db: a NaN or inf makes its sum NaN or inf; only
    a non-finite sum (or an overflow) needs the element test."""
    return bool(np.isfinite(db).all() or np.isfinite(dy).all())


def _input_grad(dy, w, geo: ConvGeometry, scratch) -> np.ndarray:
    """dx for stride > 1: dS = B^T @ dY (one block of all Ho rows), scattered back by
    row_stack_adjoint. `scratch`: the consumed stack buffer, reused for dS."""
    n, c, ho, wo = dy.shape
    (kh, kw), hp = geo.kernel, geo.padded[0]
    span = band_span(ho, kh, geo.stride[0], geo.dilation[0])
    band = band_matrix(w, ho, geo.stride[0], geo.dilation[0]).reshape(c, ho, span * kw)
    d_stack = _reuse_memory(scratch, (n, c, hp, kw, wo), dy.dtype)
    if d_stack is None:
        d_stack = np.empty((n, c, hp, kw, wo), dtype=dy.dtype)
    d_stack[:, :, span:] = 0                                  # rows no window reached
    np.matmul(band.transpose(0, 2, 1), dy, out=d_stack[:, :, :span].reshape(n, c, span * kw, wo))
    return row_stack_adjoint(d_stack, geo.pads, geo.in_shape[2:], geo.stride[1], geo.dilation[1])


def _flipped_pads(geo: ConvGeometry) -> tuple:
    """The input gradient's padding (at stride 1: d(k-1) - p per side)."""
    return vjp_padding(geo.in_shape[2:], geo.kernel, geo.stride, geo.dilation, geo.pads, geo.out)


def is_stride1(geo: ConvGeometry) -> bool:
    return geo.stride == (1, 1) and all(p >= 0 for pair in _flipped_pads(geo) for p in pair)


def checks_finite(geo: ConvGeometry) -> bool:
    """Stride 1 checks y and dy itself, chunk by chunk (forward, backward: NotFinite)."""
    return is_stride1(geo)


def backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db). Stride 1: both from dy's row stack (each only when asked for), raising
    NotFinite at the end when dy was not finite. Otherwise dw from the saved stack (blocked),
    then dx in the stack's memory (always computed)."""
    geo, w, ws = cache.geo, cache.w, cache.workspace
    if is_stride1(geo):
        split = _split(*geo.in_shape[:2])
        if split is not None:
            dx, dw, db, finite = _backward_threads(dy, cache, split, input_grad, weight_grad)
        else:
            dx, dw, db = _backward_stride1(dy, cache.x, w, geo, ws, _flipped_pads(geo), input_grad=input_grad,
                                           weight_grad=weight_grad)
            finite = _finite_sums(db, dy)
        if not finite:
            raise NotFinite("depthwise: dy holds a NaN or inf")
        return dx, dw, db if cache.has_bias else None
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    if weight_grad:
        stack, scratch = take_saved(cache, rebuild)
        dw = _weight_grad(dy, stack, geo, ws)
    else:
        stack, scratch, dw = release_saved(cache), True, None
    if ws is not None:
        ws["stack_zeros"] = None
    return _input_grad(dy, w, geo, stack if scratch else None), dw, db


MIN_CHANNELS = 8       # channels per part below which splitting does not pay


def _split(n: int, c: int) -> list[tuple[slice, slice]] | None:
    """One (samples, channels) block per thread part, or None when splitting does not pay
    (fewer than MIN_CHANNELS channels a part, or already on a convgrad thread). The batch is
    split when it has a sample for every part: each part's x, y, dx and copy of x are then
    contiguous (a channel slice strides over every sample's planes; copying one measured ~3x
    the time per byte; the whole layer call measured alike within the noise of a shared
    machine); else the channels are."""
    by_channels = _threads.parts(c, MIN_CHANNELS)
    if by_channels is None:
        return None
    by_samples = _threads.parts(n, 1)
    if by_samples is not None and len(by_samples) == len(by_channels):
        return [(s, slice(0, c)) for s in by_samples]
    return [(slice(0, n), s) for s in by_channels]


def _part(geo: ConvGeometry, samples: slice, channels: slice) -> ConvGeometry:
    """The same depthwise convolution on a block of the samples and channels."""
    n, c = samples.stop - samples.start, channels.stop - channels.start
    return conv_geometry((n, c, *geo.in_shape[2:]), (c, 1, *geo.kernel), geo.stride, geo.pads, geo.dilation, c,
                         where="depthwise part")


def _part_workspace(ws: dict | None, t: int) -> dict | None:
    return None if ws is None else ws.setdefault(("part", t), {})


def forward(x, w, b, geo: ConvGeometry, ws, private=None):
    """The depthwise forward, stride 1 split over the threads (_split) -> (y, None): its
    backward needs x and dy only. private: an array of x's shape to fill with a copy of x."""
    if not is_stride1(geo):
        if private is not None:
            np.copyto(private, x)
        return _forward(x, w, b, geo, ws)
    split = _split(*x.shape[:2])
    if split is None:
        y, finite = _forward_stride1(x, w, b, geo, ws, private=private)
    else:
        y = np.empty((x.shape[0], x.shape[1], *geo.out), dtype=x.dtype)

        def part(item):
            t, (rows, cs) = item
            return _forward_stride1(x[rows, cs], w[cs], None if b is None else b[cs], _part(geo, rows, cs),
                                    _part_workspace(ws, t), y=y[rows, cs],
                                    private=None if private is None else private[rows, cs])[1]
        finite = all(_threads.run_parts(part, list(enumerate(split))))
    if not finite:
        raise NotFinite("depthwise: y holds a NaN or inf")        # the dispatch redoes it on channel-major
    return y, None


def _backward_threads(dy, cache: ConvCache, split, input_grad: bool = True, weight_grad: bool = True):
    """-> (dx, dw, db, whether dy is finite), each part on its block; dw and db are the parts'
    sums, added in part order (deterministic)."""
    geo, w = cache.geo, cache.w
    dx = np.empty(geo.in_shape, dtype=dy.dtype) if input_grad else None
    flipped = _flipped_pads(geo)

    def part(item):
        t, (rows, cs) = item
        g = dy[rows, cs]
        _, dw_part, db_part = _backward_stride1(g, cache.x[rows, cs], w[cs], _part(geo, rows, cs),
                                                _part_workspace(cache.workspace, t), flipped,
                                                dx_out=None if dx is None else dx[rows, cs], input_grad=input_grad,
                                                weight_grad=weight_grad)
        return dw_part, db_part, _finite_sums(db_part, g)
    results = _threads.run_parts(part, list(enumerate(split)))
    dw = np.zeros(w.shape, dtype=w.dtype) if weight_grad else None
    db = np.zeros(w.shape[0], dtype=dy.dtype)
    for (_, cs), (dw_part, db_part, _) in zip(split, results):
        if dw is not None:
            dw[cs] += dw_part
        db[cs] += db_part
    return dx, dw, db, all(r[2] for r in results)
