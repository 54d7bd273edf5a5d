"""Activation layers (torch.nn names and arguments). Input and output: any shape, one dtype.

Each layer's forward keeps the functional cache; backward(grad_out) applies the
functional backward to it. `inplace` is accepted for torch compatibility; the result
is always a new array (the input is never modified), and the cache never aliases the
caller's input or the returned output, so writing into either before backward changes nothing.
Arguments are checked at construction (type and range, torch's rules).
"""
from __future__ import annotations

from .._checks import check_bool, check_choice, check_int, check_real
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
    """y = max(x, 0); the gradient at 0 is 0 (as torch)."""
    _backward_fn = staticmethod(F.relu_backward)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(type(self).__name__, "inplace", inplace)

    def _forward(self, x):
        return F.relu_forward(x, where="ReLU")


class LeakyReLU(_Activation):
    """y = x if x > 0 else negative_slope * x."""
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
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
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
    """y = x * Phi(x) (approximate='none', Phi the normal CDF via erf) or its tanh form."""
    _backward_fn = staticmethod(F.gelu_backward)

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = check_choice("GELU", "approximate", approximate, ("none", "tanh"))

    def _forward(self, x):
        return F.gelu_forward(x, self.approximate, where="GELU")

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)), stable for any x."""
    _backward_fn = staticmethod(F.sigmoid_backward)

    def _forward(self, x):
        return F.sigmoid_forward(x, where="Sigmoid")


class Tanh(_Activation):
    """y = tanh(x)."""
    _backward_fn = staticmethod(F.tanh_backward)

    def _forward(self, x):
        return F.tanh_forward(x, where="Tanh")


class Softplus(_Activation):
    """y = log(1 + exp(beta x)) / beta, reverting to y = x where beta x > threshold."""
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
    """y = x * sigmoid(x) (swish)."""
    _backward_fn = staticmethod(F.silu_backward)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(type(self).__name__, "inplace", inplace)

    def _forward(self, x):
        return F.silu_forward(x, where="SiLU")


class Softmax(_Activation):
    """y = exp(x) / sum(exp(x)) along dim (max-subtracted). dim=None: torch's legacy choice."""
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
    """y = x - logsumexp(x) along dim (max-subtracted). dim=None: torch's legacy choice."""
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
