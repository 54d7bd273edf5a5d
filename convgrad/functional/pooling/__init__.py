"""Pooling: max, average, adaptive and max-unpooling, each a forward and its backward,
one engine a file, with torch's arguments, output sizes, tie and NaN rules.

    geometry.py   arguments, output sizes, checks          taps.py   per-axis window taps
    max.py        max pooling                              avg.py    average pooling
    adaptive.py   adaptive average and max pooling         unpool.py max unpooling

Every *_forward returns (y, cache); every *_backward takes (dy, cache) -> dx. The functions
below are torch.nn.functional's (y only)."""
from ..._checks import check_bool
from .adaptive import (AdaptiveAvgPoolCache, AdaptiveMaxPoolCache, adaptive_avg_pool_backward,  # noqa: F401
                       adaptive_avg_pool_forward, adaptive_max_pool_backward, adaptive_max_pool_forward,
                       adaptive_output_size, adaptive_windows, check_output_size)
from .avg import (AvgPoolCache, avg_pool_backward, avg_pool_divisor, avg_pool_forward,  # noqa: F401
                  check_divisor_override)
from .geometry import PoolGeometry, check_pool_input, pool_args, pool_geometry, pool_out_size  # noqa: F401
from .max import MaxPoolCache, max_pool_backward, max_pool_forward, max_pool_indices  # noqa: F401
from .unpool import MaxUnpoolCache, max_unpool_backward, max_unpool_forward, unpool_output_size  # noqa: F401


def _max_pool(x, n, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return_indices = check_bool(f"max_pool{n}d", "return_indices", return_indices)
    y, cache = max_pool_forward(x, kernel_size, stride, padding, dilation, ceil_mode, n_dims=n)
    return (y, max_pool_indices(cache)) if return_indices else y


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, L) -> (N, C, L_out) [, indices]."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, H, W) -> (N, C, H_out, W_out) [, indices]."""
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out) [, indices]."""
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """x (N, C, L) -> (N, C, L_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, n_dims=1)[0]


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """x (N, C, H, W) -> (N, C, H_out, W_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            n_dims=2)[0]


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return avg_pool_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            n_dims=3)[0]


def adaptive_avg_pool1d(x, output_size):
    """x (N, C, L) -> (N, C, output_size)."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=1)[0]


def adaptive_avg_pool2d(x, output_size):
    """x (N, C, H, W) -> (N, C, *output_size); None entries keep the input size."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=2)[0]


def adaptive_avg_pool3d(x, output_size):
    """x (N, C, D, H, W) -> (N, C, *output_size); None entries keep the input size."""
    return adaptive_avg_pool_forward(x, output_size, n_dims=3)[0]


def _adaptive_max(x, n, output_size, return_indices):
    return_indices = check_bool(f"adaptive_max_pool{n}d", "return_indices", return_indices)
    y, cache = adaptive_max_pool_forward(x, output_size, n_dims=n)
    return (y, max_pool_indices(cache)) if return_indices else y


def adaptive_max_pool1d(x, output_size, return_indices=False):
    """x (N, C, L) -> (N, C, output_size) [, indices]."""
    return _adaptive_max(x, 1, output_size, return_indices)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """x (N, C, H, W) -> (N, C, *output_size) [, indices]."""
    return _adaptive_max(x, 2, output_size, return_indices)


def adaptive_max_pool3d(x, output_size, return_indices=False):
    """x (N, C, D, H, W) -> (N, C, *output_size) [, indices]."""
    return _adaptive_max(x, 3, output_size, return_indices)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, L) -> (N, C, L_out), L_out = (L-1)*s - 2p + k unless output_size is given."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=1)[0]


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, H, W) -> (N, C, H_out, W_out)."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=2)[0]


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return max_unpool_forward(x, indices, kernel_size, stride, padding, output_size, n_dims=3)[0]
