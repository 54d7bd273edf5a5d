"""The convolution family on one primitive.

    conv_general(x, w, stride, padding, lhs_dilation, rhs_dilation, groups)

x: (N, C_in, *spatial), w: (C_out, C_in/groups, *kernel); padding a (lo, hi) pair per
spatial axis (negative crops); lhs_dilation inserts lhs_dilation-1 zeros between input
elements; rhs_dilation spaces the kernel taps (torch's `dilation`). Like torch and JAX it
computes a cross-correlation: y[n, o, p] = sum_{c,k} w[o, c, k] * xpad[n, c, p*s + k*d].

The lectures derive every gradient as another call of the same primitive:

    dJ/dx = conv_general(dy, rot180(w) with in/out swapped per group,
                         padding = d*(k-1) - p (+ the rows the stride skipped),
                         lhs_dilation = stride)                 # pad(dilate(dy, s), k-1)
    dJ/dw = conv_general(x as channels, dy as filters, rhs_dilation = stride)

`conv_input_grad_by_conv` and `conv_weight_grad_by_conv` are those routes, literally.
The fast path (`conv_forward` / `conv_backward`) uses the same identities in matrix form:
with cols = im2col(x), y = W @ cols, dW = dY @ cols^T, dx = col2im(W^T @ dY). Tests hold
the two routes equal. Transposed convolution's forward is the input gradient of a
convolution, and its backward is a convolution forward plus a weight gradient.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from .. import _threads
from .._checks import as_tuple, check_float_array, check_finite, check_same_dtype
from .im2col import (band_matrix, band_matrix_adjoint, band_span, col2im, taps_weight_grad, im2col, out_size, pad_channels_first, pad_spatial,
                     row_stack, row_stack_adjoint, stack_blocks, unpad_channels_first, unpad_spatial)

_LAYOUTS = {1: "N, C, L", 2: "N, C, H, W", 3: "N, C, D, H, W"}


# ---------------------------------------------------------------------------------------
# Geometry: every argument normalised and validated once
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvGeometry:
    """Normalised convolution arguments for one input shape (all tuples per spatial axis)."""
    in_shape: tuple          # (N, C_in, *spatial)
    w_shape: tuple           # (C_out, C_in/groups, *kernel)
    stride: tuple
    pads: tuple              # ((lo, hi), ...)
    dilation: tuple          # kernel (rhs) dilation
    groups: int
    lhs_dilation: tuple
    padded: tuple            # spatial size after zero insertion and padding
    out: tuple               # output spatial size

    @property
    def kernel(self) -> tuple:
        return self.w_shape[2:]

    @property
    def out_shape(self) -> tuple:
        return (self.in_shape[0], self.w_shape[0], *self.out)


def normalize_padding(padding, n_sp: int, where: str, allow_negative: bool = False):
    """int | tuple of ints | tuple of (lo, hi) pairs -> ((lo, hi), ...) per spatial axis."""
    minimum = -(1 << 62) if allow_negative else 0
    if isinstance(padding, (tuple, list)) and len(padding) == n_sp and all(
            isinstance(p, (tuple, list)) for p in padding):
        pairs = []
        for p in padding:
            if len(p) != 2:
                raise TypeError(f"{where}: padding pairs must be (lo, hi), got {padding!r}")
            pairs.append(as_tuple(tuple(p), 2, "padding", where, minimum=minimum))
        return tuple(pairs)
    sym = as_tuple(padding, n_sp, "padding", where, minimum=minimum)
    return tuple((p, p) for p in sym)


def same_padding(kernel, dilation):
    """torch's padding='same' for stride 1: total d*(k-1), the odd one extra on the high side."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, lhs_dilation=1,
                  where: str = "conv", allow_negative_padding: bool = False) -> ConvGeometry:
    """Validate shapes and arguments; compute padded and output sizes. Raises ValueError/TypeError."""
    n_sp = len(w_shape) - 2
    if n_sp not in _LAYOUTS:
        raise ValueError(f"{where}: expected a weight of rank 3, 4 or 5 (C_out, C_in/groups, *kernel), "
                         f"got shape {tuple(w_shape)}")
    if len(x_shape) != n_sp + 2:
        raise ValueError(f"{where}: expected input of rank {n_sp + 2} ({_LAYOUTS[n_sp]}), "
                         f"got shape {tuple(x_shape)} (rank {len(x_shape)})")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive integer, got {groups!r}")
    c_out, c_in_g = w_shape[:2]
    if c_out % groups:
        raise ValueError(f"{where}: out_channels={c_out} is not divisible by groups={groups}")
    if x_shape[1] != c_in_g * groups:
        raise ValueError(f"{where}: expected input with {c_in_g * groups} channels "
                         f"(weight {tuple(w_shape)}, groups={groups}), got shape {tuple(x_shape)}")
    stride = as_tuple(stride, n_sp, "stride", where)
    dilation = as_tuple(dilation, n_sp, "dilation", where)
    lhs = as_tuple(lhs_dilation, n_sp, "lhs_dilation", where)
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * n_sp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{where}: padding='same' needs stride 1 (as in torch), got stride {stride}")
            pads = same_padding(w_shape[2:], dilation)
        else:
            raise ValueError(f"{where}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    else:
        pads = normalize_padding(padding, n_sp, where, allow_negative_padding)
    padded = tuple((s - 1) * d + 1 + lo + hi for s, d, (lo, hi) in zip(x_shape[2:], lhs, pads))
    for axis, (p, k, d) in enumerate(zip(padded, w_shape[2:], dilation)):
        if d * (k - 1) + 1 > p:
            raise ValueError(f"{where}: kernel (size {k}, dilation {d}, extent {d * (k - 1) + 1}) is larger than "
                             f"the padded input ({p}) along spatial axis {axis}; input shape {tuple(x_shape)}, "
                             f"padding {pads[axis]}")
    out = tuple(out_size(p, k, s, 0, 0, d) for p, k, s, d in zip(padded, w_shape[2:], stride, dilation))
    return ConvGeometry(tuple(x_shape), tuple(w_shape), stride, pads, dilation, int(groups), lhs, padded, out)


def _check_inputs(x, w, b, where):
    check_float_array(x, where, "input")
    check_float_array(w, where, "weight")
    check_same_dtype(x, w, where, "input", "weight")
    if b is not None:
        check_float_array(b, where, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"{where}: expected bias of shape ({w.shape[0]},), got {b.shape}")


# ---------------------------------------------------------------------------------------
# Work buffers and the forward cache
# ---------------------------------------------------------------------------------------
def _buffer(ws: dict | None, key: str, shape, dtype) -> np.ndarray:
    """An uninitialised work array, kept in the layer's workspace dict and reused while shape
    and dtype match (memory the process has not touched yet is slow to fault in)."""
    shape = tuple(shape)
    arr = None if ws is None else ws.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype=dtype)
        if ws is not None:
            ws[key] = arr
    return arr


@dataclass(eq=False)
class ConvCache:
    """What conv_backward needs from conv_forward. `saved` is the route's patch matrix (or
    stack); backward reuses a workspace-owned one as its own scratch and sets it to None, and
    a second backward of the same forward rebuilds it from `x`."""
    geo: ConvGeometry
    w: np.ndarray
    x: np.ndarray                 # the input as convolved (after non-zero padding modes)
    route: str                    # see _route
    saved: object
    has_bias: bool
    padding_mode: str
    pads: object                  # padding-mode pads, or None
    x_shape: tuple                # the caller's input shape
    workspace: dict | None

    def _legacy(self) -> tuple:
        return self.geo, self.w, self.saved, self.has_bias, self.padding_mode, self.pads, self.x_shape

    # Unpacks and indexes like the earlier 7-tuple (geo, w, cols, has_bias, padding_mode, pads, x_shape).
    def __getitem__(self, i):
        return self._legacy()[i]

    def __iter__(self):
        return iter(self._legacy())

    def __len__(self) -> int:
        return 7


def _claimed(ws: dict) -> bool:
    """Whether the workspace's buffers back a live cache that backward has not consumed."""
    owner = ws.get("owner")
    cache = owner() if owner is not None else None
    return cache is not None and cache.saved is not None


def _release_saved(cache: ConvCache):
    """The saved patch matrix as scratch when backward does not need its contents (no weight
    gradient): the workspace-owned one (consumed), else None."""
    saved = cache.saved
    if cache.workspace is None:
        return None
    cache.saved = None
    return saved


def _take_saved(cache: ConvCache):
    """(patch matrix, whether backward may overwrite it): the saved one if it lives in the
    layer's workspace (consumed: a second backward rebuilds it), else rebuilt or shared."""
    saved = cache.saved
    if saved is None:
        return _ROUTES[cache.route][0](cache.x, cache.w, cache.geo, None), True
    if cache.workspace is not None:
        cache.saved = None
        return saved, True
    return saved, False


# ---------------------------------------------------------------------------------------
# Route choice: one identity (y = W @ patches), laid out to suit the shape
# ---------------------------------------------------------------------------------------
DEPTHWISE_MAX_ROWS = 64   # strided depthwise: its input gradient uses one band of Ho rows
PER_SAMPLE_MAX_PATCH = 64  # C_in/g * K up to which N small GEMMs beat one wide GEMM (measured)


def _route(geo: ConvGeometry) -> str:
    """'depthwise' (banded matrices, 2-d groups == C_in == C_out), 'per-sample' (a batch of
    GEMMs in N, C order: groups == 1 with a short patch, i.e. 1x1 or tiny C_in), or
    'channel-major' (one large GEMM; everything else, including lhs_dilation)."""
    if any(d != 1 for d in geo.lhs_dilation):
        return "channel-major"
    c_in, c_out, g = geo.in_shape[1], geo.w_shape[0], geo.groups
    patch = geo.w_shape[1] * math.prod(geo.kernel)
    if (g == c_in == c_out > 1 and len(geo.out) == 2 and all(p >= 0 for pair in geo.pads for p in pair)
            and (geo.stride == (1, 1) or geo.out[0] <= DEPTHWISE_MAX_ROWS)):
        return "depthwise"
    if g == 1 and patch <= PER_SAMPLE_MAX_PATCH:
        return "per-sample"
    return "channel-major"


# ---------------------------------------------------------------------------------------
# Channel-major route: cols (C, K, N, *out), one GEMM per group
# ---------------------------------------------------------------------------------------
def _grouped(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, *k) -> (g, C_out/g, C_in/g * K)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(g, m, k) @ (g, k, n) -> (g, m, n); one plain BLAS call when g == 1."""
    if out is None:
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    if a.shape[0] == 1:
        np.matmul(a[0], b[0], out=out[0])
    else:
        np.matmul(a, b, out=out)
    return out


def patches(x: np.ndarray, geo: ConvGeometry, workspace: dict | None = None) -> np.ndarray:
    """x (N, C, *S) -> cols viewed as (groups, C/g * K, N * prod(out))."""
    ws = workspace if workspace is not None else {}
    xp = pad_channels_first(x, geo.pads, geo.lhs_dilation, out=ws.get("xp"))
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out, cols=ws.get("cols"))
    if workspace is not None:
        workspace["xp"], workspace["cols"] = xp, cols
    return cols.reshape(geo.groups, -1, cols[0, 0].size)


def _to_channels_first(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, *S) -> contiguous (C, N*prod(S))."""
    if out is None:
        out = np.empty((y.shape[1], y.size // y.shape[1]), dtype=y.dtype)
    out.reshape(y.shape[1], y.shape[0], -1)[...] = y.reshape(y.shape[0], y.shape[1], -1).swapaxes(0, 1)
    return out


def _from_channels_first(y_cf: np.ndarray, n: int, spatial, b: np.ndarray | None = None) -> np.ndarray:
    """(C, N*prod(S)) -> new contiguous (N, C, *S), with b (C,) added on the way."""
    c = y_cf.shape[0]
    y = np.empty((n, c, *spatial), dtype=y_cf.dtype)
    src = y_cf.reshape(c, n, -1).swapaxes(0, 1)
    if b is None:
        y.reshape(n, c, -1)[...] = src
    else:
        np.add(src, b[:, None], out=y.reshape(n, c, -1))
    return y


def _cm_forward(x, w, b, geo: ConvGeometry, ws):
    """y = W @ cols, cols (g, C/g*K, N*P) -> (y (N, C_out, *out), cols)."""
    cols = patches(x, geo, ws)
    y_cf = _matmul(_grouped(w, geo.groups), cols, out=_buffer(ws, "y_cf", (geo.groups, w.shape[0] // geo.groups,
                                                                          cols.shape[2]), x.dtype))
    return _from_channels_first(y_cf.reshape(w.shape[0], -1), x.shape[0], geo.out, b), cols


def _weight_grad(dy_cf, cols, geo: ConvGeometry) -> np.ndarray:
    """dW = dY @ cols^T, computed as (cols @ dY^T)^T: the same products, ~10-15% faster in
    OpenBLAS for these shapes (a long K and a short M). -> (C_out, C_in/g, *kernel)."""
    return _matmul(cols, dy_cf.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(geo.w_shape)


def _cm_input_grad(dy_cf, w, geo: ConvGeometry, ws, dcols=None) -> np.ndarray:
    """dx = col2im(W^T @ dY): dy_cf (g, C_out/g, N*P) -> (N, C_in, *in)."""
    dcols = _matmul(_grouped(w, geo.groups).transpose(0, 2, 1), dy_cf, out=dcols)
    n, c_in = geo.in_shape[:2]
    dcols = dcols.reshape(c_in, math.prod(geo.kernel), n, *geo.out)
    xp = None if ws is None else ws.get("xp")
    dxp = col2im(dcols, geo.padded, geo.kernel, geo.stride, geo.dilation, geo.out, xp=xp)
    return unpad_channels_first(dxp, geo.pads, geo.in_shape[2:], geo.lhs_dilation)


def _cm_backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db); the weight gradient first, so the patch matrix can take dcols."""
    geo, w, ws = cache.geo, cache.w, cache.workspace
    g = geo.groups
    dy_cf = _to_channels_first(dy, out=_buffer(ws, "dy_cf", (dy.shape[1], dy.size // dy.shape[1]), dy.dtype))
    db = dy_cf.sum(axis=1) if cache.has_bias else None
    dy_cf = dy_cf.reshape(g, w.shape[0] // g, -1)
    if not weight_grad:
        scratch = _release_saved(cache)
        return (_cm_input_grad(dy_cf, w, geo, ws, dcols=scratch) if input_grad else None), None, db
    cols, scratch = _take_saved(cache)
    dw = _weight_grad(dy_cf, cols, geo)
    if not input_grad:
        return None, dw, db
    dx = _cm_input_grad(dy_cf, w, geo, ws, dcols=cols if scratch else None)
    return dx, dw, db


# ---------------------------------------------------------------------------------------
# Per-sample route: cols (N, K, C, *out), a batch of N GEMMs; x, y, dy, dx keep N, C order
# ---------------------------------------------------------------------------------------
def _is_plain_1x1(geo: ConvGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the patch matrix is x itself."""
    return (math.prod(geo.kernel) == 1 and all(s == 1 for s in geo.stride)
            and all(p == 0 for pair in geo.pads for p in pair))


def _ps_patches(x, w, geo: ConvGeometry, ws) -> np.ndarray:
    """x (N, C, *S) -> cols (N, K*C, P), rows ordered (kernel offset, channel)."""
    n, c = x.shape[:2]
    p = math.prod(geo.out)
    if _is_plain_1x1(geo):
        return x.reshape(n, c, p)
    xp = pad_spatial(x, geo.pads, out=None if ws is None else ws.get("xp_ps"))
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out,
                  cols=None if ws is None else ws.get("cols_ps"))
    if ws is not None:
        ws["xp_ps"], ws["cols_ps"] = xp, cols
    return cols.reshape(n, -1, p)


def _ps_weight(w: np.ndarray) -> np.ndarray:
    """(C_out, C_in, *k) -> (C_out, K*C_in), columns ordered (kernel offset, channel)."""
    return w.reshape(w.shape[0], w.shape[1], -1).swapaxes(1, 2).reshape(w.shape[0], -1)


def _ps_forward(x, w, b, geo: ConvGeometry, ws):
    """y[n] = W @ cols[n] -> (y (N, C_out, *out), cols)."""
    cols = _ps_patches(x, w, geo, ws)
    y = np.matmul(_ps_weight(w), cols)
    if b is not None:
        y += b[:, None]
    return y.reshape(x.shape[0], w.shape[0], *geo.out), cols


def _ps_backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """dW = sum_n dY[n] @ cols[n]^T, dx = col2im(W^T @ dY[n]) (x itself for a plain 1x1)."""
    geo, w, ws = cache.geo, cache.w, cache.workspace
    n, c_out = dy.shape[:2]
    dy3 = dy.reshape(n, c_out, -1)
    db = dy3.sum(axis=2).sum(axis=0) if cache.has_bias else None
    kernel = math.prod(geo.kernel)
    if weight_grad:
        cols, scratch = _take_saved(cache)
        per_n = np.matmul(dy3, cols.transpose(0, 2, 1), out=_buffer(ws, "dw_ps", (n, c_out, cols.shape[1]), dy.dtype))
        dw = per_n.sum(axis=0).reshape(c_out, kernel, -1).swapaxes(1, 2).reshape(geo.w_shape)
    else:
        cols, scratch, dw = _release_saved(cache), True, None
    if not input_grad:
        return None, dw, db
    w_t = _ps_weight(w).T
    if _is_plain_1x1(geo):                    # cols is x itself: never a scratch buffer
        return np.matmul(w_t, dy3).reshape(geo.in_shape), dw, db
    dcols = np.matmul(w_t, dy3, out=cols if scratch and cols is not None else None)
    dcols = dcols.reshape(n, kernel, geo.in_shape[1], *geo.out)
    dxp = col2im(dcols, geo.padded, geo.kernel, geo.stride, geo.dilation, geo.out,
                 xp=None if ws is None else ws.get("xp_ps"))
    return unpad_spatial(dxp, geo.pads, geo.in_shape[2:]), dw, db


# ---------------------------------------------------------------------------------------
# Depthwise route (2-d, groups == C_in == C_out): banded filter matrices, see im2col.py
# ---------------------------------------------------------------------------------------
DW_BLOCK_ROWS = 8   # output rows per banded GEMM block


def _dw_parts(out_h: int) -> list[tuple[int, int, int]]:
    """Blocks of output rows covering [0, Ho): (first row, number of blocks, rows per block)
    for the full blocks, then one for the remainder."""
    rows = min(DW_BLOCK_ROWS, out_h)
    full = out_h // rows
    parts = [(0, full, rows)]
    if out_h > full * rows:
        parts.append((full * rows, 1, out_h - full * rows))
    return parts


def _dw_stack(x, geo: ConvGeometry, ws, out=None) -> np.ndarray:
    """x (N, C, H, W) -> S (N, C, Hp, kw, Wo). The workspace remembers for which geometry its
    stack buffer's padding zeros are intact ("stack_zeros"), so they are written once."""
    n, c = x.shape[:2]
    key = (x.shape, x.dtype, geo.pads, geo.kernel[1], geo.stride[1], geo.dilation[1])
    if out is None and ws is not None:
        out = _buffer(ws, "stack", (n, c, geo.padded[0], geo.kernel[1], geo.out[1]), x.dtype)
    clean = ws is not None and out is ws.get("stack") and ws.get("stack_zeros") == key
    stack = row_stack(x, geo.pads, geo.kernel[1], geo.stride[1], geo.dilation[1], geo.out[1], out=out,
                      zero_borders=not clean)
    if ws is not None and stack is ws.get("stack"):
        ws["stack_zeros"] = key
    return stack


def _dw_forward(x, w, b, geo: ConvGeometry, ws, stack_out=None, y=None):
    """y[n, c, block] = B[c] @ S[n, c, block rows] -> (y (N, C, Ho, Wo), S). y: where to write
    (a view of a larger output is fine)."""
    n, c = x.shape[:2]
    (kh, kw), sh, dh = geo.kernel, geo.stride[0], geo.dilation[0]
    stack = _dw_stack(x, geo, ws, out=stack_out)
    if y is None:
        y = np.empty((n, c, *geo.out), dtype=x.dtype)
    for first, blocks, rows in _dw_parts(geo.out[0]):
        span = band_span(rows, kh, sh, dh)
        band = band_matrix(w, rows, sh, dh).reshape(c, 1, rows, span * kw)
        out = y[:, :, first:first + blocks * rows].reshape(n, c, blocks, rows, geo.out[1])
        np.matmul(band, stack_blocks(stack, first * sh, blocks, rows, sh, span), out=out)
    if b is not None:
        y += b[:, None, None]
    return y, stack


def _dw_weight_grad(dy, stack, geo: ConvGeometry, ws) -> np.ndarray:
    """dw: the band of dY_block @ S_block^T, summed over samples and blocks."""
    n, c, _, wo = dy.shape
    (kh, kw), sh, dh = geo.kernel, geo.stride[0], geo.dilation[0]
    dw = 0
    for first, blocks, rows in _dw_parts(geo.out[0]):
        span = band_span(rows, kh, sh, dh)
        dy_blocks = dy[:, :, first:first + blocks * rows].reshape(n, c, blocks, rows, wo)
        d_band = np.matmul(dy_blocks, stack_blocks(stack, first * sh, blocks, rows, sh, span).swapaxes(3, 4),
                           out=_buffer(ws, "d_band_tail" if first else "d_band", (n, c, blocks, rows, span * kw), dy.dtype))
        dw = dw + band_matrix_adjoint(d_band.reshape(n, c, blocks, rows, span, kw), kh, sh, dh)
    return dw


def _reuse_memory(arr: np.ndarray | None, shape, dtype) -> np.ndarray | None:
    """A view of arr's memory with the given shape, if arr is contiguous and large enough."""
    size = math.prod(shape)
    if arr is None or arr.dtype != dtype or arr.size < size or not arr.flags.c_contiguous:
        return None
    return arr.reshape(-1)[:size].reshape(shape)


def _dw_backward_stride1(dy, x, w, geo: ConvGeometry, ws, flipped_pads, dx_out=None, weight_grad=True):
    """Stride 1: the lectures' full convolution, dx = conv(pad(dy, d(k-1) - p), rot180(w)), as
    one unblocked banded GEMM per (sample, channel) on the taps-first row stack of dy; the
    same stack gives dw in one pass (taps_weight_grad). -> (dx, dw)."""
    n, c, ho, wo = dy.shape
    (kh, kw), dh = geo.kernel, geo.dilation[0]
    geo_t = conv_geometry(dy.shape, w.shape, 1, flipped_pads, geo.dilation, geo.groups, where="conv2d backward")
    key = (dy.shape, dy.dtype, flipped_pads, geo.dilation)
    shape = (n, c, kw, geo_t.padded[0], geo_t.out[1])
    out = None if ws is None else _buffer(ws, "stack_t", shape, dy.dtype)
    clean = ws is not None and ws.get("stack_t_zeros") == key
    dy_stack = row_stack(dy, flipped_pads, kw, 1, geo.dilation[1], geo_t.out[1], out=out, zero_borders=not clean,
                         taps_first=True)
    if ws is not None:
        ws["stack_t_zeros"] = key
    h = geo_t.out[0]
    band = band_matrix(np.ascontiguousarray(w[:, :, ::-1, ::-1]), h, 1, dh)         # (C, H, Hp', kw)
    band = np.ascontiguousarray(band.transpose(0, 1, 3, 2)).reshape(c, h, -1)      # columns (b, h) as the stack
    dx = np.matmul(band, dy_stack.reshape(n, c, -1, geo_t.out[1]), out=dx_out)
    return dx, (taps_weight_grad(x, dy_stack, kh, dh) if weight_grad else None)


def _dw_input_grad(dy, w, geo: ConvGeometry, scratch) -> np.ndarray:
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


def _dw_flipped_pads(geo: ConvGeometry) -> tuple:
    """The input gradient's padding, d(k-1) - p per side (the lectures' full convolution)."""
    return tuple((d * (k - 1) - lo, d * (k - 1) - hi) for (lo, hi), k, d in zip(geo.pads, geo.kernel, geo.dilation))


def _dw_stride1(geo: ConvGeometry) -> bool:
    return geo.stride == (1, 1) and all(p >= 0 for pair in _dw_flipped_pads(geo) for p in pair)


def _dw_backward(dy, cache: ConvCache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db). Stride 1: both from dy's row stack. Otherwise dw from the saved stack
    (blocked), then dx in the stack's memory. (dx is always computed: at stride 1 it comes
    with dw from the same stack.)"""
    geo, w, ws = cache.geo, cache.w, cache.workspace
    split = _threads.parts(geo.in_shape[1], DW_MIN_CHANNELS) if _dw_stride1(geo) else None
    if split is not None:
        return _dw_backward_threads(dy, cache, split, weight_grad)
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    if _dw_stride1(geo):
        return (*_dw_backward_stride1(dy, cache.x, w, geo, ws, _dw_flipped_pads(geo), weight_grad=weight_grad), db)
    if weight_grad:
        stack, scratch = _take_saved(cache)
        dw = _dw_weight_grad(dy, stack, geo, ws)
    else:
        stack, scratch, dw = _release_saved(cache), True, None
    if ws is not None:
        ws["stack_zeros"] = None
    return _dw_input_grad(dy, w, geo, stack if scratch else None), dw, db


# Threads: depthwise channels are independent, and this route is many small BLAS calls and
# copies that NumPy runs on one core, so the stride-1 case splits its channels into one part
# per thread (convgrad._threads), each part writing its slice of y, dx and dw.
DW_MIN_CHANNELS = 8       # channels per part below which splitting does not pay


def _dw_part(geo: ConvGeometry, channels: int) -> ConvGeometry:
    """The same depthwise convolution on `channels` of the channels."""
    n = geo.in_shape[0]
    return conv_geometry((n, channels, *geo.in_shape[2:]), (channels, 1, *geo.kernel), geo.stride, geo.pads,
                         geo.dilation, channels, where="depthwise part")


def _part_workspace(ws: dict | None, t: int) -> dict | None:
    return None if ws is None else ws.setdefault(("part", t), {})


def _dw_forward_threads(x, w, b, geo: ConvGeometry, ws):
    """The depthwise forward, stride 1 split over channels -> (y, None): its backward
    needs x and dy only."""
    split = _threads.parts(x.shape[1], DW_MIN_CHANNELS) if _dw_stride1(geo) else None
    if split is None:
        return _dw_forward(x, w, b, geo, ws)
    y = np.empty((x.shape[0], x.shape[1], *geo.out), dtype=x.dtype)

    def part(item):
        t, sl = item
        _dw_forward(x[:, sl], w[sl], None if b is None else b[sl], _dw_part(geo, sl.stop - sl.start),
                    _part_workspace(ws, t), y=y[:, sl])
    _threads.run_parts(part, list(enumerate(split)))
    return y, None


def _dw_backward_threads(dy, cache: ConvCache, split, weight_grad: bool = True):
    geo, w = cache.geo, cache.w
    dx = np.empty(geo.in_shape, dtype=dy.dtype)
    dw = np.empty(w.shape, dtype=w.dtype) if weight_grad else None
    db = np.empty(w.shape[0], dtype=dy.dtype) if cache.has_bias else None
    flipped = _dw_flipped_pads(geo)

    def part(item):
        t, sl = item
        g = dy[:, sl]
        _, dw_part = _dw_backward_stride1(g, cache.x[:, sl], w[sl], _dw_part(geo, sl.stop - sl.start),
                                          _part_workspace(cache.workspace, t), flipped, dx_out=dx[:, sl],
                                          weight_grad=weight_grad)
        if dw is not None:
            dw[sl] = dw_part
        if db is not None:
            db[sl] = g.sum(axis=(0, 2, 3))
    _threads.run_parts(part, list(enumerate(split)))
    return dx, dw, db


# route: (rebuild the saved matrix, forward, backward)
_ROUTES = {
    "channel-major": (lambda x, w, geo, ws: patches(x, geo, ws), _cm_forward, _cm_backward),
    "per-sample": (_ps_patches, _ps_forward, _ps_backward),
    "depthwise": (lambda x, w, geo, ws: _dw_stack(x, geo, ws), _dw_forward_threads, _dw_backward),
}


# ---------------------------------------------------------------------------------------
# The geometry-level API (also used by transposed convolution): channel-major route
# ---------------------------------------------------------------------------------------
def conv_forward_geo(x, w, b, geo: ConvGeometry, workspace: dict | None = None):
    """y = W @ im2col(x) (+ b). Returns (y, cols) — cols is what the weight gradient needs."""
    return _cm_forward(x, w, b, geo, workspace)


def input_grad_geo(dy, w, geo: ConvGeometry) -> np.ndarray:
    """dx = col2im(W^T @ dY): dy (N, C_out, *out) -> (N, C_in, *in)."""
    dy_cf = _to_channels_first(dy).reshape(geo.groups, w.shape[0] // geo.groups, -1)
    return _cm_input_grad(dy_cf, w, geo, None)


def weight_grad_geo(dy, cols: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dW = dY @ cols^T: -> (C_out, C_in/g, *kernel)."""
    dy_cf = _to_channels_first(dy).reshape(geo.groups, geo.w_shape[0] // geo.groups, -1)
    return _weight_grad(dy_cf, cols, geo)


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """db = dy summed over batch and space: (N, C, *S) -> (C,)."""
    return dy.sum(axis=(0, *range(2, dy.ndim)))


# ---------------------------------------------------------------------------------------
# Public functional API
# ---------------------------------------------------------------------------------------
def conv_general(x, w, stride=1, padding=0, lhs_dilation=1, rhs_dilation=1, groups=1):
    """The one primitive (see module docstring). x (N, C_in, *S), w (C_out, C_in/g, *k)
    -> (N, C_out, *out). padding: int, per-axis ints, or per-axis (lo, hi); may be negative."""
    _check_inputs(x, w, None, "conv_general")
    geo = conv_geometry(x.shape, w.shape, stride, padding, rhs_dilation, groups, lhs_dilation,
                        where="conv_general", allow_negative_padding=True)
    return _ROUTES[_route(geo)][1](x, w, None, geo, None)[0]


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d convolution as torch.nn.functional.convNd (N = w.ndim - 2).
    x (N, C_in, *S), w (C_out, C_in/g, *k), b (C_out,) or None -> (N, C_out, *out)."""
    return conv_forward(x, w, b, stride, padding, dilation, groups, padding_mode)[0]


def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                 workspace: dict | None = None):
    """Forward pass that also returns the cache conv_backward needs: (y, cache).
    `workspace`: a dict the caller keeps between calls (one per layer) for the work buffers;
    its buffers back the cache until conv_backward consumes it; a forward that finds the
    workspace still backing a live, unconsumed cache (a layer called twice before its
    backward) takes fresh buffers instead."""
    from .padding import pad as pad_mode, resolve_padding
    where = f"conv{w.ndim - 2}d" if isinstance(w, np.ndarray) else "conv"
    _check_inputs(x, w, b, where)
    check_finite(x, where)
    n_sp = w.ndim - 2
    if padding_mode != "zeros":
        pads = resolve_padding(padding, w.shape[2:], dilation, stride, n_sp, where)
        x_in = pad_mode(x, pads, padding_mode, where)
        geo = conv_geometry(x_in.shape, w.shape, stride, 0, dilation, groups, where=where)
    else:
        pads, x_in = None, x
        geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, where=where)
    if workspace is not None and _claimed(workspace):
        workspace = {}            # its buffers back a cache still waiting for its backward
    route = _route(geo)
    y, saved = _ROUTES[route][1](x_in, w, b, geo, workspace)
    cache = ConvCache(geo, w, x_in, route, saved, b is not None, padding_mode, pads, x.shape, workspace)
    if workspace is not None:
        workspace["owner"] = weakref.ref(cache)
    return y, cache


def conv_backward(dy, cache, input_grad: bool = True, weight_grad: bool = True):
    """Gradients of conv_forward: (dx, dw, db); db is None when there was no bias.
    input_grad=False: dx is not needed (the input is data, as torch's requires_grad=False)
    and may be returned as None, saving the col2im. weight_grad=False: dw is returned as
    None and its GEMM skipped (a frozen weight)."""
    from .padding import pad_backward
    geo, w = cache.geo, cache.w
    check_float_array(dy, f"conv{w.ndim - 2}d backward", "grad_output")
    if dy.shape != geo.out_shape:
        raise ValueError(f"conv{w.ndim - 2}d backward: expected grad_output of shape {geo.out_shape}, "
                         f"got {dy.shape}")
    dx, dw, db = _ROUTES[cache.route][2](dy, cache, input_grad, weight_grad)
    if cache.workspace is not None:
        cache.saved = None        # the workspace is free again; another backward rebuilds from x
    if not input_grad:
        return None, dw, db
    if cache.padding_mode != "zeros":
        dx = pad_backward(dx, cache.pads, cache.padding_mode, cache.x_shape)
    return dx, dw, db


def conv_input_grad(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dx of a convolution, fast path (col2im). dy (N, C_out, *out) -> (N, C_in, *x_shape[2:])."""
    geo = conv_geometry(tuple(x_shape), w.shape, stride, padding, dilation, groups, where="conv_input_grad")
    if dy.shape != geo.out_shape:
        raise ValueError(f"conv_input_grad: expected dy of shape {geo.out_shape}, got {dy.shape}")
    return input_grad_geo(dy, w, geo)


def conv_weight_grad(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dw of a convolution, fast path (dY @ cols^T) -> (C_out, C_in/g, *kernel)."""
    geo = conv_geometry(x.shape, tuple(w_shape), stride, padding, dilation, groups, where="conv_weight_grad")
    if dy.shape != geo.out_shape:
        raise ValueError(f"conv_weight_grad: expected dy of shape {geo.out_shape}, got {dy.shape}")
    return weight_grad_geo(dy, patches(x, geo), geo)


# ---------------------------------------------------------------------------------------
# The lectures' routes: each gradient is itself a call of conv_general
# ---------------------------------------------------------------------------------------
def flip_swap(w: np.ndarray, groups: int) -> np.ndarray:
    """rot180 of every kernel with in/out channels swapped per group (the lectures' W-dagger):
    (C_out, C_in/g, *k) -> (C_in, C_out/g, *k)."""
    c_out, c_in_g, *k = w.shape
    g = groups
    flipped = w[(slice(None), slice(None), *(slice(None, None, -1),) * len(k))]
    return (flipped.reshape(g, c_out // g, c_in_g, *k).swapaxes(1, 2).reshape(g * c_in_g, c_out // g, *k))


def conv_input_grad_by_conv(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dx = conv(pad(dilate(dy, s), d*(k-1) - p), rot180(w)): the lectures' full convolution."""
    geo = conv_geometry(tuple(x_shape), w.shape, stride, padding, dilation, groups, where="conv_input_grad")
    pads = []
    for (lo, hi), k, d, s, size, o in zip(geo.pads, geo.kernel, geo.dilation, geo.stride, x_shape[2:], geo.out):
        extent = d * (k - 1)
        skipped = size + lo + hi - (extent + (o - 1) * s + 1)   # trailing rows no window reached
        pads.append((extent - lo, extent - hi + skipped))
    return conv_general(dy, flip_swap(w, groups), stride=1, padding=tuple(pads),
                        lhs_dilation=geo.stride, rhs_dilation=geo.dilation, groups=groups)


def conv_weight_grad_by_conv(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dw = conv(x, dy): the input's channels play the batch, dy plays the filters,
    dilated by the stride (rhs_dilation = stride) and the kernel dilation becomes the stride."""
    geo = conv_geometry(x.shape, tuple(w_shape), stride, padding, dilation, groups, where="conv_weight_grad")
    n, c_in = x.shape[:2]
    g = groups
    sp = x.shape[2:]
    # x: (N, C_in, *S) -> (C_in/g, g*N, *S): each group's input channels become a batch
    xt = x.reshape(n, g, c_in // g, *sp).transpose(2, 1, 0, *range(3, 3 + len(sp))).reshape(c_in // g, g * n, *sp)
    # dy: (N, C_out, *out) -> (C_out, N, *out) as filters over the g*N "channels"
    dyt = dy.swapaxes(0, 1)
    # trailing rows that no window reached must be cropped so the output is exactly the kernel size
    pads = []
    for (lo, hi), k, d, s, size, o in zip(geo.pads, geo.kernel, geo.dilation, geo.stride, sp, geo.out):
        extra = size + lo + hi - (d * (k - 1) + (o - 1) * s + 1)
        pads.append((lo, hi - extra))
    dw = conv_general(np.ascontiguousarray(xt), np.ascontiguousarray(dyt), stride=geo.dilation,
                      padding=tuple(pads), rhs_dilation=geo.stride, groups=g)
    # dw: (C_in/g, C_out, *k) -> (C_out, C_in/g, *k)
    return dw.swapaxes(0, 1)


# ---------------------------------------------------------------------------------------
# Transposed convolution
# ---------------------------------------------------------------------------------------
def conv_transpose_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0, dilation=1,
                            groups=1, where="conv_transpose") -> ConvGeometry:
    """The geometry of the convolution whose input gradient this transposed convolution is.
    x (N, C_in, *S), w (C_in, C_out/g, *k) -> output (N, C_out, *out),
    out = (S-1)*s - 2p + d*(k-1) + output_padding + 1."""
    n_sp = len(w_shape) - 2
    if n_sp not in _LAYOUTS or len(x_shape) != n_sp + 2:
        raise ValueError(f"{where}: expected input of rank {n_sp + 2} and weight of rank {n_sp + 2} "
                         f"(C_in, C_out/groups, *kernel), got input {tuple(x_shape)}, weight {tuple(w_shape)}")
    stride = as_tuple(stride, n_sp, "stride", where)
    dilation = as_tuple(dilation, n_sp, "dilation", where)
    pad = as_tuple(padding, n_sp, "padding", where, minimum=0)
    opad = as_tuple(output_padding, n_sp, "output_padding", where, minimum=0)
    for op, s, d in zip(opad, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"{where}: output_padding must be smaller than stride or dilation, "
                             f"got output_padding={opad}, stride={stride}, dilation={dilation}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive integer, got {groups!r}")
    if x_shape[1] != w_shape[0]:
        raise ValueError(f"{where}: expected input with {w_shape[0]} channels (weight {tuple(w_shape)}), "
                         f"got shape {tuple(x_shape)}")
    if w_shape[0] % groups:
        raise ValueError(f"{where}: in_channels={w_shape[0]} is not divisible by groups={groups}")
    out = tuple((s_in - 1) * s - 2 * p + d * (k - 1) + op + 1
                for s_in, s, p, d, k, op in zip(x_shape[2:], stride, pad, dilation, w_shape[2:], opad))
    if any(o < 1 for o in out):
        raise ValueError(f"{where}: output size {out} is not positive for input {tuple(x_shape)}")
    # The convolution it is the transpose of: input (N, C_out, *out), its output = x's spatial size.
    # (With output_padding >= stride, allowed when dilation is larger, that convolution would
    # produce more windows than x has; the extra trailing positions simply receive nothing.)
    conv_in_shape = (x_shape[0], w_shape[1] * groups, *out)
    padded = tuple(o + 2 * p for o, p in zip(out, pad))
    return ConvGeometry(conv_in_shape, tuple(w_shape), stride, tuple((p, p) for p in pad), dilation,
                        int(groups), (1,) * n_sp, padded, tuple(x_shape[2:]))


def conv_transpose_forward(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """x (N, C_in, *S), w (C_in, C_out/g, *k) -> (y (N, C_out, *out), cache). y = col2im(W^T @ x)."""
    where = f"conv_transpose{w.ndim - 2}d" if isinstance(w, np.ndarray) else "conv_transpose"
    _check_inputs(x, w, None, where)
    if b is not None:
        check_float_array(b, where, "bias")
        if b.shape != (w.shape[1] * groups,):
            raise ValueError(f"{where}: expected bias of shape ({w.shape[1] * groups},), got {b.shape}")
    check_finite(x, where)
    geo = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups, where)
    y = input_grad_geo(x, w, geo)
    if b is not None:
        y += b.reshape(1, -1, *(1,) * (y.ndim - 2))
    return y, (geo, x, w, b is not None)


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """As torch.nn.functional.conv_transposeNd (argument order included)."""
    return conv_transpose_forward(x, w, b, stride, padding, output_padding, groups, dilation)[0]


def conv_transpose_backward(dy, cache):
    """(dx, dw, db): dx = conv(dy, w) — the backward of up-sampling is down-sampling —
    dw = the conv weight gradient with the roles of input and output exchanged."""
    geo, x, w, has_bias = cache
    if dy.shape != geo.in_shape:
        raise ValueError(f"conv_transpose backward: expected grad_output of shape {geo.in_shape}, got {dy.shape}")
    dx, cols = conv_forward_geo(dy, w, None, geo)
    dw = weight_grad_geo(x, cols, geo)
    return dx, dw, (bias_grad(dy) if has_bias else None)
