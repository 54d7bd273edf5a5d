"""Loss layers with torch's names, arguments and buffers.

    loss = criterion(pred, target)     # forward: a NumPy scalar for 'mean'/'sum', an array for 'none'
    dpred = criterion.backward()       # dLoss/dpred, pred's shape; for 'none' pass the upstream
                                       # gradient of the loss's shape (default ones)

size_average / reduce are torch's deprecated arguments, accepted in their positions and
mapped onto reduction as torch does.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._checks import check_int, check_real
from .._dtype import get_default_dtype
from ..functional import loss as F
from .module import Module


def _legacy_reduction(size_average, reduce, reduction: str, where: str) -> str:
    """torch's mapping of the deprecated size_average/reduce pair onto reduction."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn(f"{where}: size_average and reduce are deprecated; use reduction", DeprecationWarning,
                  stacklevel=4)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _as_buffer(value, where: str, name: str):
    """A float array for a weight-like buffer (lists and int arrays become the default dtype)."""
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except ValueError as exc:          # ragged nested lists
        raise TypeError(f"{where}: expected {name} as a float array, got {value!r}") from exc
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{where}: expected {name} as a float array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(get_default_dtype())
    return arr.copy()


class _Loss(Module):
    """forward(pred, target) -> loss; backward(grad_out=None) -> dLoss/dpred."""
    _backward_fn = None
    _target_backward_fn = None

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        where = type(self).__name__
        self.reduction = F.check_reduction(_legacy_reduction(size_average, reduce, reduction, where), where)
        self._cache = None

    def _forward(self, pred, target):
        raise NotImplementedError

    def forward(self, pred, target):
        loss, self._cache = self._forward(pred, target)
        return loss

    def backward(self, grad_out=None):
        """grad_out: None (= 1, or ones for reduction='none'), a scalar, or for 'none' an
        array of the loss's shape. Returns dLoss/dpred of pred's shape."""
        return type(self)._backward_fn(grad_out, self._cached(self._cache))

    def target_backward(self, grad_out=None):
        """dLoss/dtarget, for a target that requires grad in recorded mode (as torch); None for a
        loss whose target gets no gradient (class indices)."""
        fn = type(self)._target_backward_fn
        return None if fn is None else fn(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        w = _as_buffer(weight, type(self).__name__, "weight")
        if w is not None and w.ndim != 1:
            raise ValueError(f"{type(self).__name__}: expected weight of shape (C,), got {w.shape}")
        self.register_buffer("weight", w)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy between logits and target classes (log-softmax and negative log-likelihood in one).

    For class-index targets, per element ``l = -w[t] * log_softmax(pred)[t]``, and with label smoothing
    eps the target is ``(1 - eps) * onehot(t) + eps / C``; for probability targets
    ``l = -sum_c w[c] * q[c] * log_softmax(pred)[c]``. ``'mean'`` divides by the summed weight of the
    non-ignored targets (by the element count for probability targets), as torch. The gradient is
    ``softmax(pred) - target`` (weighted, scaled by the mean's denominator).
    ``backward(grad_out=None)`` returns dLoss/dpred (pred's shape); grad_out defaults to 1 (ones for
    ``reduction='none'``).

    Args:
        weight (array or None): ``(C,)`` per-class weights. Default: None (all 1).
        ignore_index (int): targets with this class contribute nothing. Default: -100.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-element losses). Default: ``'mean'``.
        size_average, reduce: torch's deprecated pair, mapped onto reduction as torch does.
        label_smoothing (float): eps in [0, 1]. Default: 0.0.

    Shape:
        - Input (pred): ``(N, C)``, ``(N, C, d1, ..., dK)`` or ``(C,)``: logits.
        - Target: class indices ``(N,)``, ``(N, d1, ..., dK)`` or ``()``, in [0, C); or class
          probabilities of pred's shape.
        - Output: a scalar; with ``reduction='none'`` the target's shape (without C).

    Example:
        >>> loss_fn = nn.CrossEntropyLoss()
        >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> round(float(loss_fn(logits, np.array([0, 2]))), 4)     # (log(1 + 2/e^2) + log(3)) / 2
        0.6691
        >>> loss_fn.backward().round(4)              # (softmax - onehot) / N
        array([[-0.1065,  0.0533,  0.0533],
               [ 0.1667,  0.1667, -0.3333]])
    """
    _backward_fn = staticmethod(F.cross_entropy_backward)

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = check_int("CrossEntropyLoss", "ignore_index", ignore_index)
        self.label_smoothing = check_real("CrossEntropyLoss", "label_smoothing", label_smoothing,
                                          minimum=0.0, maximum=1.0)

    def _forward(self, pred, target):
        return F.cross_entropy_forward(pred, target, self.weight, self.ignore_index, self.reduction,
                                       self.label_smoothing, where="CrossEntropyLoss")


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of target classes, given log-probabilities (e.g. from LogSoftmax).

    Per element ``l = -w[t] * pred[t]``; ``'mean'`` divides by the summed weight of the non-ignored
    targets. The gradient is ``-w[t]`` at the target class and 0 elsewhere.
    ``backward(grad_out=None)`` returns dLoss/dpred (pred's shape); grad_out defaults to 1 (ones for
    ``reduction='none'``).

    Args:
        weight (array or None): ``(C,)`` per-class weights. Default: None (all 1).
        ignore_index (int): targets with this class contribute nothing. Default: -100.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-element losses). Default: ``'mean'``.
        size_average, reduce: torch's deprecated pair, mapped onto reduction as torch does.

    Shape:
        - Input (pred): ``(N, C)``, ``(N, C, d1, ..., dK)`` or ``(C,)``: log-probabilities.
        - Target: class indices ``(N,)``, ``(N, d1, ..., dK)`` or ``()``.
        - Output: a scalar; with ``reduction='none'`` the target's shape.

    Example:
        >>> loss_fn = nn.NLLLoss()
        >>> log_p = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
        >>> round(float(loss_fn(log_p, np.array([0, 2]))), 4)   # -(log 0.5 + log 0.8) / 2
        0.4581
        >>> loss_fn.backward()
        array([[-0.5,  0. ,  0. ],
               [ 0. ,  0. , -0.5]])
    """
    _backward_fn = staticmethod(F.nll_loss_backward)

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = check_int("NLLLoss", "ignore_index", ignore_index)

    def _forward(self, pred, target):
        return F.nll_loss_forward(pred, target, self.weight, self.ignore_index, self.reduction, where="NLLLoss")


class MSELoss(_Loss):
    """Mean squared error.

    Per element ``l = (pred - target)^2``, averaged or summed by reduction; the gradient is
    ``2 * (pred - target)`` (divided by the element count for ``'mean'``).
    ``backward(grad_out=None)`` returns dLoss/dpred (pred's shape); grad_out defaults to 1 (ones for
    ``reduction='none'``).

    Args:
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-element losses). Default: ``'mean'``.
        size_average, reduce: torch's deprecated pair, mapped onto reduction as torch does.

    Shape:
        - Input (pred): ``(*)``, any shape.
        - Target: pred's shape.
        - Output: a scalar; with ``reduction='none'`` pred's shape.

    Example:
        >>> loss_fn = nn.MSELoss()
        >>> float(loss_fn(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 0.0])))
        4.333333333333333
        >>> loss_fn.backward()
        array([0.        , 1.33333333, 2.        ])
    """
    _backward_fn = staticmethod(F.mse_loss_backward)
    _target_backward_fn = staticmethod(F.mse_loss_target_backward)

    def _forward(self, pred, target):
        return F.mse_loss_forward(pred, target, self.reduction, where="MSELoss")


class L1Loss(_Loss):
    """Mean absolute error.

    Per element ``l = abs(pred - target)``; the gradient is ``sign(pred - target)`` (0 where they are
    equal), divided by the element count for ``'mean'``.
    ``backward(grad_out=None)`` returns dLoss/dpred (pred's shape); grad_out defaults to 1 (ones for
    ``reduction='none'``).

    Args:
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-element losses). Default: ``'mean'``.
        size_average, reduce: torch's deprecated pair, mapped onto reduction as torch does.

    Shape:
        - Input (pred): ``(*)``, any shape.
        - Target: pred's shape.
        - Output: a scalar; with ``reduction='none'`` pred's shape.

    Example:
        >>> loss_fn = nn.L1Loss(reduction="sum")
        >>> float(loss_fn(np.array([1.0, 2.0, -3.0]), np.array([1.0, 0.0, 0.0])))
        5.0
        >>> loss_fn.backward()
        array([ 0.,  1., -1.])
    """
    _backward_fn = staticmethod(F.l1_loss_backward)
    _target_backward_fn = staticmethod(F.l1_loss_target_backward)

    def _forward(self, pred, target):
        return F.l1_loss_forward(pred, target, self.reduction, where="L1Loss")


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (a sigmoid and the binary cross-entropy in one, stable for any logit).

    Per element ``l = -w * (pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))`` with
    logits ``x`` and target probabilities ``y``, computed as ``softplus`` terms that never overflow.
    Without pos_weight the gradient is ``w * (sigmoid(x) - y)``.
    ``backward(grad_out=None)`` returns dLoss/dpred (pred's shape); grad_out defaults to 1 (ones for
    ``reduction='none'``).

    Args:
        weight (array or None): broadcasts to pred's shape; rescales each element. Default: None.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-element losses). Default: ``'mean'``.
        size_average, reduce: torch's deprecated pair, mapped onto reduction as torch does.
        pos_weight (array or None): weights the positive term, typically ``(C,)`` for pred ``(N, C)``
            (broadcast along the last axis). Default: None.

    Shape:
        - Input (pred): ``(*)``, any shape: logits.
        - Target: pred's shape, probabilities in [0, 1].
        - Output: a scalar; with ``reduction='none'`` pred's shape.

    Example:
        >>> loss_fn = nn.BCEWithLogitsLoss()
        >>> round(float(loss_fn(np.array([0.0, 1000.0]), np.array([1.0, 1.0]))), 4)   # log(2) / 2
        0.3466
        >>> loss_fn.backward()
        array([-0.25,  0.  ])
    """
    _backward_fn = staticmethod(F.binary_cross_entropy_with_logits_backward)
    _target_backward_fn = staticmethod(F.binary_cross_entropy_with_logits_target_backward)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _as_buffer(weight, "BCEWithLogitsLoss", "weight"))
        self.register_buffer("pos_weight", _as_buffer(pos_weight, "BCEWithLogitsLoss", "pos_weight"))

    def _forward(self, pred, target):
        return F.binary_cross_entropy_with_logits_forward(pred, target, self.weight, self.reduction,
                                                          self.pos_weight, where="BCEWithLogitsLoss")
