"""Gradient clipping: clip_grad_norm_ and clip_grad_value_ (torch.nn.utils semantics)."""
from __future__ import annotations

import math

import numpy as np

from ..nn.module import Parameter
from .optimizer import check_real


def _as_list(parameters, where: str) -> list[Parameter]:
    if isinstance(parameters, Parameter):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(f"{where}: expected a Parameter or an iterable of Parameters, "
                        f"got {type(parameters).__name__}") from None
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"{where}: expected Parameters, got {type(p).__name__}")
    return params


def _vector_norm(x: np.ndarray, p: float) -> float:
    """torch.linalg.vector_norm of the flattened array, in float64."""
    x = np.abs(np.asarray(x, dtype=np.float64).ravel())
    if x.size == 0:
        return 0.0
    if p == 2.0:
        return math.sqrt(float(np.dot(x, x)))
    if p == math.inf:
        return float(x.max())
    if p == -math.inf:
        return float(x.min())
    if p == 0.0:
        return float(np.count_nonzero(x))
    if p == 1.0:
        return float(x.sum())
    return float(np.sum(x ** p) ** (1.0 / p))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the grads in place so that their joint p-norm is at most max_norm.

    The total norm is the norm of the per-parameter grad norms (the norm of all grads
    concatenated); each grad is multiplied by min(max_norm / (total + 1e-6), 1).
    Parameters whose grad is None are skipped. norm_type may be float('inf') or 'inf'.
    Returns the total norm before clipping (0.0 when no parameter has a grad).
    error_if_nonfinite: raise RuntimeError instead of scaling by a NaN/inf norm.
    """
    where = "clip_grad_norm_"
    grads = [p.grad for p in _as_list(parameters, where) if p.grad is not None]
    max_norm = check_real(where, "max_norm", max_norm, minimum=0.0)
    if isinstance(norm_type, str) and norm_type.lower() in ("inf", "+inf"):
        norm_type = math.inf
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: norm_type must be a number or 'inf', got {norm_type!r}")
    if math.isnan(float(norm_type)):
        raise ValueError(f"{where}: norm_type must be a number or 'inf', got {norm_type!r}")
    norm_type = float(norm_type)
    if not grads:
        return 0.0
    total = _vector_norm(np.array([_vector_norm(g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{where}: the total norm of order {norm_type} of the gradients is "
                           f"non-finite ({total}), so it cannot be clipped; pass "
                           f"error_if_nonfinite=False to scale by it anyway")
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every grad in place to [-clip_value, clip_value]; grads that are None are skipped."""
    where = "clip_grad_value_"
    params = _as_list(parameters, where)
    clip_value = check_real(where, "clip_value", clip_value, minimum=0.0)
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)
