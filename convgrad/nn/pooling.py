"""Pooling layers with torch's names and arguments: MaxPoolNd, AvgPoolNd, AdaptiveAvgPoolNd,
AdaptiveMaxPoolNd and MaxUnpoolNd for N = 1, 2, 3. No parameters; forward caches what the
functional backward needs (the arg-max taps, the divisors, the indices)."""
from __future__ import annotations

from .._checks import as_tuple, check_bool
from ..functional import pooling as F
from .activation import ReLU
from .module import Module


class _MaxPoolNd(Module):
    n_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        name = type(self).__name__
        F.pool_args(kernel_size, stride, padding, dilation, self.n_dims, name)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices = check_bool(name, "return_indices", return_indices)
        self.ceil_mode = check_bool(name, "ceil_mode", ceil_mode)
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

    def absorbs(self, previous: Module) -> bool:
        """Whether `previous`, the module before this one in a Sequential, can run inside this
        one's forward (forward_relu): a plain nn.ReLU, when fuses_relu(). Lets Sequential
        fuse without importing the layer classes."""
        return type(previous) is ReLU and type(self) is MaxPool2d and self.fuses_relu()

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
    """1-D max pooling: the largest value of each window.

    ``y[n, c, p] = max_k xpad[n, c, p*stride + k*dilation]`` over the kernel's offsets ``k`` (``xpad``:
    padded with -inf). The backward pass routes each output's gradient to the position of its
    window's maximum (the first one on ties, as torch) and adds where windows overlap.

    Args:
        kernel_size (int or tuple): the window k.
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): -inf added on each side, at most half the kernel. Default: 0.
        dilation (int or tuple): spacing between the window's taps. Default: 1.
        return_indices (bool): forward also returns the flat spatial index of each maximum (for
            MaxUnpool1d). Default: False.
        ceil_mode (bool): round the output size up instead of down. Default: False.

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, L_out)``, ``L_out = floor((L + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.MaxPool1d(2)
        >>> pool(np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]]))
        array([[[3., 2.]]])
        >>> pool.backward(np.array([[[10.0, 20.0]]]))      # routed to each window's maximum
        array([[[ 0., 10., 20.,  0.,  0.]]])
    """
    n_dims = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling: the largest value of each window.

    ``y[n, c, p] = max_k xpad[n, c, p*stride + k*dilation]`` over the kernel's offsets ``k`` (``xpad``:
    padded with -inf). The backward pass routes each output's gradient to the position of its
    window's maximum (the first one on ties, as torch) and adds where windows overlap.

    Args:
        kernel_size (int or tuple): the window (kh, kw).
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): -inf added on each side, at most half the kernel. Default: 0.
        dilation (int or tuple): spacing between the window's taps. Default: 1.
        return_indices (bool): forward also returns the flat spatial index of each maximum (for
            MaxUnpool2d). Default: False.
        ceil_mode (bool): round the output size up instead of down. Default: False.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = floor((in[i] + 2*padding[i] - dilation[i]*(kernel_size[i] - 1) - 1) / stride[i]) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.MaxPool2d(kernel_size=2)
        >>> x = np.array([[[[1.0, 2.0, 0.0, 1.0],
        ...                 [4.0, 3.0, 1.0, 6.0],
        ...                 [0.0, 1.0, 2.0, 2.0],
        ...                 [1.0, 5.0, 3.0, 0.0]]]])
        >>> pool(x)[0, 0]
        array([[4., 6.],
               [5., 3.]])
        >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]     # routed to each window's arg-max
        array([[0., 0., 0., 0.],
               [1., 0., 0., 1.],
               [0., 0., 0., 0.],
               [0., 1., 1., 0.]])
    """
    n_dims = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling: the largest value of each window.

    ``y[n, c, p] = max_k xpad[n, c, p*stride + k*dilation]`` over the kernel's offsets ``k`` (``xpad``:
    padded with -inf). The backward pass routes each output's gradient to the position of its
    window's maximum (the first one on ties, as torch) and adds where windows overlap.

    Args:
        kernel_size (int or tuple): the window (kd, kh, kw).
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): -inf added on each side, at most half the kernel. Default: 0.
        dilation (int or tuple): spacing between the window's taps. Default: 1.
        return_indices (bool): forward also returns the flat spatial index of each maximum (for
            MaxUnpool3d). Default: False.
        ceil_mode (bool): round the output size up instead of down. Default: False.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = floor((in[i] + 2*padding[i] - dilation[i]*(kernel_size[i] - 1) - 1) / stride[i]) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.MaxPool3d(kernel_size=2, stride=2)
        >>> pool(np.zeros((2, 3, 4, 6, 7), dtype=np.float32)).shape
        (2, 3, 2, 3, 3)
    """
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
        self.padding = padding
        self.ceil_mode = check_bool(name, "ceil_mode", ceil_mode)
        self.count_include_pad = check_bool(name, "count_include_pad", count_include_pad)
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
    """1-D average pooling: the mean of each window.

    ``y[n, c, p] = sum_k xpad[n, c, p*stride + k] / divisor`` with ``divisor`` the window's size (or,
    with count_include_pad=False, its elements that are not padding). The backward pass spreads
    each output's gradient evenly over its window, ``1/divisor`` to each input (a transposed
    convolution with a constant kernel), adding where windows overlap.

    Args:
        kernel_size (int or tuple): the window k.
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): zeros added on each side, at most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up instead of down. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, L_out)``, ``L_out = floor((L + 2*padding - kernel_size) / stride) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.AvgPool1d(2)
        >>> pool(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        array([[[2., 1.]]])
        >>> pool.backward(np.array([[[1.0, 2.0]]]))        # spread evenly over each window
        array([[[0.5, 0.5, 1. , 1. ]]])
    """
    n_dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling: the mean of each window.

    ``y[n, c, p] = sum_k xpad[n, c, p*stride + k] / divisor`` with ``divisor`` the window's size (or,
    with count_include_pad=False, its elements that are not padding). The backward pass spreads
    each output's gradient evenly over its window, ``1/divisor`` to each input (a transposed
    convolution with a constant kernel), adding where windows overlap.

    Args:
        kernel_size (int or tuple): the window (kh, kw).
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): zeros added on each side, at most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up instead of down. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int or None): divide by this instead. Default: None.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = floor((in[i] + 2*padding[i] - kernel_size[i]) / stride[i]) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.AvgPool2d(kernel_size=2)
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> pool(x)[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
        >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0, 0]  # each window's gradient spread over its 4 inputs
        array([0.25, 0.25, 0.25, 0.25])
    """
    n_dims = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling: the mean of each window.

    ``y[n, c, p] = sum_k xpad[n, c, p*stride + k] / divisor`` with ``divisor`` the window's size (or,
    with count_include_pad=False, its elements that are not padding). The backward pass spreads
    each output's gradient evenly over its window, ``1/divisor`` to each input (a transposed
    convolution with a constant kernel), adding where windows overlap.

    Args:
        kernel_size (int or tuple): the window (kd, kh, kw).
        stride (int or tuple or None): the window's step. Default: kernel_size.
        padding (int or tuple): zeros added on each side, at most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up instead of down. Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int or None): divide by this instead. Default: None.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = floor((in[i] + 2*padding[i] - kernel_size[i]) / stride[i]) + 1``
          (``ceil`` with ceil_mode).

    Example:
        >>> pool = nn.AvgPool3d(kernel_size=3, stride=2, padding=1)
        >>> pool(np.zeros((1, 2, 5, 8, 8), dtype=np.float32)).shape
        (1, 2, 3, 4, 4)
    """
    n_dims = 3


class _AdaptiveAvgPoolNd(Module):
    n_dims = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = F.check_output_size(output_size, self.n_dims, type(self).__name__)
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
    """1-D adaptive average pooling: the mean over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` averages the inputs ``floor(i*S/out)`` up to (not
    including) ``ceil((i+1)*S/out)``; the windows may overlap or differ in size. The backward pass
    spreads each output's gradient evenly over its window.

    Args:
        output_size (int or tuple): the output's spatial size.

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, L_out)`` with the output size L_out = output_size.

    Example:
        >>> pool = nn.AdaptiveAvgPool1d(2)
        >>> pool(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]))     # windows [0, 3) and [2, 5)
        array([[[2., 4.]]])
    """
    n_dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling: the mean over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` averages the inputs ``floor(i*S/out)`` up to (not
    including) ``ceil((i+1)*S/out)``; the windows may overlap or differ in size. The backward pass
    spreads each output's gradient evenly over its window. output_size 1 is global average pooling.

    Args:
        output_size (int or tuple): the output's spatial size (an int for every axis; None keeps an axis).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` with the output size output_size.

    Example:
        >>> gap = nn.AdaptiveAvgPool2d(1)                  # global average pooling
        >>> x = np.random.default_rng(0).standard_normal((8, 64, 7, 7)).astype(np.float32)
        >>> y = gap(x)
        >>> y.shape, bool(np.allclose(y[:, :, 0, 0], x.mean(axis=(2, 3)), atol=1e-6))
        ((8, 64, 1, 1), True)
    """
    n_dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling: the mean over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` averages the inputs ``floor(i*S/out)`` up to (not
    including) ``ceil((i+1)*S/out)``; the windows may overlap or differ in size. The backward pass
    spreads each output's gradient evenly over its window.

    Args:
        output_size (int or tuple): the output's spatial size (an int for every axis; None keeps an axis).

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` with the output size output_size.

    Example:
        >>> pool = nn.AdaptiveAvgPool3d((1, 2, 2))
        >>> pool(np.zeros((1, 3, 5, 7, 9), dtype=np.float32)).shape
        (1, 3, 1, 2, 2)
    """
    n_dims = 3


class _AdaptiveMaxPoolNd(Module):
    n_dims = 2

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        name = type(self).__name__
        self.output_size = F.check_output_size(output_size, self.n_dims, name)
        self.return_indices = check_bool(name, "return_indices", return_indices)
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
    """1-D adaptive max pooling: the maximum over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` takes the maximum of the inputs ``floor(i*S/out)``
    up to (not including) ``ceil((i+1)*S/out)``. The backward pass routes each output's gradient
    to its window's maximum.

    Args:
        output_size (int or tuple): the output's spatial size.
        return_indices (bool): forward also returns the flat spatial index of each maximum. Default: False.

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, L_out)`` with the output size L_out = output_size.

    Example:
        >>> pool = nn.AdaptiveMaxPool1d(2)
        >>> pool(np.array([[[1.0, 5.0, 3.0, 4.0, 2.0]]]))     # windows [0, 3) and [2, 5)
        array([[[5., 4.]]])
    """
    n_dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling: the maximum over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` takes the maximum of the inputs ``floor(i*S/out)``
    up to (not including) ``ceil((i+1)*S/out)``. The backward pass routes each output's gradient
    to its window's maximum.

    Args:
        output_size (int or tuple): the output's spatial size (an int for every axis; None keeps an axis).
        return_indices (bool): forward also returns the flat spatial index of each maximum. Default: False.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H_out, W_out)`` with the output size output_size.

    Example:
        >>> pool = nn.AdaptiveMaxPool2d((2, 2))
        >>> pool(np.zeros((4, 3, 9, 7), dtype=np.float32)).shape
        (4, 3, 2, 2)
    """
    n_dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling: the maximum over windows chosen to give a fixed output size.

    Output position ``i`` of an axis of size ``S`` takes the maximum of the inputs ``floor(i*S/out)``
    up to (not including) ``ceil((i+1)*S/out)``. The backward pass routes each output's gradient
    to its window's maximum.

    Args:
        output_size (int or tuple): the output's spatial size (an int for every axis; None keeps an axis).
        return_indices (bool): forward also returns the flat spatial index of each maximum. Default: False.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: ``(N, C, D_out, H_out, W_out)`` with the output size output_size.

    Example:
        >>> pool = nn.AdaptiveMaxPool3d(1)
        >>> pool(np.zeros((1, 3, 4, 5, 6), dtype=np.float32)).shape
        (1, 3, 1, 1, 1)
    """
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
    """1-D max unpooling: the partial inverse of MaxPool1d, its maxima put back in place.

    ``forward(x, indices, output_size=None)`` writes each value of x at the flat spatial index
    MaxPool1d(return_indices=True) gave for it, zeros elsewhere. The backward pass reads the
    gradient back at the indices.

    Args:
        kernel_size (int or tuple): the pooling's window k.
        stride (int or tuple or None): the pooling's stride. Default: kernel_size.
        padding (int or tuple): the pooling's padding. Default: 0.

    Shape:
        - Input: ``(N, C, L)``, and indices of the same shape.
        - Output: ``(N, C, L_out)``, ``L_out = (L - 1)*stride - 2*padding + kernel_size``,
          or ``output_size`` when given.

    Example:
        >>> pool, unpool = nn.MaxPool1d(2, return_indices=True), nn.MaxUnpool1d(2)
        >>> y, indices = pool(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        >>> unpool(y, indices)
        array([[[0., 3., 2., 0.]]])
    """
    n_dims = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """2-D max unpooling: the partial inverse of MaxPool2d, its maxima put back in place.

    ``forward(x, indices, output_size=None)`` writes each value of x at the flat spatial index
    MaxPool2d(return_indices=True) gave for it, zeros elsewhere. The backward pass reads the
    gradient back at the indices.

    Args:
        kernel_size (int or tuple): the pooling's window (kh, kw).
        stride (int or tuple or None): the pooling's stride. Default: kernel_size.
        padding (int or tuple): the pooling's padding. Default: 0.

    Shape:
        - Input: ``(N, C, H, W)``, and indices of the same shape.
        - Output: ``(N, C, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = (in[i] - 1)*stride[i] - 2*padding[i] + kernel_size[i]``,
          or ``output_size`` when given.

    Example:
        >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        >>> x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
        >>> y, indices = pool(x)
        >>> unpool(y, indices)[0, 0]                       # the maxima back in place, zeros elsewhere
        array([[0., 0.],
               [4., 0.]])
    """
    n_dims = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """3-D max unpooling: the partial inverse of MaxPool3d, its maxima put back in place.

    ``forward(x, indices, output_size=None)`` writes each value of x at the flat spatial index
    MaxPool3d(return_indices=True) gave for it, zeros elsewhere. The backward pass reads the
    gradient back at the indices.

    Args:
        kernel_size (int or tuple): the pooling's window (kd, kh, kw).
        stride (int or tuple or None): the pooling's stride. Default: kernel_size.
        padding (int or tuple): the pooling's padding. Default: 0.

    Shape:
        - Input: ``(N, C, D, H, W)``, and indices of the same shape.
        - Output: ``(N, C, D_out, H_out, W_out)``, per spatial axis ``i``:
          ``out[i] = (in[i] - 1)*stride[i] - 2*padding[i] + kernel_size[i]``,
          or ``output_size`` when given.

    Example:
        >>> pool, unpool = nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)
        >>> y, indices = pool(np.random.default_rng(0).standard_normal((1, 2, 4, 4, 4)))
        >>> unpool(y, indices).shape
        (1, 2, 4, 4, 4)
    """
    n_dims = 3
