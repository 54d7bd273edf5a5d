"""Upsample and Downsample layers (1-D, 2-D, 3-D by the input's rank)."""
from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_choice, check_float_array, check_grad, check_int
from ..functional import resample as R
from .module import Module


def _factor(where: str, name: str, value):
    """An int >= 1, or a tuple/list of them (one per spatial axis; its length is checked
    against the input's rank at forward)."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{where}: {name} must be an int or a non-empty tuple of ints, got {value!r}")
        return tuple(check_int(where, f"{name}[{i}]", v, minimum=1) for i, v in enumerate(value))
    if isinstance(value, (numbers.Real, np.floating)) and not isinstance(value, (bool, np.bool_)) \
            and not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer factor (fractional scales are not supported), "
                        f"got {value!r}")
    return check_int(where, name, value, minimum=1)


def _check_input(x, where: str) -> None:
    check_float_array(x, where)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{where}: expected input of rank 3, 4 or 5 ((N, C, *spatial), 1 to 3 spatial axes), "
                         f"got shape {x.shape} (rank {x.ndim})")


class Upsample(Module):
    """Up-sampling of every spatial axis by an integer factor.

    ``mode='nearest'`` repeats each element f times along each axis, ``y[..., i] = x[..., i // f]``;
    its backward sums the gradient over each f-block. ``mode='zeros'`` inserts f - 1 zeros between
    elements (the lectures' uSample), ``y[..., i*f] = x[..., i]``; its backward is down-sampling.
    1-D, 2-D or 3-D by the input's rank.

    Args:
        scale_factor (int or tuple): the factor f, one for every spatial axis or one per axis.
        mode (str): ``'nearest'`` or ``'zeros'``. Default: ``'nearest'``.

    Shape:
        - Input: ``(N, C, *S)``
        - Output: ``(N, C, *(S*f))`` for ``'nearest'``, ``(N, C, *((S - 1)*f + 1))`` for ``'zeros'``.

    Example:
        >>> x = np.array([[[1.0, 2.0]]])
        >>> nn.Upsample(2)(x)
        array([[[1., 1., 2., 2.]]])
        >>> nn.Upsample(2, mode="zeros")(x)
        array([[[1., 0., 2.]]])
    """

    def __init__(self, scale_factor, mode: str = "nearest"):
        super().__init__()
        self.mode = check_choice("Upsample", "mode", mode, ("nearest", "zeros"))
        self.scale_factor = _factor("Upsample", "scale_factor", scale_factor)
        self._cache = None

    def forward(self, x):
        _check_input(x, "Upsample")
        if self.mode == "nearest":
            y = R.upsample_nearest(x, self.scale_factor, where="Upsample")
        else:
            y = R.upsample_zeros(x, self.scale_factor, where="Upsample")
        self._cache = (y.shape, y.dtype)
        return y

    def backward(self, grad_out):
        """grad_out (the output's shape) -> the input's shape."""
        shape, dtype = self._cached(self._cache)
        grad_out = check_grad(grad_out, shape, dtype, "Upsample")
        if self.mode == "nearest":
            return R.upsample_nearest_backward(grad_out, self.scale_factor)
        return R.upsample_zeros_backward(grad_out, self.scale_factor)

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class Downsample(Module):
    """Down-sampling: keep every factor-th element of every spatial axis (the lectures' dSample).

    ``y[..., i] = x[..., i*f]``. A strided convolution is a stride-1 convolution followed by this.
    Its backward is up-sampling by zero insertion: the dropped elements get gradient 0.

    Args:
        factor (int or tuple): the factor f, one for every spatial axis or one per axis.

    Shape:
        - Input: ``(N, C, *S)``
        - Output: ``(N, C, *ceil(S/f))``

    Example:
        >>> down = nn.Downsample(2)
        >>> down(np.arange(5.0).reshape(1, 1, 5))
        array([[[0., 2., 4.]]])
        >>> down.backward(np.ones((1, 1, 3)))
        array([[[1., 0., 1., 0., 1.]]])
    """

    def __init__(self, factor):
        super().__init__()
        self.factor = _factor("Downsample", "factor", factor)
        self._cache = None

    def forward(self, x):
        _check_input(x, "Downsample")
        y = R.downsample(x, self.factor)
        self._cache = (x.shape[2:], y.shape, y.dtype)
        return y

    def backward(self, grad_out):
        """grad_out (the output's shape) -> the input's shape."""
        in_spatial, shape, dtype = self._cached(self._cache)
        grad_out = check_grad(grad_out, shape, dtype, "Downsample")
        return R.downsample_backward(grad_out, self.factor, in_spatial)

    def extra_repr(self):
        return f"factor={self.factor}"
