"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm (torch's arguments and names).

Parameter and buffer names and order follow torch (weight, bias, running_mean, running_var,
num_batches_tracked), so a torch state_dict converted to NumPy loads 1:1. The math, and
the backward through the batch statistics, is in convgrad.functional.normalization.

The forward keeps its own copy of the input for backward (one pass; see "Caches and the
caller's arrays" in docs/architecture.md), so writing into the input afterwards cannot
change the gradients. Arguments are checked at construction (type and range).
"""
from __future__ import annotations

import numpy as np

from .._dtype import get_default_dtype
from .._checks import check_bool, check_float_array, check_float_dtype, check_int, check_real
from ..autograd.grad_mode import is_grad_enabled
from ..batch_parts import current_part
from ..functional import normalization as F
from .module import Module, Parameter


def _eps(where: str, eps) -> float:
    """eps >= 0 (torch does not check, and eps < 0 gives NaN for a constant channel)."""
    return check_real(where, "eps", eps, minimum=0.0)


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d/3d; subclasses set the accepted input ranks."""
    ranks: tuple = ()
    layout: str = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__()
        where = type(self).__name__
        self.num_features = check_int(where, "num_features", num_features, minimum=1)
        self.eps = _eps(where, eps)
        self.momentum = None if momentum is None else check_real(where, "momentum", momentum,
                                                                  minimum=0.0, maximum=1.0)
        self.affine = check_bool(where, "affine", affine)
        self.track_running_stats = check_bool(where, "track_running_stats", track_running_stats)
        dt = check_float_dtype(where, dtype) or get_default_dtype()
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
            batch_stats, factor, self.eps, workspace=self._workspace, where=type(self).__name__,
            reduce=self._statistics_sum() if batch_stats else None, keep=is_grad_enabled())
        if update:
            self.num_batches_tracked += 1
        return y

    def _batch_sum(self):
        """A function summing a statistics vector over every process holding part of the batch
        (SyncBatchNorm), or None: the statistics are this process's batch's alone."""
        return None

    def _statistics_sum(self):
        """A function summing a statistics vector over the whole batch: over the threads
        computing parts of it (DataParallel, batch_parts.py), then over the processes
        (_batch_sum); None when this call sees the whole batch."""
        part, over_processes = current_part(), self._batch_sum()
        if part is None:
            return over_processes
        if over_processes is None:
            return part.sum

        def over_threads_and_processes(vector):
            this_process = part.sum(vector)
            return part.from_first(lambda: over_processes(this_process))
        return over_threads_and_processes

    def backward(self, grad_out):
        """grad_out of y's shape -> grad_in; weight/bias gradients are accumulated."""
        dx, dw, db = F.batch_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over a batch of vectors or sequences: each channel standardised with its batch statistics.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and biased variance per channel over
    N (and L). In training the batch's statistics are used and the running estimates updated,
    ``running = (1 - momentum) * running + momentum * batch_statistic`` (the variance unbiased,
    m/(m-1)); in eval mode (``model.eval()``) the running estimates are used. The backward pass
    goes through the batch statistics: with ``m`` the elements per channel and ``xhat`` the
    standardised input, ``dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))``.

    Args:
        num_features (int): C, the channels.
        eps (float): added to the variance. Default: 1e-5.
        momentum (float or None): weight of the new batch in the running estimates; None is the
            cumulative average. Default: 0.1.
        affine (bool): learn weight and bias. Default: True.
        track_running_stats (bool): keep running estimates (else batch statistics also in eval).
            Default: True.
        dtype: the parameters' and buffers' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``
        - Output: the input's shape.

    Attributes:
        weight (Parameter or None): ``(C,)``, ones.
        bias (Parameter or None): ``(C,)``, zeros.
        running_mean, running_var: buffers ``(C,)`` (zeros, ones), in ``state_dict`` as in torch, with
            ``num_batches_tracked``.

    Example:
        >>> bn = nn.BatchNorm1d(3)
        >>> x = np.random.default_rng(0).normal(5.0, 2.0, (64, 3)).astype(np.float32)
        >>> y = bn(x)
        >>> y.shape, bool(np.allclose(y.mean(axis=0), 0.0, atol=1e-5)), bool(np.allclose(y.std(axis=0), 1.0, atol=1e-3))
        ((64, 3), True, True)
    """
    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over a batch of images: each channel standardised with its batch statistics.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and biased variance per channel over
    N, H and W. In training the batch's statistics are used and the running estimates updated,
    ``running = (1 - momentum) * running + momentum * batch_statistic`` (the variance unbiased,
    m/(m-1)); in eval mode (``model.eval()``) the running estimates are used. The backward pass
    goes through the batch statistics: with ``m`` the elements per channel and ``xhat`` the
    standardised input, ``dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))``.

    Args:
        num_features (int): C, the channels.
        eps (float): added to the variance. Default: 1e-5.
        momentum (float or None): weight of the new batch in the running estimates; None is the
            cumulative average. Default: 0.1.
        affine (bool): learn weight and bias. Default: True.
        track_running_stats (bool): keep running estimates (else batch statistics also in eval).
            Default: True.
        dtype: the parameters' and buffers' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape.

    Attributes:
        weight (Parameter or None): ``(C,)``, ones.
        bias (Parameter or None): ``(C,)``, zeros.
        running_mean, running_var: buffers ``(C,)`` (zeros, ones), in ``state_dict`` as in torch, with
            ``num_batches_tracked``.

    Example:
        >>> bn = nn.BatchNorm2d(16)
        >>> x = np.random.default_rng(0).normal(5.0, 2.0, (8, 16, 10, 10)).astype(np.float32)
        >>> y = bn(x)
        >>> y.shape
        (8, 16, 10, 10)
        >>> bn.running_mean.round(1)[:3]           # one step of momentum 0.1 towards the batch's mean 5
        array([0.5, 0.5, 0.5], dtype=float32)
        >>> bn.backward(np.ones_like(y)).shape
        (8, 16, 10, 10)
    """
    ranks = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over a batch of volumes: each channel standardised with its batch statistics.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and biased variance per channel over
    N, D, H and W. In training the batch's statistics are used and the running estimates updated,
    ``running = (1 - momentum) * running + momentum * batch_statistic`` (the variance unbiased,
    m/(m-1)); in eval mode (``model.eval()``) the running estimates are used. The backward pass
    goes through the batch statistics: with ``m`` the elements per channel and ``xhat`` the
    standardised input, ``dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))``.

    Args:
        num_features (int): C, the channels.
        eps (float): added to the variance. Default: 1e-5.
        momentum (float or None): weight of the new batch in the running estimates; None is the
            cumulative average. Default: 0.1.
        affine (bool): learn weight and bias. Default: True.
        track_running_stats (bool): keep running estimates (else batch statistics also in eval).
            Default: True.
        dtype: the parameters' and buffers' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: the input's shape.

    Attributes:
        weight (Parameter or None): ``(C,)``, ones.
        bias (Parameter or None): ``(C,)``, zeros.
        running_mean, running_var: buffers ``(C,)`` (zeros, ones), in ``state_dict`` as in torch, with
            ``num_batches_tracked``.

    Example:
        >>> bn = nn.BatchNorm3d(4)
        >>> bn(np.zeros((2, 4, 3, 5, 5), dtype=np.float32)).shape
        (2, 4, 3, 5, 5)
    """
    ranks = (5,)
    layout = "(N, C, D, H, W)"


class LayerNorm(Module):
    """Layer normalisation: each sample standardised over its last axes (normalized_shape).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and biased variance per sample over the
    trailing ``len(normalized_shape)`` axes; the same in training and eval.

    Args:
        normalized_shape (int or tuple): the trailing axes' sizes.
        eps (float): added to the variance. Default: 1e-5.
        elementwise_affine (bool): learn weight and bias. Default: True.
        bias (bool): learn the bias (with elementwise_affine). Default: True.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: the input's shape.

    Attributes:
        weight (Parameter or None): ``normalized_shape``, ones.
        bias (Parameter or None): ``normalized_shape``, zeros.

    Example:
        >>> ln = nn.LayerNorm(10)
        >>> y = ln(np.random.default_rng(0).normal(3.0, 2.0, (4, 10)).astype(np.float32))
        >>> bool(np.allclose(y.mean(axis=-1), 0.0, atol=1e-5)), y.shape
        (True, (4, 10))
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        self.normalized_shape = F.as_normalized_shape(normalized_shape, "LayerNorm")
        self.eps = _eps("LayerNorm", eps)
        self.elementwise_affine = check_bool("LayerNorm", "elementwise_affine", elementwise_affine)
        bias = check_bool("LayerNorm", "bias", bias)
        dt = check_float_dtype("LayerNorm", dtype) or get_default_dtype()
        self.weight = Parameter(np.ones(self.normalized_shape, dt)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dt)) if elementwise_affine and bias else None
        self._cache = None
        self._workspace = {}

    def forward(self, x):
        y, self._cache = F.layer_norm_forward(x, self.normalized_shape,
                                              None if self.weight is None else self.weight.data,
                                              None if self.bias is None else self.bias.data, self.eps,
                                              workspace=self._workspace, where="LayerNorm",
                                              keep=is_grad_enabled())
        return y

    def backward(self, grad_out):
        dx, dw, db = F.layer_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        if self.weight is not None:
            self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalisation: each sample's channels standardised in groups of C/num_groups.

    ``y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]``, mean and biased variance per sample
    and group over the group's channels and all spatial positions; independent of the batch size,
    the same in training and eval. num_groups = 1 normalises like LayerNorm over (C, *), num_groups = C
    is instance normalisation.

    Args:
        num_groups (int): G; must divide num_channels.
        num_channels (int): C.
        eps (float): added to the variance. Default: 1e-5.
        affine (bool): learn a per-channel weight and bias. Default: True.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C, *)``
        - Output: the input's shape.

    Attributes:
        weight (Parameter or None): ``(C,)``, ones.
        bias (Parameter or None): ``(C,)``, zeros.

    Example:
        >>> gn = nn.GroupNorm(num_groups=2, num_channels=6)
        >>> y = gn(np.random.default_rng(0).normal(1.0, 3.0, (2, 6, 4, 4)).astype(np.float32))
        >>> bool(np.allclose(y.reshape(2, 2, -1).mean(axis=-1), 0.0, atol=1e-5))
        True
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        self.num_groups = check_int("GroupNorm", "num_groups", num_groups, minimum=1)
        self.num_channels = check_int("GroupNorm", "num_channels", num_channels, minimum=1)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be divisible by num_groups, "
                             f"got num_channels={num_channels}, num_groups={num_groups}")
        self.eps = _eps("GroupNorm", eps)
        self.affine = check_bool("GroupNorm", "affine", affine)
        dt = check_float_dtype("GroupNorm", dtype) or get_default_dtype()
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
                                              workspace=self._workspace, where="GroupNorm",
                                              keep=is_grad_enabled())
        return y

    def backward(self, grad_out):
        dx, dw, db = F.group_norm_backward(grad_out, self._cached(self._cache), workspace=self._workspace)
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
