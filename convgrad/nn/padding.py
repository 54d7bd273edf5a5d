"""Padding layers as torch's: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad, 1-d, 2-d and 3-d.

`padding` is an int (every side) or a tuple ordered from the last axis inwards, as in torch:
(left, right) for 1-d, (left, right, top, bottom) for 2-d, (left, right, top, bottom, front,
back) for 3-d. Non-negative (torch's cropping by negative zero/constant padding is not
supported). Shape: (N, C, *S) or unbatched (C, *S) -> the same with each spatial size
S + lo + hi.
"""
from __future__ import annotations

from .._checks import check_float_array, check_grad, check_real, is_int
from ..functional.padding import from_torch_pads, pad, pad_backward
from .module import Module


def _pairs(padding, n_dims: int, where: str) -> tuple:
    """torch's padding argument -> ((lo, hi), ...) in axis order (first spatial axis first)."""
    if is_int(padding):
        flat = (int(padding),) * (2 * n_dims)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 * n_dims and all(is_int(p) for p in padding):
        flat = tuple(int(p) for p in padding)
    else:
        raise TypeError(f"{where}: padding must be an int or a tuple of {2 * n_dims} ints, got {padding!r}")
    if min(flat) < 0:
        raise ValueError(f"{where}: padding must be non-negative, got {padding!r}")
    return from_torch_pads(flat)


class _PadNd(Module):
    mode = "zeros"
    n_dims = 2

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.pads = _pairs(padding, self.n_dims, type(self).__name__)     # checked before it is kept
        self.padding = int(padding) if is_int(padding) else tuple(int(p) for p in padding)
        self.value = check_real(type(self).__name__, "value", value, finite=False)
        self._cache = None

    def forward(self, x):
        where = type(self).__name__
        check_float_array(x, where)
        if x.ndim not in (self.n_dims + 1, self.n_dims + 2):
            raise ValueError(f"{where}: expected input of rank {self.n_dims + 1} or {self.n_dims + 2} "
                             f"((C, *S) or (N, C, *S)), got shape {x.shape}")
        y = pad(x, self.pads, self.mode, where, self.value)
        self._cache = (x.shape, y.shape, x.dtype)
        return y

    def backward(self, grad_out):
        """grad_out of the output's shape -> the gradient of the input."""
        x_shape, y_shape, dtype = self._cached(self._cache)
        grad_out = check_grad(grad_out, y_shape, dtype, type(self).__name__)
        return pad_backward(grad_out, self.pads, self.mode, x_shape)

    def extra_repr(self):
        flat = tuple(p for pair in self.pads[::-1] for p in pair)
        return f"{flat}" + (f", value={self.value}" if self.mode == "constant" else "")


class ConstantPad1d(_PadNd):
    """1-D value padding of every sample's last 1 axis.

    Each padded axis grows by its two pads; the added elements are ``value``. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 2 ints (left, right),
            ordered from the last axis inwards as in torch; non-negative.
        value (float): the fill value.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``
        - Output: ``(N, C, L_out)`` or ``(C, L_out)``,
          ``L_out = L + left + right``

    Example:
        >>> pad = nn.ConstantPad1d(1, value=-1.0)
        >>> pad(np.array([[[1.0, 2.0]]]))
        array([[[-1.,  1.,  2., -1.]]])
    """
    mode, n_dims = "constant", 1


class ConstantPad2d(_PadNd):
    """2-D value padding of every sample's last 2 axes.

    Each padded axis grows by its two pads; the added elements are ``value``. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 4 ints (left, right, top, bottom),
            ordered from the last axis inwards as in torch; non-negative.
        value (float): the fill value.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``,
          ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ConstantPad2d((1, 2, 0, 1), value=0.5)
        >>> y = pad(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
        >>> y.shape
        (2, 3, 5, 8)
        >>> pad.backward(np.ones_like(y)).shape
        (2, 3, 4, 5)
    """
    mode, n_dims = "constant", 2


class ConstantPad3d(_PadNd):
    """3-D value padding of every sample's last 3 axes.

    Each padded axis grows by its two pads; the added elements are ``value``. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 6 ints (left, right, top, bottom, front, back),
            ordered from the last axis inwards as in torch; non-negative.
        value (float): the fill value.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` or ``(C, D_out, H_out, W_out)``,
          ``D_out = D + front + back``, ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ConstantPad3d(1, value=0.5)
        >>> y = pad(np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)))
        >>> y.shape
        (1, 2, 5, 6, 7)
        >>> pad.backward(np.ones_like(y)).shape
        (1, 2, 3, 4, 5)
    """
    mode, n_dims = "constant", 3


class _ZeroPadNd(_PadNd):
    mode = "zeros"

    def __init__(self, padding):
        super().__init__(padding)


class ZeroPad1d(_ZeroPadNd):
    """1-D zeros padding of every sample's last 1 axis.

    Each padded axis grows by its two pads; the added elements are 0. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 2 ints (left, right),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``
        - Output: ``(N, C, L_out)`` or ``(C, L_out)``,
          ``L_out = L + left + right``

    Example:
        >>> pad = nn.ZeroPad1d((1, 2))
        >>> pad(np.array([[[1.0, 2.0]]]))
        array([[[0., 1., 2., 0., 0.]]])
    """
    n_dims = 1


class ZeroPad2d(_ZeroPadNd):
    """2-D zeros padding of every sample's last 2 axes.

    Each padded axis grows by its two pads; the added elements are 0. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 4 ints (left, right, top, bottom),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``,
          ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ZeroPad2d((1, 2, 0, 1))
        >>> y = pad(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
        >>> y.shape
        (2, 3, 5, 8)
        >>> pad.backward(np.ones_like(y)).shape
        (2, 3, 4, 5)
    """
    n_dims = 2


class ZeroPad3d(_ZeroPadNd):
    """3-D zeros padding of every sample's last 3 axes.

    Each padded axis grows by its two pads; the added elements are 0. Its backward crops the
    gradient back to the input's extent.

    Args:
        padding (int or tuple): one int for every side, or 6 ints (left, right, top, bottom, front, back),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` or ``(C, D_out, H_out, W_out)``,
          ``D_out = D + front + back``, ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ZeroPad3d(1)
        >>> y = pad(np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)))
        >>> y.shape
        (1, 2, 5, 6, 7)
        >>> pad.backward(np.ones_like(y)).shape
        (1, 2, 3, 4, 5)
    """
    n_dims = 3


class _ModePadNd(_PadNd):
    def __init__(self, padding):
        super().__init__(padding)


class ReflectionPad1d(_ModePadNd):
    """1-D reflection padding of every sample's last 1 axis.

    Each padded axis grows by its two pads; mirrored at the edge without repeating it: ``[a b c d]``
    padded by 2 gives ``[c b a b c d c b]``; each pad must be smaller than its axis. Its backward
    adds the gradient of each mirrored copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 2 ints (left, right),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``
        - Output: ``(N, C, L_out)`` or ``(C, L_out)``,
          ``L_out = L + left + right``

    Example:
        >>> pad = nn.ReflectionPad1d(2)
        >>> pad(np.array([[[1.0, 2.0, 3.0, 4.0]]]))
        array([[[3., 2., 1., 2., 3., 4., 3., 2.]]])
    """
    mode, n_dims = "reflect", 1


class ReflectionPad2d(_ModePadNd):
    """2-D reflection padding of every sample's last 2 axes.

    Each padded axis grows by its two pads; mirrored at the edge without repeating it: ``[a b c d]``
    padded by 2 gives ``[c b a b c d c b]``; each pad must be smaller than its axis. Its backward
    adds the gradient of each mirrored copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 4 ints (left, right, top, bottom),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``,
          ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ReflectionPad2d((1, 2, 0, 1))
        >>> y = pad(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
        >>> y.shape
        (2, 3, 5, 8)
        >>> pad.backward(np.ones_like(y)).shape
        (2, 3, 4, 5)
    """
    mode, n_dims = "reflect", 2


class ReflectionPad3d(_ModePadNd):
    """3-D reflection padding of every sample's last 3 axes.

    Each padded axis grows by its two pads; mirrored at the edge without repeating it: ``[a b c d]``
    padded by 2 gives ``[c b a b c d c b]``; each pad must be smaller than its axis. Its backward
    adds the gradient of each mirrored copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 6 ints (left, right, top, bottom, front, back),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` or ``(C, D_out, H_out, W_out)``,
          ``D_out = D + front + back``, ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ReflectionPad3d(1)
        >>> y = pad(np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)))
        >>> y.shape
        (1, 2, 5, 6, 7)
        >>> pad.backward(np.ones_like(y)).shape
        (1, 2, 3, 4, 5)
    """
    mode, n_dims = "reflect", 3


class ReplicationPad1d(_ModePadNd):
    """1-D replication padding of every sample's last 1 axis.

    Each padded axis grows by its two pads; copies of the edge element: ``[a b c]`` padded by 2
    gives ``[a a a b c c c]``. Its backward adds the gradient of every copy into the edge element.

    Args:
        padding (int or tuple): one int for every side, or 2 ints (left, right),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``
        - Output: ``(N, C, L_out)`` or ``(C, L_out)``,
          ``L_out = L + left + right``

    Example:
        >>> pad = nn.ReplicationPad1d(2)
        >>> pad(np.array([[[1.0, 2.0, 3.0]]]))
        array([[[1., 1., 1., 2., 3., 3., 3.]]])
    """
    mode, n_dims = "replicate", 1


class ReplicationPad2d(_ModePadNd):
    """2-D replication padding of every sample's last 2 axes.

    Each padded axis grows by its two pads; copies of the edge element: ``[a b c]`` padded by 2
    gives ``[a a a b c c c]``. Its backward adds the gradient of every copy into the edge element.

    Args:
        padding (int or tuple): one int for every side, or 4 ints (left, right, top, bottom),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``,
          ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ReplicationPad2d((1, 2, 0, 1))
        >>> y = pad(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
        >>> y.shape
        (2, 3, 5, 8)
        >>> pad.backward(np.ones_like(y)).shape
        (2, 3, 4, 5)
    """
    mode, n_dims = "replicate", 2


class ReplicationPad3d(_ModePadNd):
    """3-D replication padding of every sample's last 3 axes.

    Each padded axis grows by its two pads; copies of the edge element: ``[a b c]`` padded by 2
    gives ``[a a a b c c c]``. Its backward adds the gradient of every copy into the edge element.

    Args:
        padding (int or tuple): one int for every side, or 6 ints (left, right, top, bottom, front, back),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` or ``(C, D_out, H_out, W_out)``,
          ``D_out = D + front + back``, ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.ReplicationPad3d(1)
        >>> y = pad(np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)))
        >>> y.shape
        (1, 2, 5, 6, 7)
        >>> pad.backward(np.ones_like(y)).shape
        (1, 2, 3, 4, 5)
    """
    mode, n_dims = "replicate", 3


class CircularPad1d(_ModePadNd):
    """1-D circular padding of every sample's last 1 axis.

    Each padded axis grows by its two pads; wrapped around from the other end: ``[a b c]`` padded by
    1 gives ``[c a b c a]``; each pad at most its axis. Its backward adds the gradient of each
    wrapped copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 2 ints (left, right),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``
        - Output: ``(N, C, L_out)`` or ``(C, L_out)``,
          ``L_out = L + left + right``

    Example:
        >>> pad = nn.CircularPad1d(1)
        >>> pad(np.array([[[1.0, 2.0, 3.0]]]))
        array([[[3., 1., 2., 3., 1.]]])
    """
    mode, n_dims = "circular", 1


class CircularPad2d(_ModePadNd):
    """2-D circular padding of every sample's last 2 axes.

    Each padded axis grows by its two pads; wrapped around from the other end: ``[a b c]`` padded by
    1 gives ``[c a b c a]``; each pad at most its axis. Its backward adds the gradient of each
    wrapped copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 4 ints (left, right, top, bottom),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` or ``(C, H_out, W_out)``,
          ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.CircularPad2d((1, 2, 0, 1))
        >>> y = pad(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
        >>> y.shape
        (2, 3, 5, 8)
        >>> pad.backward(np.ones_like(y)).shape
        (2, 3, 4, 5)
    """
    mode, n_dims = "circular", 2


class CircularPad3d(_ModePadNd):
    """3-D circular padding of every sample's last 3 axes.

    Each padded axis grows by its two pads; wrapped around from the other end: ``[a b c]`` padded by
    1 gives ``[c a b c a]``; each pad at most its axis. Its backward adds the gradient of each
    wrapped copy into the element it copies.

    Args:
        padding (int or tuple): one int for every side, or 6 ints (left, right, top, bottom, front, back),
            ordered from the last axis inwards as in torch; non-negative.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` or ``(C, D_out, H_out, W_out)``,
          ``D_out = D + front + back``, ``H_out = H + top + bottom``, ``W_out = W + left + right``

    Example:
        >>> pad = nn.CircularPad3d(1)
        >>> y = pad(np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)))
        >>> y.shape
        (1, 2, 5, 6, 7)
        >>> pad.backward(np.ones_like(y)).shape
        (1, 2, 3, 4, 5)
    """
    mode, n_dims = "circular", 3
