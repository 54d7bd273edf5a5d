"""Upsample and Downsample layers (1-D, 2-D, 3-D by the input's rank)."""
from __future__ import annotations

from ..functional import resample as R
from .module import Module


class Upsample(Module):
    """Up-sampling by an integer factor: mode 'nearest' repeats elements,
    (N, C, *S) -> (N, C, *(S*f)); mode 'zeros' inserts f-1 zeros between elements (the
    lectures' uSample), (N, C, *S) -> (N, C, *((S-1)*f + 1))."""

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
    """Keep every factor-th element (the lectures' dSample): (N, C, *S) -> (N, C, *ceil(S/f)).
    Its backward is up-sampling by zero insertion."""

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
