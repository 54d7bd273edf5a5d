"""Graph containers: where one input fans out to several branches, their gradients add.

The lectures' rule for a compute graph: if x feeds several branches b_1 .. b_k, then
dL/dx = sum_i dL/db_i * db_i/dx. `Residual`, `Add` and `Concat` are that rule for the
common shapes of graph; `Sequential` (in module.py) is the chain.

Any other graph is a custom Module whose forward calls its submodules and whose backward
calls their backward in the reverse order, adding the gradients where the forward fanned
out. For example, a gated block y = a(x) * b(x) + x:

    class Gated(Module):
        def __init__(self, a: Module, b: Module):
            super().__init__()
            self.a, self.b = a, b            # registered by assignment: names "a.*", "b.*"
            self._cache = None

        def forward(self, x):                # x (N, C, H, W) -> (N, C, H, W)
            ya, yb = self.a(x), self.b(x)    # x fans out three ways: a, b and the identity
            self._cache = (ya, yb)
            return ya * yb + x

        def backward(self, grad_out):        # reverse order; one backward per forward call
            ya, yb = self._cached(self._cache)
            grad_x = self.b.backward(grad_out * ya)
            grad_x = grad_x + self.a.backward(grad_out * yb)
            return grad_x + grad_out         # the identity branch: gradients add

A module object may appear several times (one activation reused, one conv in two
branches): a repeat call keeps the earlier call's cache, and backward calls made in reverse
order each find their own (nn/calls.py). Without writing backward at all, a forward-only
Module called with convgrad Tensors gets its backward assembled from the recorded calls.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor, cat
from .module import Module


def _check_modules(modules, where: str) -> None:
    for m in modules:
        if not isinstance(m, Module):
            raise TypeError(f"{where}: expected Module branches, got a {type(m).__name__}")


def _check_same_shapes(outputs, where: str) -> None:
    shapes = [np.shape(y) for y in outputs]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"{where}: branch outputs must have one shape to be added, got shapes {shapes}")


def _all_have_backward(module: Module) -> bool:
    """A container differentiates itself when every branch does; otherwise it runs forward-only."""
    return all(m.has_backward() for m in module.children())


class Residual(Module):
    """A residual connection: ``y = body(x) + shortcut(x)``, the shortcut None for the identity.

    backward: grad_out flows into both branches and their input gradients add,
    ``dx = body.backward(dy) + shortcut.backward(dy)`` (or ``+ dy`` for the identity) — where x fanned
    out, the gradients add. Parameter names: ``"body.*"``, ``"shortcut.*"``, as a torch module with
    those attributes.

    Args:
        body (Module): the main path.
        shortcut (Module or None): the other path; None is the identity (then body keeps x's shape).
            Default: None.

    Shape:
        - Input: what body and shortcut take, ``(N, *)``.
        - Output: body's output shape, which shortcut's must equal.

    Example:
        >>> block = nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()))
        >>> x = np.ones((2, 4, 8, 8), dtype=np.float32)
        >>> y = block(x)
        >>> y.shape
        (2, 4, 8, 8)
        >>> block.backward(np.ones_like(y)).shape
        (2, 4, 8, 8)
    """

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        _check_modules([body] + ([] if shortcut is None else [shortcut]), "Residual")
        self.body = body
        self.shortcut = shortcut
        self._cache = None

    def forward(self, x):
        y_body = self.body(x)
        y_short = x if self.shortcut is None else self.shortcut(x)
        _check_same_shapes([y_body, y_short], "Residual (body, shortcut)")
        self._cache = True
        return y_body + y_short

    has_backward = _all_have_backward

    def backward(self, grad_out):
        self._cached(self._cache)
        dx_body = self.body.backward(grad_out)
        dx_short = grad_out if self.shortcut is None else self.shortcut.backward(grad_out)
        return dx_body + dx_short


class _Branches(Module):
    """Modules that all read the same input, registered as "0", "1", ..."""

    def __init__(self, branches, where: str):
        super().__init__()
        if not branches:
            raise ValueError(f"{where}: give at least one branch")
        _check_modules(branches, where)
        for i, m in enumerate(branches):
            setattr(self, str(i), m)
        self._cache = None

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    has_backward = _all_have_backward


class Add(_Branches):
    """Parallel branches whose outputs add: ``y = sum_i branch_i(x)``, every branch applied to the same x.

    backward: ``dx = sum_i branch_i.backward(dy)``. Branches are named ``"0"``, ``"1"``, ...

    Args:
        branches (Module): one or more modules (one object may appear twice: its gradients add).

    Shape:
        - Input: what every branch takes, ``(N, *)``.
        - Output: the branches' common output shape.

    Example:
        >>> both = nn.Add(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1))
        >>> both(np.ones((2, 3, 5, 5), dtype=np.float32)).shape
        (2, 8, 5, 5)
    """

    def __init__(self, *branches: Module):
        super().__init__(branches, "Add")

    def forward(self, x):
        outputs = [m(x) for m in self._modules.values()]
        _check_same_shapes(outputs, "Add")
        self._cache = True
        if isinstance(x, Tensor):             # a forward-only branch: the additions record themselves
            y = outputs[0]
            for out in outputs[1:]:
                y = y + out
            return y
        y = outputs[0].copy() if len(outputs) == 1 else outputs[0] + outputs[1]
        for out in outputs[2:]:
            y += out
        return y

    def backward(self, grad_out):
        self._cached(self._cache)
        branches = list(self._modules.values())
        dx = branches[-1].backward(grad_out)
        for m in reversed(branches[:-1]):
            dx = dx + m.backward(grad_out)
        return dx


class Concat(_Branches):
    """Parallel branches whose outputs are concatenated: ``y = concatenate([branch_i(x)], axis=dim)``.

    Every branch is applied to the same x (an Inception-style block); backward splits dy back into
    the branches' pieces, and their input gradients add. Branches are named ``"0"``, ``"1"``, ...

    Args:
        branches (Module): one or more modules (one object may appear twice: its gradients add).
        dim (int): the axis of the concatenation. Default: 1 (channels).

    Shape:
        - Input: what every branch takes, ``(N, *)``.
        - Output: with the default dim, branch outputs ``(N, C_i, *S)`` give ``(N, sum_i C_i, *S)``;
          they must agree in every other axis.

    Example:
        >>> block = nn.Concat(nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 3, padding=1))
        >>> y = block(np.ones((2, 3, 5, 5), dtype=np.float32))
        >>> y.shape
        (2, 10, 5, 5)
        >>> block.backward(np.ones_like(y)).shape
        (2, 3, 5, 5)
    """

    def __init__(self, *branches: Module, dim: int = 1):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Concat: dim must be an int, got {dim!r}")
        super().__init__(branches, "Concat")
        self.dim = int(dim)

    def forward(self, x):
        outputs = [m(x) for m in self._modules.values()]
        ndim = outputs[0].ndim
        if not -ndim <= self.dim < ndim:
            raise ValueError(f"Concat: dim={self.dim} is out of range for branch outputs of rank {ndim}")
        axis = self.dim % ndim
        shapes = [y.shape for y in outputs]
        if any(len(s) != ndim or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
            raise ValueError(f"Concat: branch outputs must match in every dim but {self.dim}, got shapes {shapes}")
        self._cache = (axis, np.cumsum([s[axis] for s in shapes])[:-1], shapes)
        if isinstance(x, Tensor):             # a forward-only branch: the join records itself
            return cat(outputs, dim=axis)
        return np.concatenate(outputs, axis=axis)

    def backward(self, grad_out):
        axis, splits, shapes = self._cached(self._cache)
        total = sum(s[axis] for s in shapes)
        expected = shapes[0][:axis] + (total,) + shapes[0][axis + 1:]
        if np.shape(grad_out) != expected:
            raise ValueError(f"Concat backward: expected grad_output of shape {expected}, got {np.shape(grad_out)}")
        pieces = np.split(grad_out, splits, axis=axis)
        branches = list(self._modules.values())
        dx = branches[-1].backward(np.ascontiguousarray(pieces[-1]))
        for m, piece in zip(reversed(branches[:-1]), reversed(pieces[:-1])):
            dx = dx + m.backward(np.ascontiguousarray(piece))
        return dx

    def extra_repr(self):
        return f"dim={self.dim}"
