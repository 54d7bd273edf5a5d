"""Upsample and Downsample layers (1-D, 2-D, 3-D by the input's rank)."""
from __future__ import annotations

from ..functional import resample as R
from .module import Module


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
        if mode not in ("nearest", "zeros"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'zeros', got {mode!r}")
        self.scale_factor, self.mode = scale_factor, mode
        self._cache = None

    def forward(self, x):
        self._cache = True
        if self.mode == "nearest":
            return R.upsample_nearest(x, self.scale_factor)
        return R.upsample_zeros(x, self.scale_factor)

    def backward(self, grad_out):
        self._cached(self._cache)
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
        self.factor = factor
        self._cache = None

    def forward(self, x):
        y = R.downsample(x, self.factor)
        self._cache = x.shape[2:]
        return y

    def backward(self, grad_out):
        return R.downsample_backward(grad_out, self.factor, self._cached(self._cache))

    def extra_repr(self):
        return f"factor={self.factor}"
