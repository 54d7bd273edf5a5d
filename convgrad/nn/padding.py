"""Padding layers as torch's: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad, 1-d, 2-d and 3-d.

`padding` is an int (every side) or a tuple ordered from the last axis inwards, as in torch:
(left, right) for 1-d, (left, right, top, bottom) for 2-d, (left, right, top, bottom, front,
back) for 3-d. Non-negative (torch's cropping by negative zero/constant padding is not
supported). Shape: (N, C, *S) or unbatched (C, *S) -> the same with each spatial size
S + lo + hi.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_float_array
from ..functional.padding import pad, pad_backward
from .module import Module


def _pairs(padding, n_dims: int, where: str) -> tuple:
    """torch's padding argument -> ((lo, hi), ...) in axis order (first spatial axis first)."""
    if isinstance(padding, (numbers.Integral, np.integer)) and not isinstance(padding, bool):
        flat = (int(padding),) * (2 * n_dims)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 * n_dims and all(
            isinstance(p, (numbers.Integral, np.integer)) and not isinstance(p, bool) for p in padding):
        flat = tuple(int(p) for p in padding)
    else:
        raise TypeError(f"{where}: padding must be an int or a tuple of {2 * n_dims} ints, got {padding!r}")
    if min(flat) < 0:
        raise ValueError(f"{where}: padding must be non-negative, got {padding!r}")
    return tuple((flat[2 * i], flat[2 * i + 1]) for i in range(n_dims))[::-1]


class _PadNd(Module):
    mode = "zeros"
    n_dims = 2

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.padding = padding if isinstance(padding, int) else tuple(padding)
        self.pads = _pairs(padding, self.n_dims, type(self).__name__)
        self.value = float(value)
        self._cache = None

    def forward(self, x):
        where = type(self).__name__
        check_float_array(x, where)
        if x.ndim not in (self.n_dims + 1, self.n_dims + 2):
            raise ValueError(f"{where}: expected input of rank {self.n_dims + 1} or {self.n_dims + 2} "
                             f"((C, *S) or (N, C, *S)), got shape {x.shape}")
        y = pad(x, self.pads, self.mode, where, self.value)
        self._cache = x.shape
        return y

    def backward(self, grad_out):
        return pad_backward(grad_out, self.pads, self.mode, self._cached(self._cache))

    def extra_repr(self):
        flat = tuple(p for pair in self.pads[::-1] for p in pair)
        return f"{flat}" + (f", value={self.value}" if self.mode == "constant" else "")


class ConstantPad1d(_PadNd):
    """Pads with `value`: (N, C, L) -> (N, C, L + left + right)."""
    mode, n_dims = "constant", 1


class ConstantPad2d(_PadNd):
    """Pads with `value`: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    mode, n_dims = "constant", 2


class ConstantPad3d(_PadNd):
    """Pads with `value`: (N, C, D, H, W) -> (N, C, D + front + back, H + top + bottom, W + left + right)."""
    mode, n_dims = "constant", 3


class _ZeroPadNd(_PadNd):
    mode = "zeros"

    def __init__(self, padding):
        super().__init__(padding)


class ZeroPad1d(_ZeroPadNd):
    """Pads with zeros: (N, C, L) -> (N, C, L + left + right)."""
    n_dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pads with zeros: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    n_dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pads with zeros: (N, C, D, H, W) -> (N, C, D + front + back, H + top + bottom, W + left + right)."""
    n_dims = 3


class _ModePadNd(_PadNd):
    def __init__(self, padding):
        super().__init__(padding)


class ReflectionPad1d(_ModePadNd):
    """Mirror without repeating the edge (each pad < the size): (N, C, L) -> (N, C, L + left + right)."""
    mode, n_dims = "reflect", 1


class ReflectionPad2d(_ModePadNd):
    """Mirror without repeating the edge: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    mode, n_dims = "reflect", 2


class ReflectionPad3d(_ModePadNd):
    """Mirror without repeating the edge: (N, C, D, H, W) -> each spatial size + its two pads."""
    mode, n_dims = "reflect", 3


class ReplicationPad1d(_ModePadNd):
    """Repeat the edge value: (N, C, L) -> (N, C, L + left + right)."""
    mode, n_dims = "replicate", 1


class ReplicationPad2d(_ModePadNd):
    """Repeat the edge value: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    mode, n_dims = "replicate", 2


class ReplicationPad3d(_ModePadNd):
    """Repeat the edge value: (N, C, D, H, W) -> each spatial size + its two pads."""
    mode, n_dims = "replicate", 3


class CircularPad1d(_ModePadNd):
    """Wrap around (each pad <= the size): (N, C, L) -> (N, C, L + left + right)."""
    mode, n_dims = "circular", 1


class CircularPad2d(_ModePadNd):
    """Wrap around: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    mode, n_dims = "circular", 2


class CircularPad3d(_ModePadNd):
    """Wrap around: (N, C, D, H, W) -> each spatial size + its two pads."""
    mode, n_dims = "circular", 3
