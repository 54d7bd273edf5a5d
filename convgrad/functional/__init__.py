"""Stateless math: every operation a forward function and its backward."""
from .convolution import (conv, conv_backward, conv_forward, conv_general, conv_input_grad, conv_input_grad_by_conv,
                   conv_transpose, conv_transpose_backward, conv_transpose_forward, conv_weight_grad,
                   conv_weight_grad_by_conv, flip_swap)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d: x (N, C_in, L), w (C_out, C_in/g, k)."""
    _expect_rank(w, 3, "conv1d")
    return conv(x, w, b, stride, padding, dilation, groups)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw)."""
    _expect_rank(w, 4, "conv2d")
    return conv(x, w, b, stride, padding, dilation, groups)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv3d: x (N, C_in, D, H, W), w (C_out, C_in/g, kd, kh, kw)."""
    _expect_rank(w, 5, "conv3d")
    return conv(x, w, b, stride, padding, dilation, groups)


def _expect_rank(w, rank, where):
    if getattr(w, "ndim", None) != rank:
        raise ValueError(f"{where}: expected a weight of rank {rank}, got shape {getattr(w, 'shape', None)}")
