"""Pooling layers with torch's names and arguments: MaxPoolNd, AvgPoolNd, AdaptiveAvgPoolNd,
AdaptiveMaxPoolNd and MaxUnpoolNd for N = 1, 2, 3. No parameters; forward caches what the
functional backward needs (the arg-max taps, the divisors, the indices)."""
from __future__ import annotations

from .._checks import as_tuple
from ..functional import pooling as F
from .module import Module


class _MaxPoolNd(Module):
    n_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        F.pool_args(kernel_size, stride, padding, dilation, self.n_dims, type(self).__name__)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)
        self._cache = None
        self._workspace = {}

    def forward(self, x):
        """x (N, C, *S) -> y (N, C, *out), or (y, indices) with return_indices."""
        y, self._cache = F.max_pool_forward(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                            self.ceil_mode, n_dims=self.n_dims, where=type(self).__name__,
                                            workspace=self._workspace)
        return (y, F.max_pool_indices(self._cache)) if self.return_indices else y

    def backward(self, grad_out):
        """grad_out (N, C, *out) -> (N, C, *S): routed to each window's arg-max (after
        forward_relu: the gradient for the ReLU's input)."""
        return F.max_pool_backward(grad_out, self._cached(self._cache))

    def fuses_relu(self) -> bool:
        """Whether a ReLU in front of this layer can run inside it (forward_relu): the plain
        2x2, stride-2 pooling without indices, where relu(max_pool(x)) == max_pool(relu(x))."""
        if self.n_dims != 2 or self.return_indices or self.ceil_mode:
            return False
        args = F.pool_args(self.kernel_size, self.stride, self.padding, self.dilation, 2, type(self).__name__)
        return args == ((2, 2), (2, 2), (0, 0), (1, 1))

    def forward_relu(self, x):
        """max_pool(relu(x)) in one step (x (N, C, H, W) -> (N, C, H/2, W/2)), computed as
        relu(max_pool(x)) on a quarter of the elements; backward then returns the gradient
        for x, the ReLU's input. Sequential uses it for a ReLU followed by this layer."""
        y, self._cache = F.max_pool_forward(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                            self.ceil_mode, n_dims=self.n_dims, where=type(self).__name__,
                                            workspace=self._workspace, relu=True)
        return y

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """(N, C, L) -> (N, C, L_out), L_out = floor((L + 2p - d(k-1) - 1)/s) + 1 (ceil with ceil_mode)."""
    n_dims = 1


class MaxPool2d(_MaxPoolNd):
    """(N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2p - d(k-1) - 1)/s) + 1."""
    n_dims = 2


class MaxPool3d(_MaxPoolNd):
    """(N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    n_dims = 3


class _AvgPoolNd(Module):
    n_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        name = type(self).__name__
        F.pool_args(kernel_size, stride, padding, 1, self.n_dims, name)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = F.check_divisor_override(divisor_override, name)
        self._cache = None
        self._workspace = {}

    def forward(self, x):
        """x (N, C, *S) -> (N, C, *out): window sums / divisor."""
        y, self._cache = F.avg_pool_forward(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                            self.count_include_pad, self.divisor_override,
                                            n_dims=self.n_dims, where=type(self).__name__,
                                            workspace=self._workspace)
        return y

    def backward(self, grad_out):
        """grad_out (N, C, *out) -> (N, C, *S): 1/divisor of each window's gradient to each of its inputs."""
        return F.avg_pool_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """(N, C, L) -> (N, C, L_out), L_out = floor((L + 2p - k)/s) + 1 (ceil with ceil_mode)."""
    n_dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """(N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2p - k)/s) + 1."""
    n_dims = 2


class AvgPool3d(_AvgPoolNd):
    """(N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    n_dims = 3


class _AdaptiveAvgPoolNd(Module):
    n_dims = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size
        self._cache = None

    def forward(self, x):
        """x (N, C, *S) -> (N, C, *output_size); window i spans floor(i*S/out) .. ceil((i+1)*S/out)."""
        y, self._cache = F.adaptive_avg_pool_forward(x, self.output_size, n_dims=self.n_dims,
                                                     where=type(self).__name__)
        return y

    def backward(self, grad_out):
        return F.adaptive_avg_pool_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """(N, C, L) -> (N, C, output_size)."""
    n_dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """(N, C, H, W) -> (N, C, *output_size); output_size 1 is global average pooling."""
    n_dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """(N, C, D, H, W) -> (N, C, *output_size)."""
    n_dims = 3


class _AdaptiveMaxPoolNd(Module):
    n_dims = 2

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, bool(return_indices)
        self._cache = None

    def forward(self, x):
        """x (N, C, *S) -> y (N, C, *output_size), or (y, indices) with return_indices."""
        y, self._cache = F.adaptive_max_pool_forward(x, self.output_size, n_dims=self.n_dims,
                                                     where=type(self).__name__)
        return (y, F.max_pool_indices(self._cache)) if self.return_indices else y

    def backward(self, grad_out):
        return F.adaptive_max_pool_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """(N, C, L) -> (N, C, output_size)."""
    n_dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """(N, C, H, W) -> (N, C, *output_size); output_size 1 is global max pooling."""
    n_dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """(N, C, D, H, W) -> (N, C, *output_size)."""
    n_dims = 3


class _MaxUnpoolNd(Module):
    n_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        F.pool_args(kernel_size, stride, 0, 1, self.n_dims, type(self).__name__)
        as_tuple(padding, self.n_dims, "padding", type(self).__name__, minimum=0)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self._cache = None

    def forward(self, x, indices, output_size=None):
        """x, indices (N, C, *S) (from MaxPoolNd(return_indices=True)) -> (N, C, *out), zeros except
        at the indices; out = (S - 1)*s - 2p + k unless output_size is given."""
        y, self._cache = F.max_unpool_forward(x, indices, self.kernel_size, self.stride, self.padding, output_size,
                                              n_dims=self.n_dims, where=type(self).__name__)
        return y

    def backward(self, grad_out):
        """grad_out (N, C, *out) -> (N, C, *S): grad_out read back at the indices."""
        return F.max_unpool_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """(N, C, L) -> (N, C, L_out)."""
    n_dims = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """(N, C, H, W) -> (N, C, H_out, W_out), H_out = (H - 1)*s - 2p + k."""
    n_dims = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """(N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    n_dims = 3
