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
    """Cross-entropy of logits: pred (N, C) / (N, C, d1, ...) / (C,); target integer
    class indices (N,) / (N, d1, ...) / () or class probabilities of pred's shape.
    weight (C,) rescales classes; 'mean' divides by the summed weight of the non-ignored
    targets (by the element count for probability targets), as torch."""
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
    """Negative log-likelihood: pred log-probabilities (N, C) / (N, C, d1, ...) / (C,);
    target integer class indices (N,) / (N, d1, ...) / (). 'mean' divides by the summed
    weight of the non-ignored targets."""
    _backward_fn = staticmethod(F.nll_loss_backward)

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = check_int("NLLLoss", "ignore_index", ignore_index)

    def _forward(self, pred, target):
        return F.nll_loss_forward(pred, target, self.weight, self.ignore_index, self.reduction, where="NLLLoss")


class MSELoss(_Loss):
    """(pred - target)^2; pred and target of one shape (any)."""
    _backward_fn = staticmethod(F.mse_loss_backward)

    def _forward(self, pred, target):
        return F.mse_loss_forward(pred, target, self.reduction, where="MSELoss")


class L1Loss(_Loss):
    """|pred - target|; pred and target of one shape (any). Subgradient 0 at pred == target."""
    _backward_fn = staticmethod(F.l1_loss_backward)

    def _forward(self, pred, target):
        return F.l1_loss_forward(pred, target, self.reduction, where="L1Loss")


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, stable for any logit: pred and target (probabilities
    in [0, 1]) of one shape; weight broadcasts to it, pos_weight (typically (C,) for
    pred (N, C)) weights the positive term."""
    _backward_fn = staticmethod(F.binary_cross_entropy_with_logits_backward)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _as_buffer(weight, "BCEWithLogitsLoss", "weight"))
        self.register_buffer("pos_weight", _as_buffer(pos_weight, "BCEWithLogitsLoss", "pos_weight"))

    def _forward(self, pred, target):
        return F.binary_cross_entropy_with_logits_forward(pred, target, self.weight, self.reduction,
                                                          self.pos_weight, where="BCEWithLogitsLoss")
