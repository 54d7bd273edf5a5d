"""Numerical gradient checking by central differences, in float64.

    report = gradcheck(module, x)                      # input grad and every parameter grad
    report = gradcheck(f, x, w, backward=f_backward)   # a function and its backward
    assert report.passed, report

The scalar checked is L = sum(y * g) for a fixed random g, so dL/dy = g exercises every
output at once; each numerical entry is (L(t + eps) - L(t - eps)) / (2 eps).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_bool, check_int, check_real

from .nn.module import Module


@dataclass
class TensorCheck:
    """The comparison for one tensor (an input or a parameter)."""
    name: str
    numerical: np.ndarray
    analytic: np.ndarray
    atol: float
    rtol: float
    abs_error: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.abs_error = np.abs(self.analytic - self.numerical)

    @property
    def passed(self) -> bool:
        return bool(np.all(self.abs_error <= self.atol + self.rtol * np.abs(self.numerical)))

    @property
    def max_abs_error(self) -> float:
        return float(self.abs_error.max()) if self.abs_error.size else 0.0

    @property
    def max_rel_error(self) -> float:
        """max |a - n| / max(|a|, |n|, atol): relative where values are large, absolute near zero."""
        if not self.abs_error.size:
            return 0.0
        scale = np.maximum(np.maximum(np.abs(self.analytic), np.abs(self.numerical)), self.atol)
        return float((self.abs_error / scale).max())

    @property
    def worst_index(self) -> tuple:
        if not self.abs_error.size:
            return ()
        return tuple(int(i) for i in np.unravel_index(np.argmax(self.abs_error), self.abs_error.shape))


@dataclass
class GradcheckReport:
    """passed, and per tensor the max abs/rel error and worst index; str() is a table."""
    checks: list
    eps: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> TensorCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        rows = [f"gradcheck (central differences, eps={self.eps:g}, float64): "
                f"{'PASSED' if self.passed else 'FAILED'}",
                f"{'tensor':<16} {'shape':<18} {'max abs err':>12} {'max rel err':>12} {'worst index':<16} "
                f"{'numerical':>12} {'analytic':>12}  ok"]
        for c in self.checks:
            w = c.worst_index
            num = c.numerical[w] if c.numerical.size else np.nan
            ana = c.analytic[w] if c.analytic.size else np.nan
            rows.append(f"{c.name:<16} {str(c.numerical.shape):<18} {c.max_abs_error:>12.3e} "
                        f"{c.max_rel_error:>12.3e} {str(w):<16} {num:>12.6f} {ana:>12.6f}  "
                        f"{'yes' if c.passed else 'NO'}")
        small = [c for c in self.checks if 0 < c.numerical.size <= 16]
        for c in small:
            rows.append(f"\n{c.name}: numerical vs analytic, entry by entry")
            for idx in np.ndindex(c.numerical.shape):
                rows.append(f"  {str(idx):<14} {c.numerical[idx]:>14.8f} {c.analytic[idx]:>14.8f}")
        return "\n".join(rows)

    __repr__ = __str__


def _numerical(loss, tensor: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of loss() with respect to every entry of tensor (perturbed in place)."""
    grad = np.zeros_like(tensor)
    flat, gflat = tensor.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def _as_float64(x, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"gradcheck: {what} must be a floating numpy array, got "
                        f"{type(x).__name__ if not isinstance(x, np.ndarray) else x.dtype}")
    return np.array(x, dtype=np.float64, copy=True)


def gradcheck(target, *inputs, backward=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, check_inputs: bool = True) -> GradcheckReport:
    """Compare analytic gradients with central differences in float64.

    target: a Module (one input; its input gradient and every parameter gradient are
    checked on a float64 copy, the module itself is left untouched), or a function
    f(*inputs) -> y together with backward(grad_y, *inputs) -> grad or tuple of grads,
    one per input. Returns a GradcheckReport; it never raises on a mismatch.
    """
    if not inputs:
        raise ValueError("gradcheck: give at least one input array")
    eps = check_real("gradcheck", "eps", eps, positive=True)
    atol = check_real("gradcheck", "atol", atol, minimum=0.0)
    rtol = check_real("gradcheck", "rtol", rtol, minimum=0.0)
    seed = check_int("gradcheck", "seed", seed, minimum=0)
    check_inputs = check_bool("gradcheck", "check_inputs", check_inputs)
    xs = [_as_float64(x, f"input {i}") for i, x in enumerate(inputs)]
    if isinstance(target, Module):
        if backward is not None:
            raise ValueError("gradcheck: a Module brings its own backward; do not pass backward=")
        if len(xs) != 1:
            raise ValueError(f"gradcheck: a Module takes one input, got {len(xs)}")
        return _check_module(target, xs[0], eps, atol, rtol, seed, check_inputs)
    if not callable(target) or backward is None:
        raise TypeError("gradcheck: target must be a Module, or a function given with backward=")
    return _check_function(target, backward, xs, eps, atol, rtol, seed)


def _check_module(module: Module, x, eps, atol, rtol, seed, check_inputs) -> GradcheckReport:
    model = copy.deepcopy(module).to(np.float64)
    y = model.forward(x)
    g = np.random.default_rng(seed).standard_normal(np.shape(y))
    # buffers (e.g. BatchNorm's running statistics) are put back after every forward
    buffers = [(mod, name, np.copy(b)) for mod in model.modules() for name, b in mod._buffers.items()
               if b is not None]

    def restore():
        for mod, name, value in buffers:
            setattr(mod, name, value.copy())

    def loss():
        out = float(np.sum(model.forward(x) * g))
        restore()
        return out

    restore()
    model.zero_grad()
    model.forward(x)
    dx = model.backward(g.copy())
    analytic = {name: (np.zeros_like(p.data) if p.grad is None else p.grad.copy())
                for name, p in model.named_parameters()}
    restore()
    checks = []
    if check_inputs:
        checks.append(TensorCheck("input", _numerical(loss, x, eps), np.asarray(dx), atol, rtol))
    for name, p in model.named_parameters():
        checks.append(TensorCheck(name, _numerical(loss, p.data, eps), analytic[name], atol, rtol))
    return GradcheckReport(checks, eps)


def _check_function(f, backward, xs, eps, atol, rtol, seed) -> GradcheckReport:
    y = f(*xs)
    g = np.random.default_rng(seed).standard_normal(np.shape(y))
    grads = backward(g.copy(), *xs)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(xs):
        raise ValueError(f"gradcheck: backward returned {len(grads)} gradients for {len(xs)} inputs")
    checks = []
    for i, (x, dx) in enumerate(zip(xs, grads)):
        if dx is None:
            continue
        numerical = _numerical(lambda: float(np.sum(f(*xs) * g)), x, eps)
        checks.append(TensorCheck(f"input {i}", numerical, np.asarray(dx, dtype=np.float64), atol, rtol))
    return GradcheckReport(checks, eps)
