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
from dataclasses import dataclass

import numpy as np

from .._checks import as_tuple, check_float_array, check_finite, check_same_dtype
from .im2col import col2im, im2col, out_size, pad_channels_first, unpad_channels_first

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
# The matrix form: three GEMMs around one patch matrix
# ---------------------------------------------------------------------------------------
def _grouped(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, *k) -> (g, C_out/g, C_in/g * K)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _matmul_grouped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(g, m, k) @ (g, k, n) -> (g, m, n); one BLAS call when g == 1."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return np.matmul(a, b)


def patches(x: np.ndarray, geo: ConvGeometry, workspace: dict | None = None) -> np.ndarray:
    """x (N, C, *S) -> cols viewed as (groups, C/g * K, N * prod(out))."""
    ws = workspace if workspace is not None else {}
    xp = pad_channels_first(x, geo.pads, geo.lhs_dilation, out=ws.get("xp"))
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out, cols=ws.get("cols"))
    if workspace is not None:
        workspace["xp"], workspace["cols"] = xp, cols
    return cols.reshape(geo.groups, -1, cols[0, 0].size)


def _to_channels_first(y: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> contiguous (C, N*prod(S))."""
    return np.ascontiguousarray(y.swapaxes(0, 1)).reshape(y.shape[1], -1)


def _from_channels_first(y_cf: np.ndarray, n: int, spatial) -> np.ndarray:
    """(C, N*prod(S)) -> contiguous (N, C, *S)."""
    c = y_cf.shape[0]
    return np.ascontiguousarray(y_cf.reshape(c, n, *spatial).swapaxes(0, 1))


def conv_forward_geo(x, w, b, geo: ConvGeometry, workspace: dict | None = None):
    """y = W @ im2col(x) (+ b). Returns (y, cols) — cols is what the weight gradient needs."""
    cols = patches(x, geo, workspace)
    y_cf = _matmul_grouped(_grouped(w, geo.groups), cols).reshape(w.shape[0], -1)
    if b is not None:
        y_cf += b[:, None]
    return _from_channels_first(y_cf, x.shape[0], geo.out), cols


def input_grad_geo(dy, w, geo: ConvGeometry) -> np.ndarray:
    """dx = col2im(W^T @ dY): dy (N, C_out, *out) -> (N, C_in, *in)."""
    dy_cf = _to_channels_first(dy).reshape(geo.groups, w.shape[0] // geo.groups, -1)
    dcols = _matmul_grouped(_grouped(w, geo.groups).transpose(0, 2, 1), dy_cf)
    n, c_in = geo.in_shape[:2]
    dcols = dcols.reshape(c_in, math.prod(geo.kernel), n, *geo.out)
    dxp = col2im(dcols, geo.padded, geo.kernel, geo.stride, geo.dilation, geo.out)
    return unpad_channels_first(dxp, geo.pads, geo.in_shape[2:], geo.lhs_dilation)


def weight_grad_geo(dy, cols: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """dW = dY @ cols^T: -> (C_out, C_in/g, *kernel)."""
    dy_cf = _to_channels_first(dy).reshape(geo.groups, geo.w_shape[0] // geo.groups, -1)
    dw = _matmul_grouped(dy_cf, cols.transpose(0, 2, 1))
    return dw.reshape(geo.w_shape)


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
    return conv_forward_geo(x, w, None, geo)[0]


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d convolution as torch.nn.functional.convNd (N = w.ndim - 2).
    x (N, C_in, *S), w (C_out, C_in/g, *k), b (C_out,) or None -> (N, C_out, *out)."""
    return conv_forward(x, w, b, stride, padding, dilation, groups, padding_mode)[0]


def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                 workspace: dict | None = None):
    """Forward pass that also returns the cache conv_backward needs: (y, cache)."""
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
    y, cols = conv_forward_geo(x_in, w, b, geo, workspace)
    return y, (geo, w, cols, b is not None, padding_mode, pads, x.shape)


def conv_backward(dy, cache):
    """Gradients of conv_forward: (dx, dw, db); db is None when there was no bias."""
    from .padding import pad_backward
    geo, w, cols, has_bias, padding_mode, pads, x_shape = cache
    check_float_array(dy, f"conv{w.ndim - 2}d backward", "grad_output")
    if dy.shape != geo.out_shape:
        raise ValueError(f"conv{w.ndim - 2}d backward: expected grad_output of shape {geo.out_shape}, "
                         f"got {dy.shape}")
    dx = input_grad_geo(dy, w, geo)
    if padding_mode != "zeros":
        dx = pad_backward(dx, pads, padding_mode, x_shape)
    return dx, weight_grad_geo(dy, cols, geo), (bias_grad(dy) if has_bias else None)


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
    g, c_out = groups, w_shape[0]
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
