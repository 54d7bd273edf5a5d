"""DistributedSampler: each rank's share of every epoch's seeded permutation, as torch's.

    sampler = DistributedSampler(len(dataset), num_replicas=world_size, rank=rank, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in np.array_split(np.fromiter(sampler, int), steps):   # this rank's indices
            ...

The epoch's order is a permutation drawn from a Generator seeded with (seed, epoch), the same
on every rank. Without drop_last it is padded by repeating its own first indices (cyclically)
up to a multiple of num_replicas; with drop_last its tail is cut to one. Rank r takes the
positions r, r + num_replicas, r + 2 num_replicas, ...: the ranks' shares are disjoint,
equally long, and together cover every sample once (plus the padding).
"""
from __future__ import annotations

import math

import numpy as np


class DistributedSampler:
    """Indices of `num_samples` samples for rank `rank` of `num_replicas` (see the module docstring).
    num_replicas, rank: default the communicator's (convgrad.distributed.init)."""

    def __init__(self, num_samples: int, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .comm import communicator
            comm = communicator()
            num_replicas = comm.Get_size() if num_replicas is None else num_replicas
            rank = comm.Get_rank() if rank is None else rank
        for name, value, low in (("num_samples", num_samples, 1), ("num_replicas", num_replicas, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"DistributedSampler: {name} must be an integer >= {low}, got {value!r}")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be an integer in [0, {num_replicas - 1}], got {rank!r}")
        if drop_last and num_samples < num_replicas:
            raise ValueError(f"DistributedSampler: drop_last with {num_samples} samples leaves nothing for "
                             f"{num_replicas} replicas")
        self.num_samples_total, self.num_replicas, self.rank = int(num_samples), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        per_rank = (self.num_samples_total // self.num_replicas if drop_last
                    else math.ceil(self.num_samples_total / self.num_replicas))
        self.num_samples = per_rank                     # this rank's share, as torch names it
        self.total_size = per_rank * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses."""
        self.epoch = int(epoch)

    def epoch_order(self) -> np.ndarray:
        """The whole padded (or cut) order of this epoch, (total_size,) int64, the same on every rank."""
        n = self.num_samples_total
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size <= n:
            return order[:self.total_size]
        padding = self.total_size - n
        return np.concatenate([order, np.resize(order, padding)])

    def indices(self) -> np.ndarray:
        """This rank's share, (num_samples,) int64."""
        return self.epoch_order()[self.rank::self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(num_samples={self.num_samples_total}, num_replicas={self.num_replicas}, "
                f"rank={self.rank}, shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
