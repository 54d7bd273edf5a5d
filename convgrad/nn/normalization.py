"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm (torch's arguments and names).

Parameter and buffer names and order follow torch (weight, bias, running_mean, running_var,
num_batches_tracked), so a torch state_dict converted to NumPy loads 1:1. The math, and
the backward through the batch statistics, is in convgrad.functional.normalization.

Like Linear, these layers keep a reference to their input (not a copy) for backward: do
not modify an input in place between a layer's forward and its backward.
"""
from __future__ import annotations

import numpy as np

from .._dtype import get_default_dtype
from .._checks import check_float_array
from ..functional import normalization as F
from .module import Module, Parameter


def _positive_int(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d/3d; subclasses set the accepted input ranks."""
    ranks: tuple = ()
    layout: str = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        where = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", where)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{where}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = np.dtype(dtype or get_default_dtype())
        c = self.num_features
        self.weight = Parameter(np.ones(c, dt)) if affine else None
        self.bias = Parameter(np.zeros(c, dt)) if affine else None
        stats = track_running_stats
        self.register_buffer("running_mean", np.zeros(c, dt) if stats else None)
        self.register_buffer("running_var", np.ones(c, dt) if stats else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if stats else None)
        self._cache = None
        self._workspace = {}

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _check_input(self, x) -> None:
        where = type(self).__name__
        check_float_array(x, where)
        if x.ndim not in self.ranks:
            raise ValueError(f"{where}: expected input of shape {self.layout}, got shape {x.shape} (rank {x.ndim})")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{where}: expected input with {self.num_features} channels (dim 1), got shape {x.shape}")

    def forward(self, x):
        """x (N, C, *spatial) -> y, same shape and dtype. Training: batch statistics (and the
        running estimates updated); eval: running statistics, unless not tracked."""
        self._check_input(x)
        update = self.training and self.track_running_stats
        batch_stats = self.training or self.running_mean is None
        factor = 0.0
        if update:
            # momentum=None: cumulative moving average, the k-th batch weighted 1/k
            factor = 1.0 / float(self.num_batches_tracked + 1) if self.momentum is None else self.momentum
        y, self._cache = F.batch_norm_forward(
            x, self.running_mean, self.running_var,
            None if self.weight is None else self.weight.data, None if self.bias is None else self.bias.data,
            batch_stats, factor, self.eps, workspace=self._workspace,
            reduce=self._batch_sum() if batch_stats else None)
        if update:
            self.num_batches_tracked += 1
        return y

    def _batch_sum(self):
        """A function summing a statistics vector over every process holding part of the batch
        (SyncBatchNorm), or None: the statistics are this batch's alone."""
        return None

    def backward(self, grad_out):
        """grad_out of y's shape -> grad_in; weight/bias gradients are accumulated."""
        dx, dw, db = F.batch_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """x (N, C) or (N, C, L) -> same shape; statistics per channel over N (and L)."""
    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """x (N, C, H, W) -> same shape; statistics per channel over N, H, W."""
    ranks = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """x (N, C, D, H, W) -> same shape; statistics per channel over N, D, H, W."""
    ranks = (5,)
    layout = "(N, C, D, H, W)"


class LayerNorm(Module):
    """x (*, *normalized_shape) -> same shape; statistics per sample over normalized_shape.
    weight (ones) and bias (zeros) have shape normalized_shape."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        self.normalized_shape = F.as_normalized_shape(normalized_shape, "LayerNorm")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dt = np.dtype(dtype or get_default_dtype())
        self.weight = Parameter(np.ones(self.normalized_shape, dt)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dt)) if elementwise_affine and bias else None
        self._cache = None
        self._workspace = {}

    def forward(self, x):
        y, self._cache = F.layer_norm_forward(x, self.normalized_shape,
                                              None if self.weight is None else self.weight.data,
                                              None if self.bias is None else self.bias.data, self.eps,
                                              workspace=self._workspace)
        return y

    def backward(self, grad_out):
        dx, dw, db = F.layer_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        if self.weight is not None:
            self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """x (N, C, *spatial) -> same shape; statistics per sample and group of C/num_groups
    channels. weight (ones) and bias (zeros) are per channel, (C,)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be divisible by num_groups, "
                             f"got num_channels={num_channels}, num_groups={num_groups}")
        self.eps, self.affine = float(eps), bool(affine)
        dt = np.dtype(dtype or get_default_dtype())
        self.weight = Parameter(np.ones(num_channels, dt)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dt)) if affine else None
        self._cache = None
        self._workspace = {}

    def forward(self, x):
        check_float_array(x, "GroupNorm")
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input of shape (N, {self.num_channels}, *spatial), "
                             f"got shape {x.shape}")
        y, self._cache = F.group_norm_forward(x, self.num_groups,
                                              None if self.weight is None else self.weight.data,
                                              None if self.bias is None else self.bias.data, self.eps,
                                              workspace=self._workspace)
        return y

    def backward(self, grad_out):
        dx, dw, db = F.group_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
