"""Convolution layers: ConvNd and ConvTransposeNd for N = 1, 2, 3 (torch's arguments and names)."""
from __future__ import annotations

import math

from .._checks import (as_tuple, check_bool, check_choice, check_float_array, check_float_dtype, check_generator,
                       check_int, check_rank, is_int)
from ..autograd.grad_mode import is_grad_enabled
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
        in_channels = check_int(name, "in_channels", in_channels, minimum=1)
        out_channels = check_int(name, "out_channels", out_channels, minimum=1)
        groups = check_int(name, "groups", groups, minimum=1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        bias = check_bool(name, "bias", bias)
        padding_mode = check_choice(name, "padding_mode", padding_mode, PADDING_MODES)
        dtype = check_float_dtype(name, dtype)
        generator = check_generator(name, generator)
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
                                        self.stride, self.padding, self.dilation, self.groups, self.padding_mode,
                                        workspace=self._workspace, where=type(self).__name__,
                                        keep=is_grad_enabled())
        return y

    def backward(self, grad_out, input_grad: bool = True):
        """Adds dW, db into the parameters' .grad; returns dx (None when input_grad=False).
        A weight with requires_grad False gets no dW (its GEMM is skipped)."""
        dx, dw, db = F.conv_backward(grad_out, self._cached(self._cache), input_grad,
                                     weight_grad=self.weight.requires_grad)
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
    """1-D convolution (cross-correlation) over a batch of multi-channel sequences.

    ``y[n, o, i] = bias[o] + sum_{c, a} weight[o, c, a] * xpad[n, g*C_in/groups + c, i*stride + a*dilation]``
    where ``g`` is the group of output channel ``o`` and ``xpad`` is ``x`` padded. The backward pass is
    two more convolutions (see :class:`Conv2d`).

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output (the number of filters), C_out.
        kernel_size (int or tuple): the window size k; an int is used for every axis.
        stride (int or tuple): the window's step. Default: 1.
        padding (int, tuple or str): added on each side of every spatial axis; ``'valid'`` is 0,
            ``'same'`` keeps the size (stride 1 only). Default: 0.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        groups (int): C_in and C_out are split into this many groups, each convolved on its own;
            ``groups = C_in = C_out`` is the depthwise convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        padding_mode (str): ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``. Default: ``'zeros'``.
        generator: None (the global generator, see :func:`convgrad.manual_seed`), an int seed or a
            numpy Generator, for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype` (float32).

    Shape:
        - Input: ``(N, C_in, L)``
        - Output: ``(N, C_out, L_out)`` with
          ``L_out = floor((L + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``

    Attributes:
        weight (Parameter): ``(C_out, C_in/groups, k)``, drawn from U(-sqrt(k), sqrt(k)) with
            ``k = groups / (C_in * k)``, as torch.
        bias (Parameter or None): ``(C_out,)``, drawn from the same distribution.

    Example:
        >>> conv = nn.Conv1d(4, 6, kernel_size=5, padding=2)
        >>> x = np.zeros((2, 4, 50), dtype=np.float32)
        >>> conv(x).shape
        (2, 6, 50)
        >>> conv.backward(np.ones((2, 6, 50), dtype=np.float32)).shape
        (2, 4, 50)
    """
    n_dims = 1


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over a batch of multi-channel images.

    ``y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] * xpad[n, g*C_in/groups + c, i*s + a*d, j*s + b*d]``
    with ``s`` the stride, ``d`` the dilation, ``g`` the group of output channel ``o`` and ``xpad`` the
    padded input. The backward pass is two more convolutions, the lectures' identities:
    ``dJ/dw = conv(x, dJ/dy)`` and ``dJ/dx = conv(pad(dilate(dJ/dy, s), d*(k-1) - p), rot180(w))``
    (see :doc:`/tutorials/worked-example`); the fast path computes them as im2col/col2im matrix
    products. ``backward(grad_out)`` returns dJ/dx and adds dJ/dw and dJ/db into ``.grad``.

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output (the number of filters), C_out.
        kernel_size (int or tuple): the window (kh, kw); an int is used for every axis.
        stride (int or tuple): the window's step. Default: 1.
        padding (int, tuple or str): added on each side of every spatial axis; ``'valid'`` is 0,
            ``'same'`` keeps the size (stride 1 only). Default: 0.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        groups (int): C_in and C_out are split into this many groups, each convolved on its own;
            ``groups = C_in = C_out`` is the depthwise convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        padding_mode (str): ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``. Default: ``'zeros'``.
        generator: None (the global generator, see :func:`convgrad.manual_seed`), an int seed or a
            numpy Generator, for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype` (float32).

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, H_out, W_out)`` with
          ``H_out = floor((H + 2*padding[0] - dilation[0]*(kernel_size[0] - 1) - 1) / stride[0]) + 1``
          and ``W_out`` the same with index 1.

    Attributes:
        weight (Parameter): ``(C_out, C_in/groups, kh, kw)``, drawn from U(-sqrt(k), sqrt(k)) with
            ``k = groups / (C_in * kh * kw)``, as torch.
        bias (Parameter or None): ``(C_out,)``, drawn from the same distribution.

    Example:
        >>> conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
        >>> y = conv(x)
        >>> y.shape
        (4, 8, 16, 16)
        >>> conv.backward(np.ones_like(y)).shape              # dJ/dx
        (4, 3, 32, 32)
        >>> conv.weight.grad.shape, conv.bias.grad.shape     # dJ/dw, dJ/db, added by backward
        ((8, 3, 3, 3), (8,))
    """
    n_dims = 2


class Conv3d(_ConvNd):
    """3-D convolution (cross-correlation) over a batch of multi-channel volumes.

    ``y[n, o, t, i, j] = bias[o] + sum_{c, a, b, e} weight[o, c, a, b, e]
    * xpad[n, c', t*s0 + a*d0, i*s1 + b*d1, j*s2 + e*d2]``
    with ``c'`` channel ``c`` of the group of ``o``. The backward pass is two more convolutions (see
    :class:`Conv2d`).

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output (the number of filters), C_out.
        kernel_size (int or tuple): the window (kd, kh, kw); an int is used for every axis.
        stride (int or tuple): the window's step. Default: 1.
        padding (int, tuple or str): added on each side of every spatial axis; ``'valid'`` is 0,
            ``'same'`` keeps the size (stride 1 only). Default: 0.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        groups (int): C_in and C_out are split into this many groups, each convolved on its own;
            ``groups = C_in = C_out`` is the depthwise convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        padding_mode (str): ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``. Default: ``'zeros'``.
        generator: None (the global generator, see :func:`convgrad.manual_seed`), an int seed or a
            numpy Generator, for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype` (float32).

    Shape:
        - Input: ``(N, C_in, D, H, W)``
        - Output: ``(N, C_out, D_out, H_out, W_out)`` with, per axis ``i``,
          ``out[i] = floor((in[i] + 2*padding[i] - dilation[i]*(kernel_size[i] - 1) - 1) / stride[i]) + 1``

    Attributes:
        weight (Parameter): ``(C_out, C_in/groups, kd, kh, kw)``, drawn from U(-sqrt(k), sqrt(k)) with
            ``k = groups / (C_in * kd * kh * kw)``, as torch.
        bias (Parameter or None): ``(C_out,)``, drawn from the same distribution.

    Example:
        >>> conv = nn.Conv3d(2, 4, kernel_size=3, stride=(1, 2, 2))
        >>> x = np.zeros((1, 2, 5, 9, 9), dtype=np.float32)
        >>> conv(x).shape
        (1, 4, 3, 4, 4)
    """
    n_dims = 3


class _ConvTransposeNd(_ConvNd):
    skips_input_grad = True      # backward(grad, input_grad=False) spares the forward convolution of dy
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", generator=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported (as in torch), "
                             f"got {padding_mode!r}")
        if isinstance(padding, str):
            raise TypeError(f"{type(self).__name__}: padding must be an int or a tuple of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, generator, dtype)
        self.output_padding = as_tuple(output_padding, self.n_dims, "output_padding", type(self).__name__, 0)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"{type(self).__name__}: output_padding must be smaller than stride or "
                                 f"dilation, got output_padding={self.output_padding}, stride={self.stride}")

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def forward(self, x, output_size=None):
        """output_size (optional, as torch): the output's spatial size (or its whole shape), which
        picks the output_padding of this call among the sizes the stride allows."""
        output_padding = self.output_padding if output_size is None else self._output_padding_for(x, output_size)
        y, self._cache = F.conv_transpose_forward(
            x, self.weight.data, None if self.bias is None else self.bias.data, self.stride, self.padding,
            output_padding, self.groups, self.dilation, where=type(self).__name__, keep=is_grad_enabled())
        return y

    def _output_padding_for(self, x, output_size) -> tuple:
        """torch's _output_padding: each requested size in [smallest, smallest + stride - 1]."""
        where, n = type(self).__name__, self.n_dims
        check_float_array(x, where)
        check_rank(x, n + 2, where, "(N, C, *spatial)")
        size = tuple(output_size) if isinstance(output_size, (tuple, list)) else output_size
        if not isinstance(size, tuple) or not all(is_int(v) for v in size):
            raise TypeError(f"{where}: output_size must be a tuple of {n} (or {n + 2}) ints, got "
                            f"{type(output_size).__name__} {output_size!r:.60}")
        if len(size) not in (n, n + 2):
            raise ValueError(f"{where}: output_size must have {n} (or {n + 2}) entries, got {output_size!r}")
        size = size[-n:]
        smallest = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
                    zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        for want, low, s in zip(size, smallest, self.stride):
            if not low <= want <= low + s - 1:
                raise ValueError(f"{where}: output_size {tuple(size)} is not reachable from input of shape {x.shape}: "
                                 f"each size must lie in [{', '.join(f'{m}..{m + st - 1}' for m, st in zip(smallest, self.stride))}]")
        return tuple(int(w - low) for w, low in zip(size, smallest))

    def backward(self, grad_out, input_grad: bool = True):
        """Adds dW, db into the parameters' .grad; returns dx (None when input_grad=False).
        A weight with requires_grad False gets no dW."""
        dx, dw, db = F.conv_transpose_backward(grad_out, self._cached(self._cache), input_grad,
                                               weight_grad=self.weight.requires_grad)
        self._accumulate(weight=dw, bias=db)
        return dx


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution: the input gradient of a Conv1d, used as a layer (learnt up-sampling).

    Its forward is the backward (dJ/dx) of the convolution with the same arguments, and its backward
    is that convolution's forward (dx) and weight gradient (dw); see :class:`ConvTranspose2d`.

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output, C_out.
        kernel_size (int or tuple): the kernel size k; an int is used for every axis.
        stride (int or tuple): the stride of the convolution this one transposes. Default: 1.
        padding (int or tuple): the padding of the convolution this one transposes: ``padding`` is
            removed from each side of the output. Default: 0.
        output_padding (int or tuple): extra size added on one side of each output axis (chooses among
            the input sizes a strided convolution maps to the same output). Default: 0.
        groups (int): as in the convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        padding_mode (str): only ``'zeros'``, as torch.
        generator: None, an int seed or a numpy Generator for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C_in, L)``
        - Output: ``(N, C_out, L_out)`` with
          ``L_out = (L - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``

    Attributes:
        weight (Parameter): ``(C_in, C_out/groups, k)`` (in and out swapped with respect to the convolution),
            drawn from U(-sqrt(k), sqrt(k)) with ``k = groups / (C_out * k)``.
        bias (Parameter or None): ``(C_out,)``.

    Example:
        >>> up = nn.ConvTranspose1d(4, 2, kernel_size=4, stride=2, padding=1)
        >>> up(np.zeros((3, 4, 10), dtype=np.float32)).shape
        (3, 2, 20)
    """
    n_dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution: the input gradient of a Conv2d, used as a layer (learnt up-sampling).

    For ``w`` of shape ``(C_in, C_out/groups, kh, kw)``, ``y = conv_input_grad(x, w)`` of the
    convolution ``Conv2d(C_out, C_in, kernel_size, stride, padding, dilation, groups)``: each input
    pixel scatters a copy of the kernel scaled by its value into the output, at stride ``s``.
    In the lectures' terms it is zero insertion (stride - 1 zeros between inputs), padding by
    ``d*(k-1) - p`` and a convolution with the rotated kernel. The backward pass is the convolution's
    forward (dJ/dx) and its weight gradient (dJ/dw).

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output, C_out.
        kernel_size (int or tuple): the kernel (kh, kw); an int is used for every axis.
        stride (int or tuple): the stride of the convolution this one transposes. Default: 1.
        padding (int or tuple): the padding of the convolution this one transposes: ``padding`` is
            removed from each side of the output. Default: 0.
        output_padding (int or tuple): extra size added on one side of each output axis (chooses among
            the input sizes a strided convolution maps to the same output). Default: 0.
        groups (int): as in the convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        padding_mode (str): only ``'zeros'``, as torch.
        generator: None, an int seed or a numpy Generator for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, H_out, W_out)`` with
          ``H_out = (H - 1)*stride[0] - 2*padding[0] + dilation[0]*(kernel_size[0] - 1) + output_padding[0] + 1``
          and ``W_out`` the same with index 1.

    Attributes:
        weight (Parameter): ``(C_in, C_out/groups, kh, kw)`` (in and out swapped with respect to the convolution),
            drawn from U(-sqrt(k), sqrt(k)) with ``k = groups / (C_out * kh * kw)``.
        bias (Parameter or None): ``(C_out,)``.

    Example:
        >>> up = nn.ConvTranspose2d(8, 3, kernel_size=3, stride=2, padding=1, output_padding=1)
        >>> x = np.zeros((2, 8, 16, 16), dtype=np.float32)
        >>> y = up(x)
        >>> y.shape                                  # doubles H and W
        (2, 3, 32, 32)
        >>> up.backward(np.ones_like(y)).shape
        (2, 8, 16, 16)
    """
    n_dims = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution: the input gradient of a Conv3d, used as a layer.

    See :class:`ConvTranspose2d`; the same with three spatial axes.

    Args:
        in_channels (int): channels of the input, C_in.
        out_channels (int): channels of the output, C_out.
        kernel_size (int or tuple): the kernel (kd, kh, kw); an int is used for every axis.
        stride (int or tuple): the stride of the convolution this one transposes. Default: 1.
        padding (int or tuple): the padding of the convolution this one transposes: ``padding`` is
            removed from each side of the output. Default: 0.
        output_padding (int or tuple): extra size added on one side of each output axis (chooses among
            the input sizes a strided convolution maps to the same output). Default: 0.
        groups (int): as in the convolution. Default: 1.
        bias (bool): add a learnt bias per output channel. Default: True.
        dilation (int or tuple): spacing between the kernel's taps. Default: 1.
        padding_mode (str): only ``'zeros'``, as torch.
        generator: None, an int seed or a numpy Generator for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C_in, D, H, W)``
        - Output: ``(N, C_out, D_out, H_out, W_out)`` with, per axis ``i``,
          ``out[i] = (in[i] - 1)*stride[i] - 2*padding[i] + dilation[i]*(kernel_size[i] - 1) + output_padding[i] + 1``

    Attributes:
        weight (Parameter): ``(C_in, C_out/groups, kd, kh, kw)`` (in and out swapped with respect to the convolution),
            drawn from U(-sqrt(k), sqrt(k)) with ``k = groups / (C_out * kd * kh * kw)``.
        bias (Parameter or None): ``(C_out,)``.

    Example:
        >>> up = nn.ConvTranspose3d(2, 1, kernel_size=2, stride=2)
        >>> up(np.zeros((1, 2, 3, 4, 5), dtype=np.float32)).shape
        (1, 1, 6, 8, 10)
    """
    n_dims = 3
