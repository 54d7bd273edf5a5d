"""Flatten and Unflatten: reshapes whose backward reshapes the gradient back."""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_float_array, check_grad, check_int
from .module import Module


def _axis(dim, ndim: int, where: str, name: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{where}: {name}={dim} is out of range for an input of rank {ndim} "
                         f"(expected {-n} <= {name} < {n})")
    return int(dim) % n


def _reshape_back(module: Module, grad_out):
    """The gradient of a reshape: grad_out reshaped to the input's shape."""
    in_shape, out_shape, dtype = module._cached(module._cache)
    return check_grad(grad_out, out_shape, dtype, type(module).__name__).reshape(in_shape)


class Flatten(Module):
    """Merge the axes start_dim..end_dim into one (a reshape); backward reshapes the gradient back.

    Args:
        start_dim (int): first axis merged. Default: 1 (the batch axis stays).
        end_dim (int): last axis merged. Default: -1.

    Shape:
        - Input: ``(*, S_start, ..., S_end, *)``
        - Output: ``(*, S_start * ... * S_end, *)``; by default ``(N, C, H, W) -> (N, C*H*W)``.

    Example:
        >>> flat = nn.Flatten()
        >>> flat(np.zeros((32, 16, 5, 5), dtype=np.float32)).shape
        (32, 400)
        >>> flat.backward(np.zeros((32, 400), dtype=np.float32)).shape
        (32, 16, 5, 5)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = check_int("Flatten", "start_dim", start_dim)
        self.end_dim = check_int("Flatten", "end_dim", end_dim)
        self._cache = None

    def forward(self, x):
        check_float_array(x, "Flatten")
        if x.ndim == 0:
            out_shape = (1,)
        else:
            s = _axis(self.start_dim, x.ndim, "Flatten", "start_dim")
            e = _axis(self.end_dim, x.ndim, "Flatten", "end_dim")
            if s > e:
                raise ValueError(f"Flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim} "
                                 f"for an input of shape {x.shape}")
            out_shape = (*x.shape[:s], math.prod(x.shape[s:e + 1]), *x.shape[e + 1:])
        y = x.reshape(out_shape)
        self._cache = (x.shape, y.shape, y.dtype)
        return y

    def backward(self, grad_out):
        """grad_out (flattened shape) -> the input's shape."""
        return _reshape_back(self, grad_out)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split one axis into several (a reshape); backward reshapes the gradient back.

    Args:
        dim (int): the axis split.
        unflattened_size (tuple of int): the sizes it is split into; their product must be the axis's
            size. One entry may be -1 (inferred).

    Shape:
        - Input: ``(*, S_dim, *)``
        - Output: ``(*, U_1, ..., U_k, *)`` with ``U_1 * ... * U_k = S_dim``.

    Example:
        >>> unflat = nn.Unflatten(1, (16, 5, -1))
        >>> unflat(np.zeros((32, 400), dtype=np.float32)).shape
        (32, 16, 5, 5)
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        if sum(1 for s in unflattened_size if s == -1) > 1 or any(s < -1 for s in unflattened_size):
            raise ValueError(f"Unflatten: unflattened_size may hold at most one -1 and no other negative "
                             f"sizes, got {tuple(unflattened_size)}")
        self.dim = check_int("Unflatten", "dim", dim)
        self.unflattened_size = tuple(int(s) for s in unflattened_size)
        self._cache = None

    def _sizes(self, n: int, x_shape) -> tuple:
        known = math.prod(s for s in self.unflattened_size if s != -1)
        sizes = self.unflattened_size
        if -1 in sizes and known > 0 and n % known == 0:
            sizes = tuple(n // known if s == -1 else s for s in sizes)
        if math.prod(sizes) != n or -1 in sizes:
            raise ValueError(f"Unflatten: cannot split dim {self.dim} of size {n} (input shape {x_shape}) "
                             f"into {self.unflattened_size}: the sizes must multiply to {n}")
        return sizes

    def forward(self, x):
        check_float_array(x, "Unflatten")
        if x.ndim == 0:
            raise ValueError("Unflatten: expected an input of rank >= 1, got a scalar")
        d = _axis(self.dim, x.ndim, "Unflatten", "dim")
        sizes = self._sizes(x.shape[d], x.shape)
        y = x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1:])
        self._cache = (x.shape, y.shape, y.dtype)
        return y

    def backward(self, grad_out):
        """grad_out (unflattened shape) -> the input's shape."""
        return _reshape_back(self, grad_out)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
