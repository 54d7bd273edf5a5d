"""Convolution layers: ConvNd and ConvTransposeNd for N = 1, 2, 3 (torch's arguments and names)."""
from __future__ import annotations

import math

import numpy as np

from .._checks import as_tuple
from ..functional import convolution as F
from ..functional.padding import PADDING_MODES
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    n_dims = 2
    skips_input_grad = True      # backward(grad, input_grad=False) spares the col2im

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", generator=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        n = self.n_dims
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = as_tuple(kernel_size, n, "kernel_size", name)
        self.stride = as_tuple(stride, n, "stride", name)
        self.dilation = as_tuple(dilation, n, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1 (as in torch), got stride {self.stride}")
            self.padding = padding
        else:
            self.padding = as_tuple(padding, n, "padding", name, minimum=0)
        self.padding_mode = padding_mode
        rng = init.make_rng(generator)
        w_shape = self._weight_shape()
        bound = init.default_bound(w_shape[1] * math.prod(self.kernel_size))
        self.weight = Parameter(init.uniform(w_shape, bound, rng, dtype))
        self.bias = Parameter(init.uniform((self._bias_size(),), bound, rng, dtype)) if bias else None
        self._cache = None
        self._workspace = {}

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def _bias_size(self):
        return self.out_channels

    def forward(self, x):
        self._cache = None        # the previous call's cache, unless someone else holds it, frees the workspace
        y, self._cache = F.conv_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                        self.stride, self.padding, self.dilation, self.groups,
                                        self.padding_mode, workspace=self._workspace)
        return y

    def backward(self, grad_out, input_grad: bool = True):
        """Adds dW, db into the parameters' .grad; returns dx (None when input_grad=False).
        A weight with requires_grad False gets no dW (its GEMM is skipped)."""
        dx, dw, db = F.conv_backward(grad_out, self._cached(self._cache), input_grad,
                                     weight_grad=getattr(self.weight, "requires_grad", True))
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding not in ((0,) * self.n_dims, "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.n_dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class Conv1d(_ConvNd):
    """x (N, C_in, L) -> (N, C_out, L_out); weight (C_out, C_in/groups, k)."""
    n_dims = 1


class Conv2d(_ConvNd):
    """x (N, C_in, H, W) -> (N, C_out, H_out, W_out); weight (C_out, C_in/groups, kh, kw).
    H_out = floor((H + 2p - d(k-1) - 1)/s) + 1."""
    n_dims = 2


class Conv3d(_ConvNd):
    """x (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out); weight (C_out, C_in/groups, kd, kh, kw)."""
    n_dims = 3


class _ConvTransposeNd(_ConvNd):
    skips_input_grad = False
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", generator=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported (as in torch), "
                             f"got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, generator, dtype)
        self.output_padding = as_tuple(output_padding, self.n_dims, "output_padding", type(self).__name__, 0)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"{type(self).__name__}: output_padding must be smaller than stride or "
                                 f"dilation, got output_padding={self.output_padding}, stride={self.stride}")

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def forward(self, x):
        y, self._cache = F.conv_transpose_forward(
            x, self.weight.data, None if self.bias is None else self.bias.data, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation)
        return y

    def backward(self, grad_out):
        dx, dw, db = F.conv_transpose_backward(grad_out, self._cached(self._cache))
        self._accumulate(weight=dw, bias=db)
        return dx


class ConvTranspose1d(_ConvTransposeNd):
    """x (N, C_in, L) -> (N, C_out, (L-1)s - 2p + d(k-1) + output_padding + 1); weight (C_in, C_out/g, k)."""
    n_dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """x (N, C_in, H, W) -> (N, C_out, H_out, W_out); weight (C_in, C_out/groups, kh, kw)."""
    n_dims = 2


class ConvTranspose3d(_ConvTransposeNd):
    """x (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out); weight (C_in, C_out/groups, kd, kh, kw)."""
    n_dims = 3
