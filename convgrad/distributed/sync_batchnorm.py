"""SyncBatchNorm: batch normalisation whose training statistics are those of the global batch.

Each rank holds a share of the batch. In training, the per-channel sums (and the count) are
added over ranks before the mean, then the squared deviations before the variance, so every
rank normalises with the global batch's mean and biased variance (and updates the running
estimates with the global unbiased variance, as torch). Backward adds sum(dy) and
sum(dy * xhat) over ranks, the two sums through which one sample's gradient depends on the
others'. The weight and bias gradients stay this rank's part: DistributedDataParallel
combines them with the other parameters'. The math is convgrad.functional.batch_norm's,
given a cross-rank sum; in eval mode this is BatchNorm.
"""
from __future__ import annotations

from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from . import comm as _comm


class SyncBatchNorm(_BatchNorm):
    """x (N, C, *spatial) -> same shape, N this rank's share; statistics per channel over the
    samples (and positions) of every rank. Arguments as BatchNorm2d; comm: an mpi4py
    communicator (default the one distributed.init() chose)."""
    ranks = (2, 3, 4, 5)
    layout = "(N, C, *spatial)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None,
                 comm=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        object.__setattr__(self, "comm", comm)

    def _batch_sum(self):
        comm = self.comm or _comm.communicator()
        return lambda vector: _comm.allreduce_sum(vector, comm)


def convert_sync_batchnorm(module: Module, comm=None) -> Module:
    """Replace every BatchNorm1d/2d/3d in `module` (or `module` itself) by a SyncBatchNorm with
    the same settings, the same Parameter objects (an optimiser built before keeps working) and
    the same buffers. Returns the module (the new one when `module` itself is a BatchNorm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats, comm=comm)
        sync.weight, sync.bias = module.weight, module.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(sync, name, getattr(module, name))
        sync.train(module.training)
        return sync
    for name, child in list(module._modules.items()):
        converted = convert_sync_batchnorm(child, comm)
        if converted is not child:          # in place: setattr would move the child to the end
            module._modules[name] = converted
            object.__setattr__(module, name, converted)
    return module
