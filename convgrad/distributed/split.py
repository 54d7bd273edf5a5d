"""GlobalBatch: every rank is given the whole batch, computes its share, and returns the whole output.

    runner = GlobalBatch(model)            # wraps it in DistributedDataParallel(reduce="sum")
    logits = runner(x)                     # x (N, ...) the same on every rank -> (N, classes), gathered
    loss = loss_fn(logits, y)              # the whole batch's loss, the same number on every rank
    runner.backward(loss_fn.backward(), input_grad=False)

Rank r of P computes rows [N r / P, N (r + 1) / P) (shares differ by at most one row). The
output gradient of the whole batch is already scaled by 1/N, so the sum over ranks of the
shares' parameter gradients is the whole batch's gradient: the wrapped DistributedDataParallel
adds (reduce="sum"), whatever the shares' sizes. This is what `convgrad train` uses: the data
loader, its seeded order and augmentation, the loss and the metrics stay those of one process,
and the same batches give the same training up to the order of float additions (dropout
draws the whole batch's mask on every rank and keeps its share's rows). Each rank
loads the whole batch (cheap next to the model); the logits gathered are N x classes numbers.
"""
from __future__ import annotations

import numpy as np

from ..nn.dropout import _DropoutNd
from ..nn.module import Module
from . import comm as _comm
from .ddp import DistributedDataParallel


class GlobalBatch(Module):
    """Runs `module` on this rank's share of each (whole) batch; see the module docstring.
    module: a Module (wrapped in DistributedDataParallel(reduce="sum")) or such a wrapper already.
    forward: x (N, ...) -> (N, ...); backward: grad_out (N, ...) -> dx (N, ...) or None."""

    def __init__(self, module: Module, comm=None, **ddp_options):
        super().__init__()
        if not isinstance(module, DistributedDataParallel):
            module = DistributedDataParallel(module, reduce="sum", comm=comm, **ddp_options)
        elif module.reduce != "sum":
            raise ValueError("GlobalBatch: the DistributedDataParallel it wraps must use reduce='sum'")
        self.module = module
        object.__setattr__(self, "comm", module.comm)
        object.__setattr__(self, "_share", None)

    def share(self, n: int) -> slice:
        """This rank's rows of a batch of n."""
        rank, world = self.comm.Get_rank(), self.comm.Get_size()
        return slice(n * rank // world, n * (rank + 1) // world)

    def forward(self, x):
        """x (N, ...) -> module output for all N rows (this rank computes its share)."""
        world = self.comm.Get_size()
        if len(x) < world:
            raise ValueError(f"GlobalBatch: a batch of {len(x)} samples cannot give each of {world} ranks a share; "
                             f"every batch needs at least {world}")
        share = self.share(len(x))
        object.__setattr__(self, "_share", (share, len(x)))
        dropouts = [m for m in self.modules() if isinstance(m, _DropoutNd)]
        for m in dropouts:                      # draws the whole batch's mask, keeps this share's rows
            m.batch_rows = (share, len(x))
        try:
            y = self.module(x[share])
        finally:
            for m in dropouts:
                m.batch_rows = None
        return _comm.allgather_rows(y, self.comm)

    def backward(self, grad_out, input_grad: bool = True):
        """grad_out (N, ...) of the whole output -> dx (N, ...) gathered (None with input_grad=False)."""
        if self._share is None:
            raise RuntimeError("GlobalBatch.backward() called before forward()")
        share, n = self._share
        if not isinstance(grad_out, np.ndarray) or grad_out.ndim < 1 or len(grad_out) != n:
            raise ValueError(f"GlobalBatch backward: expected grad_output with {n} rows (the forward's batch), "
                             f"got {getattr(grad_out, 'shape', type(grad_out).__name__)}")
        dx = self.module.backward(grad_out[share], input_grad)
        return _comm.allgather_rows(dx, self.comm) if input_grad else None

    @property
    def stats(self) -> dict:
        """The wrapped DistributedDataParallel's reduction statistics (its `stats`)."""
        return self.module.stats

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        self.module.load_state_dict(state, strict)
