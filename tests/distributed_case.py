"""The model, data and batches that test_distributed.py trains in one process and mpi_worker.py
trains on P ranks: the same global batches either way."""
import numpy as np

from convgrad import nn, optim
from convgrad.distributed import DistributedSampler

STEPS = 3
SAMPLES = 40          # shards padded for P = 3 (40 is no multiple of 3)
LOCAL_BATCH = 4


GLOBAL_BATCH = 11     # GlobalBatch case: shares of 5+6 (P = 2) and 3+4+4 (P = 3) rows
THREADS_BATCH = 25    # shares of 12+13 and 8+8+9 rows: DataParallel splits each in two (MIN_PART = 4)


def build(batchnorm: bool, seed: int = 0, dropout: bool = False):
    g = np.random.default_rng(seed)
    norm2d = [nn.BatchNorm2d(6, dtype=np.float64)] if batchnorm else []
    norm1d = [nn.BatchNorm1d(16, dtype=np.float64)] if batchnorm else []
    drop = [nn.Dropout(0.3, generator=5)] if dropout else []
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1, generator=g), *norm2d, nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, generator=g), nn.ReLU(), nn.Flatten(), *drop,
                          nn.Linear(8 * 2 * 2, 16, generator=g), *norm1d, nn.ReLU(), nn.Linear(16, 5, generator=g))
    model.double()
    for m in model.modules():           # non-trivial affine parameters, so their gradients matter
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.weight.data = g.uniform(0.5, 1.5, m.weight.shape)
            m.bias.data = g.uniform(-0.5, 0.5, m.bias.shape)
    return model


def sgd(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def data():
    g = np.random.default_rng(7)
    return g.standard_normal((SAMPLES, 2, 8, 8)), g.integers(0, 5, SAMPLES)


def local_batches(rank: int, world: int):
    """This rank's index batches for STEPS steps (epochs follow one another)."""
    sampler = DistributedSampler(SAMPLES, num_replicas=world, rank=rank, seed=3)
    batches, epoch = [], 0
    while len(batches) < STEPS:
        sampler.set_epoch(epoch)
        idx = sampler.indices()
        batches += [idx[i:i + LOCAL_BATCH] for i in range(0, len(idx) - LOCAL_BATCH + 1, LOCAL_BATCH)]
        epoch += 1
    return batches[:STEPS]


def global_batches(world: int):
    """The union of every rank's batch, step by step: what one process trains on."""
    per_rank = [local_batches(r, world) for r in range(world)]
    return [np.concatenate([per_rank[r][s] for r in range(world)]) for s in range(STEPS)]


def whole_batches(size: int = GLOBAL_BATCH):
    """The GlobalBatch cases: every rank is given these whole batches (as `convgrad train` does)."""
    g = np.random.default_rng(11)
    return [g.permutation(SAMPLES)[:size] for _ in range(STEPS)]
