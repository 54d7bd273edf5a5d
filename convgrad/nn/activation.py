"""Activation layers (torch.nn names and arguments). Input and output: any shape, one dtype.

Each layer's forward keeps the functional cache; backward(grad_out) applies the
functional backward to it. `inplace` is accepted for torch compatibility; the result
is always a new array (the input is never modified), and the cache never aliases the
caller's input or the returned output, so writing into either before backward changes nothing.
Arguments are checked at construction (type and range, torch's rules).
"""
from __future__ import annotations

from .._checks import check_bool, check_choice, check_int, check_real
from ..autograd.grad_mode import is_grad_enabled
from ..functional import activation as F
from .module import Module


class _Activation(Module):
    """forward(x) -> y (x's shape and dtype); backward(dy) -> dx (x's shape)."""
    _backward_fn = None

    def __init__(self):
        super().__init__()
        self._cache = None

    def _forward(self, x):
        raise NotImplementedError

    def forward(self, x):
        y, self._cache = self._forward(x)
        return y

    def backward(self, grad_out):
        return type(self)._backward_fn(grad_out, self._cached(self._cache))


class ReLU(_Activation):
    """Rectified linear unit, element-wise.

    ``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (the gradient at 0 is 0, as torch).

    Args:
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> relu = nn.ReLU()
        >>> relu(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 2.])
        >>> relu.backward(np.array([5.0, 5.0, 5.0]))
        array([0., 0., 5.])
    """
    _backward_fn = staticmethod(F.relu_backward)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(type(self).__name__, "inplace", inplace)

    def _forward(self, x):
        return F.relu_forward(x, where="ReLU", keep=is_grad_enabled())


class LeakyReLU(_Activation):
    """Leaky rectified linear unit, element-wise.

    ``y = x`` where ``x > 0``, else ``negative_slope * x``; backward multiplies dy by 1 or ``negative_slope``.

    Args:
        negative_slope (float): the slope for negative inputs. Default: 0.01.
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.LeakyReLU(0.1)
        >>> m(np.array([-2.0, 3.0]))
        array([-0.2,  3. ])
        >>> m.backward(np.ones(2))
        array([0.1, 1. ])
    """
    _backward_fn = staticmethod(F.leaky_relu_backward)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = check_real("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = check_bool("LeakyReLU", "inplace", inplace)

    def _forward(self, x):
        return F.leaky_relu_forward(x, self.negative_slope, where="LeakyReLU")

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    """Exponential linear unit, element-wise.

    ``y = x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; ``dy/dx = 1`` or ``alpha * exp(x)``.

    Args:
        alpha (float): the value approached as x -> -inf is -alpha. Default: 1.0.
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.ELU()
        >>> m(np.array([-1.0, 0.0, 1.0])).round(4)
        array([-0.6321,  0.    ,  1.    ])
    """
    _backward_fn = staticmethod(F.elu_backward)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = check_real("ELU", "alpha", alpha)
        self.inplace = check_bool("ELU", "inplace", inplace)

    def _forward(self, x):
        return F.elu_forward(x, self.alpha, where="ELU")

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(_Activation):
    """Gaussian error linear unit, element-wise.

    ``y = x * Phi(x)`` with ``Phi`` the standard normal CDF, ``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` (convgrad's
    own erf, exact to float64 rounding); with ``approximate='tanh'``,
    ``y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``. ``dy/dx = Phi(x) + x * phi(x)``.

    Args:
        approximate (str): ``'none'`` (the exact form) or ``'tanh'``. Default: ``'none'``.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.GELU()
        >>> m(np.array([-1.0, 0.0, 1.0])).round(4)
        array([-0.1587,  0.    ,  0.8413])
    """
    _backward_fn = staticmethod(F.gelu_backward)

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = check_choice("GELU", "approximate", approximate, ("none", "tanh"))

    def _forward(self, x):
        return F.gelu_forward(x, self.approximate, where="GELU")

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(_Activation):
    """Logistic sigmoid, element-wise.

    ``y = 1 / (1 + exp(-x))``, computed without overflow for any x; ``dy/dx = y * (1 - y)``.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.Sigmoid()
        >>> m(np.array([-np.inf, 0.0, 800.0]))
        array([0. , 0.5, 1. ])
        >>> m.backward(np.ones(3))
        array([0.  , 0.25, 0.  ])
    """
    _backward_fn = staticmethod(F.sigmoid_backward)

    def _forward(self, x):
        return F.sigmoid_forward(x, where="Sigmoid")


class Tanh(_Activation):
    """Hyperbolic tangent, element-wise.

    ``y = tanh(x)``; ``dy/dx = 1 - y^2``.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.Tanh()
        >>> m(np.array([0.0, 100.0]))
        array([0., 1.])
        >>> m.backward(np.ones(2))
        array([1., 0.])
    """
    _backward_fn = staticmethod(F.tanh_backward)

    def _forward(self, x):
        return F.tanh_forward(x, where="Tanh")


class Softplus(_Activation):
    """Softplus, a smooth ReLU, element-wise.

    ``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where ``beta * x > threshold`` (for stability, as
    torch); ``dy/dx = sigmoid(beta * x)`` (1 above the threshold).

    Args:
        beta (float): sharpness; non-zero. Default: 1.0.
        threshold (float): above ``beta * x > threshold`` the layer is the identity. Default: 20.0.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.Softplus()
        >>> m(np.array([0.0, 30.0])).round(4)
        array([ 0.6931, 30.    ])
    """
    _backward_fn = staticmethod(F.softplus_backward)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = check_real("Softplus", "beta", beta, nonzero=True)
        self.threshold = check_real("Softplus", "threshold", threshold)

    def _forward(self, x):
        return F.softplus_forward(x, self.beta, self.threshold, where="Softplus")

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(_Activation):
    """Sigmoid-weighted linear unit (swish), element-wise.

    ``y = x * sigmoid(x)``; ``dy/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))``.

    Args:
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.SiLU()
        >>> m(np.array([-1.0, 0.0, 1.0])).round(4)
        array([-0.2689,  0.    ,  0.7311])
    """
    _backward_fn = staticmethod(F.silu_backward)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(type(self).__name__, "inplace", inplace)

    def _forward(self, x):
        return F.silu_forward(x, where="SiLU")


class Softmax(_Activation):
    """Softmax along one axis: non-negative values that sum to 1.

    ``y_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))`` along ``dim``; backward
    ``dx = y * (dy - sum(dy * y))`` along ``dim``.

    Args:
        dim (int or None): the axis. None: torch's legacy choice (0 for 0-D, 1-D and 3-D inputs, else 1).

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.Softmax(dim=1)
        >>> y = m(np.array([[1.0, 2.0, 3.0]]))
        >>> y.round(4)
        array([[0.09  , 0.2447, 0.6652]])
        >>> bool(np.isclose(y.sum(), 1.0))
        True
    """
    _backward_fn = staticmethod(F.softmax_backward)

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is not None:
            check_int(type(self).__name__, "dim", dim)
        self.dim = dim

    def _forward(self, x):
        return F.softmax_forward(x, self.dim, where="Softmax")

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(_Activation):
    """Log of the softmax along one axis, computed stably.

    ``y_i = x_i - max(x) - log(sum_j exp(x_j - max(x)))`` along ``dim``; backward
    ``dx = dy - exp(y) * sum(dy)`` along ``dim``.

    Args:
        dim (int or None): the axis. None: torch's legacy choice (0 for 0-D, 1-D and 3-D inputs, else 1).

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape and dtype.

    Example:
        >>> m = nn.LogSoftmax(dim=-1)
        >>> np.exp(m(np.array([[1.0, 2.0, 3.0]]))).round(4)
        array([[0.09  , 0.2447, 0.6652]])
    """
    _backward_fn = staticmethod(F.log_softmax_backward)

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is not None:
            check_int(type(self).__name__, "dim", dim)
        self.dim = dim

    def _forward(self, x):
        return F.log_softmax_forward(x, self.dim, where="LogSoftmax")

    def extra_repr(self):
        return f"dim={self.dim}"
