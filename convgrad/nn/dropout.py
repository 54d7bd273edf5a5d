"""Dropout and Dropout2d: inverted dropout (kept units scaled by 1/(1-p)), identity in eval.

The mask is drawn from a numpy Generator: `generator` None uses the library's global one
(seeded by convgrad.manual_seed), an int seed or a Generator makes runs reproducible.
backward() multiplies by the very mask of the last forward.
"""
from __future__ import annotations

import warnings

from .._checks import check_bool, check_generator
from ..batch_parts import current_part
from ..functional import dense as F
from . import init
from .module import Module


class _DropoutNd(Module):
    _channelwise = False

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        self.p = F.check_p(p, type(self).__name__)
        self.inplace = check_bool(type(self).__name__, "inplace", inplace)
        generator = check_generator(type(self).__name__, generator)
        self._generator = None if generator is None else init.make_rng(generator)
        self._cache = None
        self.batch_rows = None      # (slice, N): the input is these rows of a batch of N (distributed.GlobalBatch)
                                    # (a thread's part of them under DataParallel: batch_parts.py)

    def _check_rank(self, x):
        pass

    def forward(self, x):
        self._check_rank(x)
        rng = self._generator if self._generator is not None else init.make_rng(None)
        rows, share = self.batch_rows, None
        part = current_part()
        if part is not None:                    # a thread's part of the batch (of this process's rows)
            first = 0 if rows is None else rows[0].start
            rows = (slice(first + part.rows.start, first + part.rows.stop), part.n if rows is None else rows[1])
            share = part.from_first
        y, self._cache = F.dropout_forward(x, self.p, self.training, rng, self._channelwise,
                                           where=type(self).__name__, rows=rows, share=share)
        return y

    def backward(self, grad_out):
        """grad_out (the input's shape) -> grad_out * mask (the forward's mask, already scaled)."""
        return F.dropout_backward(grad_out, self._cached(self._cache))

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Inverted dropout: zero each element with probability p in training, scale the rest by 1/(1-p).

    In training ``y = x * mask / (1 - p)`` with ``mask`` drawn Bernoulli(1 - p) per element, so the
    expected value of y is x; in eval mode (``model.eval()``) ``y = x``. The backward pass multiplies
    dy by the very mask of the last forward.

    Args:
        p (float): the probability of zeroing an element, in [0, 1]. Default: 0.5.
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.
        generator: None (the global generator, :func:`convgrad.manual_seed`), an int seed or a numpy
            Generator from which the masks are drawn.

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, the input's shape.

    Example:
        >>> drop = nn.Dropout(p=0.5, generator=0)
        >>> y = drop(np.ones((4, 1000)))
        >>> sorted(set(y.ravel().tolist()))          # kept elements are scaled by 1/(1-p)
        [0.0, 2.0]
        >>> _ = drop.eval()
        >>> drop(np.ones(3))
        array([1., 1., 1.])
    """


class Dropout2d(_DropoutNd):
    """Channel dropout: zero whole feature maps with probability p in training, scale the rest by 1/(1-p).

    One Bernoulli(1 - p) draw per (sample, channel): ``y[n, c] = x[n, c] * mask[n, c] / (1 - p)``;
    identity in eval mode. Neighbouring pixels of a feature map are strongly correlated, so dropping
    single pixels regularises little; dropping whole maps does. A 3-D input is taken as
    ``(N, C, L)`` with torch's warning (torch 2.x behaviour).

    Args:
        p (float): the probability of zeroing a channel, in [0, 1]. Default: 0.5.
        inplace (bool): accepted for torch compatibility; the input is never modified. Default: False.
        generator: None, an int seed or a numpy Generator from which the masks are drawn.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``

    Example:
        >>> drop = nn.Dropout2d(p=0.5, generator=1)
        >>> y = drop(np.ones((2, 8, 5, 5)))
        >>> kept = y[:, :, 0, 0] > 0
        >>> bool(np.all(y[kept] == 2.0)) and bool(np.all(y[~kept] == 0.0))   # whole maps kept or zeroed
        True
    """
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
