"""Numerical gradient checking by central differences, in float64.

For example::

    report = gradcheck(module, x)                      # input grad and every parameter grad
    report = gradcheck(f, x, w, backward=f_backward)   # a function and its backward
    assert report.passed, report

The scalar checked is L = sum(y * g) for a fixed random g, so dL/dy = g exercises every
output at once; each numerical entry is (L(t + eps) - L(t - eps)) / (2 eps).

A large model costs two forwards per entry, so `sample=k` checks k entries per tensor drawn
with the seed (every entry of tensors with at most k), and `progress(name, done, total)` is
called after each entry. A sampled TensorCheck holds the flat indices it checked.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_bool, check_int, check_real
from .autograd import Tensor, no_grad, tensor
from .nn.module import Module


@dataclass
class TensorCheck:
    """The comparison for one tensor (an input or a parameter)."""
    name: str
    numerical: np.ndarray
    analytic: np.ndarray
    atol: float
    rtol: float
    indices: np.ndarray | None = None       # flat indices checked (None: every entry)
    size: int | None = None                 # entries of the whole tensor
    abs_error: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.abs_error = np.abs(self.analytic - self.numerical)

    @property
    def passed(self) -> bool:
        """Every entry within atol + rtol * |numerical|."""
        return bool(np.all(self.abs_error <= self.atol + self.rtol * np.abs(self.numerical)))

    @property
    def max_abs_error(self) -> float:
        """max |analytic - numerical| over the entries checked."""
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
        """The index of the largest absolute error (() for an empty tensor)."""
        if not self.abs_error.size:
            return ()
        return tuple(int(i) for i in np.unravel_index(np.argmax(self.abs_error), self.abs_error.shape))

    @property
    def label(self) -> str:
        """The name, with '(k of n entries)' when sampled."""
        return self.name if self.indices is None else f"{self.name} ({self.indices.size} of {self.size})"


@dataclass
class GradcheckReport:
    """passed, and per tensor the max abs/rel error and worst index; str() is a table."""
    checks: list
    eps: float

    @property
    def passed(self) -> bool:
        """Every tensor's check passed."""
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
                f"{'tensor':<24} {'shape':<18} {'max abs err':>12} {'max rel err':>12} {'worst index':<16} "
                f"{'numerical':>12} {'analytic':>12}  ok"]
        for c in self.checks:
            w = c.worst_index
            num = c.numerical[w] if c.numerical.size else np.nan
            ana = c.analytic[w] if c.analytic.size else np.nan
            rows.append(f"{c.label:<24} {str(c.numerical.shape):<18} {c.max_abs_error:>12.3e} "
                        f"{c.max_rel_error:>12.3e} {str(w):<16} {num:>12.6f} {ana:>12.6f}  "
                        f"{'yes' if c.passed else 'NO'}")
        small = [c for c in self.checks if 0 < c.numerical.size <= 16]
        for c in small:
            rows.append(f"\n{c.name}: numerical vs analytic, entry by entry")
            for idx in np.ndindex(c.numerical.shape):
                where = str(idx) if c.indices is None else f"flat {int(c.indices[idx[0]])}"
                rows.append(f"  {where:<14} {c.numerical[idx]:>14.8f} {c.analytic[idx]:>14.8f}")
        return "\n".join(rows)

    __repr__ = __str__


def _numerical(loss, tensor: np.ndarray, eps: float, indices=None, progress=None) -> np.ndarray:
    """Central differences of loss() with respect to every entry of tensor (perturbed in place),
    or only the flat `indices` (then a 1-D array, one value per index)."""
    flat = tensor.reshape(-1)
    todo = range(flat.size) if indices is None else indices
    out = np.zeros(len(todo))
    for n, i in enumerate(todo):
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        out[n] = (plus - minus) / (2 * eps)
        if progress is not None:
            progress(n + 1, len(todo))
    return out.reshape(tensor.shape) if indices is None else out


def _sample(size: int, k, rng):
    """None (every entry) or k sorted flat indices drawn without replacement."""
    if k is None or size <= k:
        return None
    return np.sort(rng.choice(size, size=k, replace=False))


def _compare(name, loss, tensor, analytic, eps, atol, rtol, k, rng, progress) -> "TensorCheck":
    idx = _sample(tensor.size, k, rng)
    step = None if progress is None else (lambda done, total: progress(name, done, total))
    numerical = _numerical(loss, tensor, eps, idx, step)
    analytic = np.asarray(analytic, dtype=np.float64)
    if idx is not None:
        analytic = analytic.reshape(-1)[idx]
    return TensorCheck(name, numerical, analytic, atol, rtol, idx, tensor.size)


def _as_float64(x, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"gradcheck: {what} must be a floating numpy array, got "
                        f"{type(x).__name__ if not isinstance(x, np.ndarray) else x.dtype}")
    return np.array(x, dtype=np.float64, copy=True)


def gradcheck(target, *inputs, backward=None, grad_output=None, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, check_inputs: bool = True, sample: int | None = None,
              progress=None) -> GradcheckReport:
    """Compare analytic gradients with central differences in float64.

    target: a Module (one input; its input gradient and every parameter gradient are checked on
    a float64 copy, the module itself is left untouched) — explicit (its own backward) or
    forward-only (the recorded backward); or a function f(*inputs) -> y, either of Tensors
    (the recorded backward) or given with backward(grad_y, *inputs) -> grad or tuple of grads,
    one per input. The scalar checked is sum(y * grad_output); grad_output defaults to a seeded
    random array of y's shape (1.0 for a scalar function gives its plain gradient).
    sample: check only this many entries per tensor (seeded); progress(name, done, total).
    Returns a GradcheckReport; it never raises on a mismatch.

    Example:
        >>> report = cg.gradcheck(nn.Conv2d(2, 3, 3, stride=2), np.random.default_rng(0).random((1, 2, 7, 7)))
        >>> report.passed, [check.name for check in report.checks]
        (True, ['input', 'weight', 'bias'])
        >>> square = cg.gradcheck(lambda x: x ** 2, np.array([1.0, -2.0]), backward=lambda g, x: 2 * x * g)
        >>> square.passed
        True
    """
    if sample is not None:
        sample = check_int("gradcheck", "sample", sample, minimum=1)
    if not inputs:
        raise ValueError("gradcheck: give at least one input array")
    eps = check_real("gradcheck", "eps", eps, positive=True)
    atol = check_real("gradcheck", "atol", atol, minimum=0.0)
    rtol = check_real("gradcheck", "rtol", rtol, minimum=0.0)
    seed = check_int("gradcheck", "seed", seed, minimum=0)
    check_inputs = check_bool("gradcheck", "check_inputs", check_inputs)
    for name, fn in (("backward", backward), ("progress", progress)):
        if fn is not None and not callable(fn):
            raise TypeError(f"gradcheck: {name} must be a callable or None, got {fn!r} ({type(fn).__name__})")
    xs = [_as_float64(x, f"input {i}") for i, x in enumerate(inputs)]
    for i, x in enumerate(xs):
        if not np.isfinite(x).all():         # a central difference at NaN/inf is NaN: no check at all
            raise ValueError(f"gradcheck: input {i} has non-finite entries (NaN or inf); a numerical gradient "
                             f"needs finite inputs")
    if isinstance(target, Module):
        if backward is not None:
            raise ValueError("gradcheck: a Module brings its own backward; do not pass backward=")
        if len(xs) != 1:
            raise ValueError(f"gradcheck: a Module takes one input, got {len(xs)}")
        return _check_module(target, xs[0], grad_output, eps, atol, rtol, seed, check_inputs, sample, progress)
    if not callable(target):
        raise TypeError(f"gradcheck: target must be a Module or a function, got {type(target).__name__}")
    return _check_function(target, backward, xs, grad_output, eps, atol, rtol, seed, sample, progress)


def _values(y) -> np.ndarray:
    return y.data if isinstance(y, Tensor) else np.asarray(y)


def _upstream(grad_output, shape, seed) -> np.ndarray:
    """The fixed dL/dy: grad_output broadcast to y's shape, or seeded random."""
    if grad_output is None:
        return np.random.default_rng(seed).standard_normal(shape)
    g = _values(grad_output).astype(np.float64)
    try:
        return np.array(np.broadcast_to(g, shape))
    except ValueError:
        raise ValueError(f"gradcheck: grad_output of shape {g.shape} does not fit the output's shape {shape}") from None


def _check_module(module: Module, x, grad_output, eps, atol, rtol, seed, check_inputs, sample=None,
                  progress=None):
    model = copy.deepcopy(module).to(np.float64)
    explicit = type(model).backward is not Module.backward
    with no_grad():
        g = _upstream(grad_output, _values(model(x)).shape, seed)
    # buffers (e.g. BatchNorm's running statistics) are put back after every forward
    buffers = [(mod, name, np.copy(b)) for mod in model.modules() for name, b in mod._buffers.items()
               if b is not None]

    def restore():
        for mod, name, value in buffers:
            setattr(mod, name, value.copy())

    def loss():
        with no_grad():
            out = float(np.sum(_values(model(x)) * g))
        restore()
        return out

    restore()
    model.zero_grad()
    if explicit:
        model(x)
        dx = model.backward(g.copy())
    else:
        xt = tensor(x.copy(), requires_grad=True)
        model(xt).backward(g.copy())
        dx = np.zeros_like(x) if xt.grad is None else xt.grad
    analytic = {name: (np.zeros_like(p.data) if p.grad is None else p.grad.copy())
                for name, p in model.named_parameters()}
    restore()
    checks, rng = [], np.random.default_rng(seed + 1)
    if check_inputs:
        checks.append(_compare("input", loss, x, dx, eps, atol, rtol, sample, rng, progress))
    for name, p in model.named_parameters():
        checks.append(_compare(name, loss, p.data, analytic[name], eps, atol, rtol, sample, rng, progress))
    return GradcheckReport(checks, eps)


def _check_function(f, backward, xs, grad_output, eps, atol, rtol, seed, sample=None,
                    progress=None) -> GradcheckReport:
    if backward is None:                           # a function of Tensors: the recorded backward
        leaves = [tensor(x.copy(), requires_grad=True) for x in xs]
        try:
            y = f(*leaves)
        except TypeError as exc:                   # e.g. a NumPy ufunc, which refuses Tensors
            raise TypeError(f"gradcheck: without backward=, target is called with convgrad Tensors and "
                            f"must compute with them; it raised TypeError: {exc}. Give backward= for a "
                            f"function of NumPy arrays") from exc
        if not isinstance(y, Tensor) or not y.requires_grad:
            raise TypeError("gradcheck: without backward=, target must be a function of convgrad Tensors "
                            f"that returns a Tensor computed from them, got {type(y).__name__}")
        g = _upstream(grad_output, y.shape, seed)
        y.backward(g.copy())
        grads = [np.zeros_like(x) if t.grad is None else t.grad for x, t in zip(xs, leaves)]

        def value():
            with no_grad():
                return _values(f(*[Tensor(x) for x in xs]))
    else:
        def value():
            return _values(f(*xs))
        g = _upstream(grad_output, value().shape, seed)
        grads = backward(g.copy(), *xs)
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(grads) != len(xs):
            raise ValueError(f"gradcheck: backward returned {len(grads)} gradients for {len(xs)} inputs")
    checks, rng = [], np.random.default_rng(seed + 1)
    for i, (x, dx) in enumerate(zip(xs, grads)):
        if dx is None:
            continue
        checks.append(_compare(f"input {i}", lambda: float(np.sum(value() * g)), x, dx, eps, atol, rtol, sample,
                               rng, progress))
    return GradcheckReport(checks, eps)
