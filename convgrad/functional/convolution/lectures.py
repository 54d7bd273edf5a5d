"""The lectures' routes: each gradient of a convolution is itself a call of conv_general.

    dJ/dx = conv_general(dy, rot180(w) with in/out swapped per group,
                         padding = vjp_padding (d*(k-1) - p, + the rows the stride skipped),
                         lhs_dilation = stride)                 # pad(dilate(dy, s), k-1)
    dJ/dw = conv_general(x as channels, dy as filters, rhs_dilation = stride)

The fast routes use the same identities in matrix form; tests hold them equal.
"""
from __future__ import annotations

import numpy as np

from ..padding import vjp_padding
from .dispatch import conv_general
from .geometry import flip_swap, gradient_geometry


def conv_input_grad_by_conv(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dx = conv(pad(dilate(dy, s), d*(k-1) - p), rot180(w)): the lectures' full convolution.
    dy (N, C_out, *out), w (C_out, C_in/g, *k) -> (N, C_in, *x_shape[2:])."""

    geo = gradient_geometry(dy, w, x_shape, "input", stride, padding, dilation, groups, "conv_input_grad_by_conv")
    pads = vjp_padding(geo.in_shape[2:], geo.kernel, geo.stride, geo.dilation, geo.pads, geo.out)
    return conv_general(dy, flip_swap(w, geo.groups), stride=1, padding=pads,
                        lhs_dilation=geo.stride, rhs_dilation=geo.dilation, groups=geo.groups)


def conv_weight_grad_by_conv(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dw = conv(x, dy): the input's channels play the batch, dy plays the filters,
    dilated by the stride (rhs_dilation = stride) and the kernel dilation becomes the stride.
    x (N, C_in, *S), dy (N, C_out, *out) -> (C_out, C_in/g, *k)."""

    geo = gradient_geometry(dy, x, w_shape, "weight", stride, padding, dilation, groups, "conv_weight_grad_by_conv")
    n, c_in = x.shape[:2]
    g = geo.groups
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
