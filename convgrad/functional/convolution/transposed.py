"""Transposed convolution: its forward is the input gradient of a convolution, its backward
a convolution forward (dx) and that convolution's weight gradient with the roles of input
and output exchanged (dw). Both run on the channel-major route, chunked like it.

x (N, C_in, *S), w (C_in, C_out/g, *k) -> y (N, C_out, *out),
out = (S-1)*s - 2p + d*(k-1) + output_padding + 1.
"""
from __future__ import annotations

import math

import numpy as np

from ..._checks import as_tuple, check_grad
from . import channel_major
from .geometry import LAYOUTS, ConvGeometry, check_groups, check_inputs
from .workspace import fits_workspace, private_input


def conv_transpose_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0, dilation=1,
                            groups=1, where="conv_transpose") -> ConvGeometry:
    """The geometry of the convolution whose input gradient this transposed convolution is:
    its input is (N, C_out, *out) and its output x's spatial size."""
    n_sp = len(w_shape) - 2
    if n_sp not in LAYOUTS or len(x_shape) != n_sp + 2:
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
    groups = check_groups(groups, where)
    if x_shape[1] != w_shape[0]:
        raise ValueError(f"{where}: expected input with {w_shape[0]} channels (weight {tuple(w_shape)}), "
                         f"got shape {tuple(x_shape)}")
    if w_shape[0] % groups:
        raise ValueError(f"{where}: in_channels={w_shape[0]} is not divisible by groups={groups}")
    out = tuple((s_in - 1) * s - 2 * p + d * (k - 1) + op + 1
                for s_in, s, p, d, k, op in zip(x_shape[2:], stride, pad, dilation, w_shape[2:], opad))
    if any(o < 1 for o in out):
        raise ValueError(f"{where}: output size {out} is not positive for input {tuple(x_shape)}")
    # (With output_padding >= stride, allowed when dilation is larger, that convolution would
    # produce more windows than x has; the extra trailing positions simply receive nothing.)
    conv_in_shape = (x_shape[0], w_shape[1] * groups, *out)
    padded = tuple(o + 2 * p for o, p in zip(out, pad))
    return ConvGeometry(conv_in_shape, tuple(w_shape), stride, tuple((p, p) for p in pad), dilation,
                        groups, (1,) * n_sp, padded, tuple(x_shape[2:]))


def conv_transpose_forward(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                           where: str | None = None, keep: bool = True):
    """x (N, C_in, *S), w (C_in, C_out/g, *k) -> (y (N, C_out, *out), cache). y = col2im(W^T @ x).
    `where` names the caller in messages (default conv_transposeNd). The cache keeps its own
    copy of x (private_input) unless keep=False (no backward follows)."""
    if where is None:
        where = f"conv_transpose{w.ndim - 2}d" if isinstance(w, np.ndarray) else "conv_transpose"
    check_inputs(x, w, None, where)
    geo = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups, where)
    check_inputs(x, w, b, where, bias_size=w.shape[1] * geo.groups)
    y, _ = channel_major.grads(x, None, w, geo, input_grad=True, weight_grad=False)
    if b is not None:
        y += b.reshape(1, -1, *(1,) * (y.ndim - 2))
    return y, (geo, private_input(x, x) if keep else x, w, b is not None, where)


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """As torch.nn.functional.conv_transposeNd (argument order included)."""
    return conv_transpose_forward(x, w, b, stride, padding, output_padding, groups, dilation, keep=False)[0]


def conv_transpose_backward(dy, cache, input_grad: bool = True, weight_grad: bool = True):
    """(dx, dw, db): dx = conv(dy, w) — the backward of up-sampling is down-sampling —
    dw = the conv weight gradient with the roles of input and output exchanged; both from one
    patch matrix of dy when it fits the workspace budget (else each rebuilds it chunk by chunk)."""
    geo, x, w, has_bias, where = cache
    dy = check_grad(dy, geo.in_shape, w.dtype, where)
    cols = None           # dy's patch matrix, built once for both when it fits the workspace budget
    shape = (geo.in_shape[1], math.prod(geo.kernel), geo.in_shape[0], *geo.out)
    if input_grad and weight_grad and fits_workspace(math.prod(shape) * dy.dtype.itemsize):
        cols = np.empty(shape, dy.dtype)
    dx = channel_major.conv(dy, w, None, geo, keep=cols) if input_grad else None
    dw = channel_major.grads(x, dy, w, geo, input_grad=False, weight_grad=True, kept=cols)[1] if weight_grad else None
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if has_bias else None
    return dx, dw, db
