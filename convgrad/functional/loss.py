"""Loss functions, each a forward and a backward function, with torch's exact semantics.

    loss = cross_entropy(x, t, ...)
    loss, cache = cross_entropy_forward(x, t, ...)
    dx = cross_entropy_backward(grad, cache)

reduction='mean' | 'sum' gives a NumPy scalar of the input's dtype (float(loss) works) and
its backward takes a scalar upstream gradient (default 1); reduction='none' gives the
per-element losses and its backward takes an upstream gradient of that shape (default ones).

Shapes: classification losses take x (N, C) or (N, C, d1, ...) or unbatched (C,), with
integer class targets (N,) / (N, d1, ...) / (); cross_entropy also takes class
probabilities of x's shape. Regression losses take x and target of one shape.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_float_array, check_int, check_real

__all__ = [
    "cross_entropy", "cross_entropy_forward", "cross_entropy_backward",
    "nll_loss", "nll_loss_forward", "nll_loss_backward",
    "mse_loss", "mse_loss_forward", "mse_loss_backward",
    "l1_loss", "l1_loss_forward", "l1_loss_backward",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_forward",
    "binary_cross_entropy_with_logits_backward",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------------
# shared checks and reductions
# ---------------------------------------------------------------------------------------
def check_reduction(reduction, where: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(loss: np.ndarray, reduction: str, denom):
    """'none' -> the array; 'sum' -> its sum; 'mean' -> sum / denom. Scalars keep the dtype."""
    if reduction == "none":
        return loss
    total = np.sum(loss, dtype=loss.dtype)
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):   # 0/0 -> nan, as torch
        return loss.dtype.type(total / denom)


def _upstream(grad, reduction: str, loss_shape, dtype, where: str):
    """The upstream gradient per loss element, broadcastable to loss_shape: a scalar for
    'mean'/'sum' (None means 1), an array of the loss's shape for 'none' (None means ones)."""
    if grad is None:
        return dtype.type(1.0)
    g = np.asarray(grad)
    if g.dtype == bool or not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
        raise TypeError(f"{where} backward: expected the upstream gradient as a real number or float array, "
                        f"got {grad!r:.80}")
    if reduction != "none":
        if g.size != 1:
            raise ValueError(f"{where} backward: reduction={reduction!r} gives a scalar loss, so the "
                             f"upstream gradient must be a scalar, got shape {g.shape}")
        return dtype.type(g.reshape(()))
    if g.shape != tuple(loss_shape):
        raise ValueError(f"{where} backward: reduction='none' gives a loss of shape {tuple(loss_shape)}, "
                         f"the upstream gradient must have that shape, got {g.shape}")
    return g.astype(dtype, copy=False)


def _mean_scale(g, reduction: str, denom):
    """dL/dloss_elem: g / denom for 'mean' (0 where the denominator is 0, as torch), else g."""
    if reduction != "mean":
        return g
    return g / denom if denom != 0 else g * 0


def _float_weight(weight, n_classes: int, dtype, where: str, name: str = "weight"):
    if weight is None:
        return None
    w = np.asarray(weight)
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)) or w.dtype == bool:
        raise TypeError(f"{where}: expected {name} as a float array, got dtype {w.dtype}")
    if w.shape != (n_classes,):
        raise ValueError(f"{where}: expected {name} of shape ({n_classes},) (one per class), got {w.shape}")
    return w.astype(dtype, copy=False)


def _as_array(value, where: str, name: str) -> np.ndarray:
    """np.asarray, with ragged nested lists reported against the loss and argument."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{where}: expected {name} as an array, got {type(value).__name__} ({exc})") from exc


def _check_same_shape(x, target, where: str) -> np.ndarray:
    """A float target of x's shape, cast to x's dtype."""
    check_float_array(x, where, "input")
    t = _as_array(target, where, "target")
    if not np.issubdtype(t.dtype, np.floating):
        raise TypeError(f"{where}: expected a floating target (float32 or float64), got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{where}: target shape {t.shape} does not match input shape {x.shape}")
    return t.astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------
# class targets: validation and the batched view
# ---------------------------------------------------------------------------------------
def _batched(x: np.ndarray, where: str) -> tuple[np.ndarray, bool]:
    """(C,) -> (1, C); (N, C, *d) as is. Returns (x, unbatched)."""
    check_float_array(x, where, "input")
    if x.ndim == 0:
        raise ValueError(f"{where}: expected input of shape (N, C), (N, C, d1, ...) or (C,), got a scalar")
    if x.ndim == 1:
        return x[None], True
    return x, False


def _class_targets(target, x: np.ndarray, unbatched: bool, ignore_index: int, where: str):
    """Integer targets of shape (N, *d) (batched view), values in [0, C) or ignore_index.
    Returns (t_safe, valid): ignored entries replaced by class 0, and the not-ignored mask."""
    t = _as_array(target, where, "target")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{where}: expected class-index targets of an integer dtype, got dtype {t.dtype}")
    expected = () if unbatched else (x.shape[0], *x.shape[2:])
    if t.shape != expected:
        raise ValueError(f"{where}: expected target of shape {expected} (the input's shape "
                         f"{x.shape[1:] if unbatched else x.shape} without the class dim), got {t.shape}")
    if unbatched:
        t = t[None]
    n_classes = x.shape[1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(f"{where}: target value {int(t[bad].flat[0])} is out of range: class indices must be "
                         f"in [0, {n_classes - 1}] (C={n_classes}) or equal ignore_index={ignore_index}")
    return np.where(valid, t, 0), valid


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """log-softmax over axis 1, with the max subtracted so exp never overflows."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _class_view(w: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, ...) to broadcast against (N, C, *d)."""
    return w.reshape(1, -1, *([1] * (ndim - 2)))


def _pick(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a[n, t[n, *d], *d]: (N, C, *d), (N, *d) -> (N, *d)."""
    return np.take_along_axis(a, t[:, None], axis=1)[:, 0]


def _unbatch(a, unbatched: bool):
    return a[0] if unbatched else a


# ---------------------------------------------------------------------------------------
# cross-entropy
# ---------------------------------------------------------------------------------------
def cross_entropy_forward(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                          *, where="cross_entropy"):
    """Cross-entropy of logits x against class indices or class probabilities.

    x (N, C, *d) or (C,); target integer (N, *d) / (), or float of x's shape; weight (C,).
    Class indices, per element: l = -(1-eps) w[t] log p[t] - eps/C sum_c w[c] log p[c]
    (both terms 0 where t == ignore_index); 'mean' divides by sum of w[t] over the
    non-ignored elements. Probabilities q: q <- (1-eps) q + eps/C, l = -sum_c w[c] q[c] log p[c],
    'mean' divides by the number of elements N * prod(d). p = softmax(x, dim=1).
    Returns (loss, cache)."""
    check_reduction(reduction, where)
    label_smoothing = check_real(where, "label_smoothing", label_smoothing, minimum=0.0, maximum=1.0)
    ignore_index = check_int(where, "ignore_index", ignore_index)
    xb, unbatched = _batched(x, where)
    n_classes = xb.shape[1]
    w = _float_weight(weight, n_classes, x.dtype, where)
    logp = _log_softmax(xb)
    eps = float(label_smoothing)
    t = _as_array(target, where, "target")
    if np.issubdtype(t.dtype, np.floating):
        return _cross_entropy_probs(xb, logp, t, w, eps, reduction, unbatched, where)
    t_safe, valid = _class_targets(t, xb, unbatched, ignore_index, where)
    w_t = (w[t_safe] if w is not None else np.ones(t_safe.shape, x.dtype)) * valid
    loss = -w_t * _pick(logp, t_safe)
    if eps > 0:
        smooth = -np.sum(logp * _class_view(w, xb.ndim) if w is not None else logp, axis=1) * valid
        loss = (1.0 - eps) * loss + (eps / n_classes) * smooth
    denom = np.sum(w_t, dtype=x.dtype)
    cache = ("index", logp, t_safe, valid, w_t, w, eps, reduction, denom, unbatched, where)
    return _reduce(_unbatch(loss, unbatched), reduction, denom), cache


def _cross_entropy_probs(xb, logp, t, w, eps, reduction, unbatched, where):
    t = t.astype(xb.dtype, copy=False)
    expected = xb.shape[1:] if unbatched else xb.shape
    if t.shape != expected:
        raise ValueError(f"{where}: class-probability targets must have the input's shape {expected}, got "
                         f"{t.shape} (class-index targets must be integers)")
    q = t[None] if unbatched else t
    if eps > 0:
        q = q * (1.0 - eps) + eps / xb.shape[1]
    wq = q * _class_view(w, xb.ndim) if w is not None else q
    loss = -np.sum(logp * wq, axis=1)
    denom = loss.size
    cache = ("probs", logp, wq, None, None, None, eps, reduction, denom, unbatched, where)
    return _reduce(_unbatch(loss, unbatched), reduction, denom), cache


def cross_entropy_backward(grad, cache):
    """dL/dx, shape of x. With p = softmax(x) and c the upstream gradient per element
    (divided by the mean's denominator)::

      indices:       c * [(1-eps) w[t] (p - onehot(t)) + eps/C (p sum_k w[k] - w)]  (0 where ignored)
      probabilities: c * (p sum_k w[k] q[k] - w q)."""
    kind, logp, a, valid, w_t, w, eps, reduction, denom, unbatched, where = _require(cache, "cross_entropy")
    loss_shape = logp.shape[2:] if unbatched else (logp.shape[0], *logp.shape[2:])
    g = _upstream(grad, reduction, loss_shape, logp.dtype, where)
    c = _mean_scale(g, reduction, denom)
    c = np.broadcast_to(c[None] if unbatched else c, (logp.shape[0], *logp.shape[2:]))[:, None]
    p = np.exp(logp)
    if kind == "probs":
        dx = c * (p * np.sum(a, axis=1, keepdims=True) - a)
        return _unbatch(dx, unbatched)
    t_safe, n_classes = a, logp.shape[1]
    hit = c * ((1.0 - eps) * w_t[:, None])                  # coefficient of (p - onehot)
    if eps > 0:
        cv = c * (valid[:, None] * (eps / n_classes))
        w_sum = np.sum(w) if w is not None else n_classes
        dx = p * (hit + cv * w_sum) - (cv * _class_view(w, logp.ndim) if w is not None else cv)
    else:
        dx = p * hit
    np.put_along_axis(dx, t_safe[:, None], np.take_along_axis(dx, t_safe[:, None], axis=1) - hit, axis=1)
    return _unbatch(dx, unbatched)


def _require(cache, where: str):
    if cache is None:
        raise RuntimeError(f"{where}: backward called before forward: there is no cached forward pass")
    return cache


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy (keyword arguments as torch's)."""
    return cross_entropy_forward(x, target, weight, ignore_index, reduction, label_smoothing)[0]


# ---------------------------------------------------------------------------------------
# negative log-likelihood
# ---------------------------------------------------------------------------------------
def nll_loss_forward(x, target, weight=None, ignore_index=-100, reduction="mean", *, where="nll_loss"):
    """x: log-probabilities (N, C, *d) or (C,); target integer (N, *d) or (); weight (C,).
    l = -w[t] x[t] (0 where t == ignore_index); 'mean' divides by the sum of w[t] over
    non-ignored elements. Returns (loss, cache)."""
    check_reduction(reduction, where)
    ignore_index = check_int(where, "ignore_index", ignore_index)
    xb, unbatched = _batched(x, where)
    w = _float_weight(weight, xb.shape[1], x.dtype, where)
    t_safe, valid = _class_targets(target, xb, unbatched, ignore_index, where)
    w_t = (w[t_safe] if w is not None else np.ones(t_safe.shape, x.dtype)) * valid
    loss = -w_t * _pick(xb, t_safe)
    denom = np.sum(w_t, dtype=x.dtype)
    cache = (xb.shape, x.dtype, t_safe, w_t, reduction, denom, unbatched, where)
    return _reduce(_unbatch(loss, unbatched), reduction, denom), cache


def nll_loss_backward(grad, cache):
    """dL/dx[n, t] = -c w[t], zero elsewhere (c: the upstream gradient per element)."""
    shape, dtype, t_safe, w_t, reduction, denom, unbatched, where = _require(cache, "nll_loss")
    g = _upstream(grad, reduction, t_safe.shape[1:] if unbatched else t_safe.shape, dtype, where)
    c = _mean_scale(g, reduction, denom)
    c = c[None] if unbatched and reduction == "none" else c
    dx = np.zeros(shape, dtype)
    np.put_along_axis(dx, t_safe[:, None], (-(c * w_t))[:, None], axis=1)
    return _unbatch(dx, unbatched)


def nll_loss(x, target, weight=None, ignore_index=-100, reduction="mean"):
    """torch.nn.functional.nll_loss (keyword arguments as torch's)."""
    return nll_loss_forward(x, target, weight, ignore_index, reduction)[0]


# ---------------------------------------------------------------------------------------
# regression losses
# ---------------------------------------------------------------------------------------
def mse_loss_forward(x, target, reduction="mean", *, where="mse_loss"):
    """l = (x - target)^2 element-wise; x and target of one shape. Returns (loss, cache)."""
    check_reduction(reduction, where)
    diff = x - _check_same_shape(x, target, where)
    return _reduce(diff * diff, reduction, diff.size), (diff, reduction, where)


def mse_loss_backward(grad, cache):
    """dL/dx = 2 (x - target) c."""
    diff, reduction, where = _require(cache, "mse_loss")
    g = _upstream(grad, reduction, diff.shape, diff.dtype, where)
    return 2.0 * diff * _mean_scale(g, reduction, diff.size)


def mse_loss_target_backward(grad, cache):
    """dL/dtarget = -dL/dx (recorded mode, a target that requires grad, as torch)."""
    return -mse_loss_backward(grad, cache)


def mse_loss(x, target, reduction="mean"):
    """torch.nn.functional.mse_loss."""
    return mse_loss_forward(x, target, reduction)[0]


def l1_loss_forward(x, target, reduction="mean", *, where="l1_loss"):
    """l = |x - target| element-wise; x and target of one shape. Returns (loss, cache)."""
    check_reduction(reduction, where)
    diff = x - _check_same_shape(x, target, where)
    sign = np.where(np.isnan(diff), diff.dtype.type(0), np.sign(diff))   # torch's sgn(NaN) = 0
    return _reduce(np.abs(diff), reduction, diff.size), (sign, reduction, where)


def l1_loss_backward(grad, cache):
    """dL/dx = sign(x - target) c (subgradient 0 at x == target, as torch)."""
    sign, reduction, where = _require(cache, "l1_loss")
    g = _upstream(grad, reduction, sign.shape, sign.dtype, where)
    return sign * _mean_scale(g, reduction, sign.size)


def l1_loss_target_backward(grad, cache):
    """dL/dtarget = -dL/dx (recorded mode, a target that requires grad, as torch)."""
    return -l1_loss_backward(grad, cache)


def l1_loss(x, target, reduction="mean"):
    """torch.nn.functional.l1_loss."""
    return l1_loss_forward(x, target, reduction)[0]


# ---------------------------------------------------------------------------------------
# binary cross-entropy on logits
# ---------------------------------------------------------------------------------------
def _broadcast_weight(w, x: np.ndarray, where: str, name: str):
    if w is None:
        return None
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.number) or w.dtype == bool:
        raise TypeError(f"{where}: expected {name} as a float array, got dtype {w.dtype}")
    try:
        ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{where}: {name} of shape {w.shape} does not broadcast to the input shape {x.shape}")
    return w.astype(x.dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def binary_cross_entropy_with_logits_forward(x, target, weight=None, reduction="mean", pos_weight=None,
                                             *, where="binary_cross_entropy_with_logits"):
    """l = w * [(1 - y) x - (1 + (pw - 1) y) log sigmoid(x)], with
    log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)) (no overflow for any x).
    x, target (y): one shape; weight and pos_weight (pw) broadcast to it (pos_weight
    typically (C,) for x (N, C)). Returns (loss, cache)."""
    check_reduction(reduction, where)
    y = _check_same_shape(x, target, where)
    w = _broadcast_weight(weight, x, where, "weight")
    pw = _broadcast_weight(pos_weight, x, where, "pos_weight")
    log_sig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
    coef = 1.0 + (pw - 1.0) * y if pw is not None else None
    loss = (1.0 - y) * x - (coef * log_sig if coef is not None else log_sig)
    if w is not None:
        loss = loss * w
    # copies: the gradient must not change if the caller writes into x or target before backward
    return _reduce(loss, reduction, loss.size), (x.copy(), np.array(y, copy=True), w, pw, coef, reduction, where)


def binary_cross_entropy_with_logits_backward(grad, cache):
    """dL/dx = c w [(1 + (pw - 1) y) sigmoid(x) - pw y]  (= c w (sigmoid(x) - y) without pw)."""
    x, y, w, pw, coef, reduction, where = _require(cache, "binary_cross_entropy_with_logits")
    g = _upstream(grad, reduction, x.shape, x.dtype, where)
    s = _sigmoid(x)
    dx = coef * s - pw * y if pw is not None else s - y
    if w is not None:
        dx = dx * w
    return dx * _mean_scale(g, reduction, x.size)


def binary_cross_entropy_with_logits_target_backward(grad, cache):
    """dL/dy = c w [-x - (pw - 1) log sigmoid(x)]  (= -c w x without pw), for a target that
    requires grad (recorded mode, as torch)."""
    x, y, w, pw, coef, reduction, where = _require(cache, "binary_cross_entropy_with_logits")
    g = _upstream(grad, reduction, x.shape, x.dtype, where)
    dy = -x if pw is None else -x - (pw - 1.0) * (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))))
    if w is not None:
        dy = dy * w
    return dy * _mean_scale(g, reduction, x.size)


def binary_cross_entropy_with_logits(x, target, weight=None, reduction="mean", pos_weight=None):
    """torch.nn.functional.binary_cross_entropy_with_logits (keyword arguments as torch's)."""
    return binary_cross_entropy_with_logits_forward(x, target, weight, reduction, pos_weight)[0]
