"""Data-parallel training across processes (and machines) on MPI (mpi4py), as torch.distributed:

    from convgrad import distributed
    rank, world_size = distributed.init()                  # under mpiexec -n P
    model = distributed.DistributedDataParallel(distributed.convert_sync_batchnorm(model))
    sampler = distributed.DistributedSampler(len(images), seed=0)

comm.py (the communicator, polled non-blocking collectives), ddp.py (DistributedDataParallel,
bucketed gradient allreduce), sampler.py (DistributedSampler), sync_batchnorm.py
(SyncBatchNorm, convert_sync_batchnorm), split.py (GlobalBatch: every rank given the whole
batch computes its share; what `convgrad train` uses), training.py (`convgrad train` under
mpiexec). Needs the `distributed` extra: pip install 'convgrad[distributed]'.
"""
from .comm import communicator, init, launched_by_mpi
from .split import GlobalBatch
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

__all__ = ["init", "communicator", "launched_by_mpi", "DistributedDataParallel", "GlobalBatch", "DistributedSampler",
           "SyncBatchNorm", "convert_sync_batchnorm"]
