"""Linear (fully connected) layer and Identity, with torch's arguments, names and init."""
from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import is_grad_enabled
from .._checks import check_bool, check_float_dtype, check_generator, check_grad, check_int
from ..functional import dense as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """Fully connected layer: an affine map of the last axis.

    ``y = x @ weight^T + bias``; backward ``dx = dy @ weight``, ``dweight = dy^T @ x`` (summed over
    all leading axes) and ``dbias = sum(dy)``.

    Args:
        in_features (int): size of the input's last axis.
        out_features (int): size of the output's last axis.
        bias (bool): add a learnt bias. Default: True.
        generator: None, an int seed or a numpy Generator for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(*, in_features)``, any number of leading axes.
        - Output: ``(*, out_features)``.

    Attributes:
        weight (Parameter): ``(out_features, in_features)``, drawn from
            U(-1/sqrt(in_features), 1/sqrt(in_features)) (torch's default, kaiming_uniform with a=sqrt(5)).
        bias (Parameter or None): ``(out_features,)``, the same distribution.

    Example:
        >>> fc = nn.Linear(20, 30)
        >>> x = np.ones((128, 20), dtype=np.float32)
        >>> y = fc(x)
        >>> y.shape
        (128, 30)
        >>> fc.backward(np.ones_like(y)).shape
        (128, 20)
        >>> fc.weight.grad.shape
        (30, 20)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, generator=None, dtype=None):
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features, minimum=0)
        self.out_features = check_int("Linear", "out_features", out_features, minimum=0)
        bias = check_bool("Linear", "bias", bias)
        dtype = check_float_dtype("Linear", dtype)
        rng = init.make_rng(check_generator("Linear", generator))
        bound = init.default_bound(self.in_features)
        self.weight = Parameter(init.uniform((self.out_features, self.in_features), bound, rng, dtype))
        self.bias = Parameter(init.uniform((self.out_features,), bound, rng, dtype)) if bias else None
        self._cache = None

    def forward(self, x):
        y, self._cache = F.linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                          where="Linear", keep=is_grad_enabled())
        return y

    def backward(self, grad_out):
        """grad_out (*, out_features) -> grad_in (*, in_features); adds weight/bias grads."""
        dx, dw, db = F.linear_backward(grad_out, self._cached(self._cache))
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """The identity: ``y = x`` and ``dx = dy``; any arguments are accepted and ignored (as torch).

    A placeholder where an architecture needs a layer that does nothing (an identity shortcut).

    Args:
        args, kwargs: any positional and keyword arguments, ignored.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the same array.

    Example:
        >>> m = nn.Identity(54, unused="argument")
        >>> x = np.zeros((2, 3))
        >>> m(x) is x
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._cache = None

    def forward(self, x):
        floats = isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
        self._cache = (x.shape, x.dtype) if floats else None
        return x

    def backward(self, grad_out):
        """grad_out, checked against the float array forward passed on (anything else: passed back)."""
        if self._cache is None:
            return grad_out
        shape, dtype = self._cache
        return check_grad(grad_out, shape, dtype, "Identity")
