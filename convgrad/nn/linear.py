"""Linear (fully connected) layer and Identity, with torch's arguments, names and init."""
from __future__ import annotations

from .._checks import check_bool, check_float_dtype, check_generator, check_int
from ..functional import dense as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x @ weight^T + bias.  x (*, in_features) -> y (*, out_features).

    weight (out_features, in_features) and bias (out_features,) ~ U(-1/sqrt(in), 1/sqrt(in)),
    torch's default (kaiming_uniform with a=sqrt(5)); generator: None, int seed or Generator.
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
                                          where="Linear")
        return y

    def backward(self, grad_out):
        """grad_out (*, out_features) -> grad_in (*, in_features); adds weight/bias grads."""
        dx, dw, db = F.linear_backward(grad_out, self._cached(self._cache))
        self._accumulate(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x, dx = dy; any arguments are accepted and ignored (as torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out
