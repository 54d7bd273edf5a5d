"""Dropout and Dropout2d: inverted dropout (kept units scaled by 1/(1-p)), identity in eval.

The mask is drawn from a numpy Generator: `generator` None uses the library's global one
(seeded by convgrad.manual_seed), an int seed or a Generator makes runs reproducible.
backward() multiplies by the very mask of the last forward.
"""
from __future__ import annotations

import warnings

from ..functional import dense as F
from . import init
from .module import Module


class _DropoutNd(Module):
    _channelwise = False

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        self.p = F.check_p(p, type(self).__name__)
        self.inplace = inplace
        self._generator = None if generator is None else init.make_rng(generator)
        self._cache = None
        self.batch_rows = None      # (slice, N): the input is these rows of a batch of N (distributed.GlobalBatch)

    def _check_rank(self, x):
        pass

    def forward(self, x):
        self._check_rank(x)
        rng = self._generator if self._generator is not None else init.make_rng(None)
        y, self._cache = F.dropout_forward(x, self.p, self.training, rng, self._channelwise,
                                           where=type(self).__name__, rows=self.batch_rows)
        return y

    def backward(self, grad_out):
        """grad_out (the input's shape) -> grad_out * mask (the forward's mask, already scaled)."""
        return F.dropout_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p, scale the rest by 1/(1-p). Any shape."""


class Dropout2d(_DropoutNd):
    """Zero whole channels: x (N, C, H, W), one draw per (n, c), scale by 1/(1-p).
    A 3-D input is taken as (N, C, L) with torch's warning (torch 2.x behaviour)."""
    _channelwise = True

    def _check_rank(self, x):
        ndim = getattr(x, "ndim", None)
        if ndim == 3:
            warnings.warn("Dropout2d: received a 3-D input; as torch does, it is taken as (N, C, L) and "
                          "whole (n, c) rows are dropped. Use a 4-D (N, C, H, W) input for 2-D "
                          "channel dropout.", UserWarning, stacklevel=3)
        elif ndim is not None and ndim != 4:
            raise ValueError(f"Dropout2d: expected input of rank 4 (N, C, H, W), got shape {x.shape} "
                             f"(rank {ndim})")
