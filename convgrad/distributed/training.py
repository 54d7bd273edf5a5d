"""`convgrad train` under mpiexec: the Trainer on P ranks (convgrad/train.py does the rest).

    mpiexec -n 2 convgrad train --model cnn ...        # detected from the MPI environment
    convgrad train --distributed ...                  # or asked for explicitly

Every rank builds the same loaders (same seed, order and augmentation) and the same model;
the model runs as GlobalBatch(DistributedDataParallel(...)) (split.py): each rank computes its
share of every batch, gradients are summed over ranks, so P ranks train on the global batch
--batch-size as one process does. BatchNorm becomes SyncBatchNorm; dropout masks are drawn
for the whole batch on every rank, so every random state stays the same on all ranks.
Evaluation is sharded the same way and its logits gathered, so every rank holds the metrics.
Rank 0 alone writes the run directory (atomically, as always) and prints; every rank resumes
from its checkpoint. --threads defaults to the CPUs divided among the ranks on one node, and
BLAS is held to that many. A rank that dies makes mpiexec end the job: rank 0 gets SIGTERM and
says which checkpoint is intact (see run()).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

from ..parallel import DataParallel, available_cpus
from ..train import Trainer, evaluate
from . import comm as _comm
from .split import GlobalBatch
from .sync_batchnorm import convert_sync_batchnorm


class JobEnded(Exception):
    """mpiexec is ending the job (SIGTERM on rank 0): another rank died or the job was stopped."""


def ranks_on_this_node(comm) -> int:
    MPI = _comm.mpi()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def limit_threads(threads: int) -> None:
    """Hold this rank's BLAS and convgrad's intra-op threads to `threads`: P ranks each starting
    OpenBLAS's full pool oversubscribe the cores (its idle threads spin)."""
    from .. import set_num_threads
    set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads, user_api="blas")


class DistributedTrainer(Trainer):
    """Trainer on every rank of the communicator (see the module docstring)."""

    def __init__(self, cfg, resume: bool = False, progress: bool = True, log=print):
        comm = _comm.communicator()
        self.rank, self.world = comm.Get_rank(), comm.Get_size()
        if cfg.threads is None:
            cfg.threads = max(1, available_cpus() // ranks_on_this_node(comm))
        limit_threads(cfg.threads)
        writer = self.rank == 0
        super().__init__(cfg, resume=False, progress=progress and writer, log=log if writer else _silent)
        self._check_batches()
        convert_sync_batchnorm(self.model)          # the same Parameters: the optimiser keeps them
        inner = self.model if cfg.threads == 1 else DataParallel(self.model, cfg.threads)
        self.runner = GlobalBatch(inner, comm)
        self.log(f"data-parallel over {self.world} MPI rank(s) x {cfg.threads} thread(s): each batch of "
                 f"{cfg.batch_size} split across the ranks, rank 0 writes {cfg.out}")
        if resume:
            self._restore()

    def _check_batches(self) -> None:
        for name, loader in (("training", self.train_loader), ("test", self.test_loader)):
            smallest = len(loader.labels) - (len(loader) - 1) * loader.batch_size     # the last batch
            if smallest < self.world:
                raise ValueError(f"convgrad train: with {self.world} ranks every batch needs at least {self.world} "
                                 f"images, but a {name} batch has {smallest}: choose another --batch-size "
                                 f"(or --limit-train/--limit-test)")

    def save(self) -> None:
        if self.rank == 0:
            super().save()

    def run(self) -> list:
        """Train (every rank); on rank 0, mpiexec's SIGTERM ends it with JobEnded naming the intact checkpoint."""
        with self._sigterm_ends_job():
            history = super().run()
            if self.test_predictions is None:       # resumed after the last epoch: the plots need them
                _, _, self.test_predictions = evaluate(self.runner, self.test_loader)
        return history

    @contextlib.contextmanager
    def _sigterm_ends_job(self):
        if self.rank != 0:
            yield
            return

        def ended(signum, frame):
            where = (f"The checkpoint {self.checkpoint_path} (after epoch {self.epoch}) is intact: run the same "
                     f"command with --resume to continue." if self.epoch else
                     "No checkpoint had been written yet (the first epoch had not finished).")
            raise JobEnded(f"convgrad train: mpiexec is ending the job (SIGTERM) during epoch {self.epoch + 1}: "
                           f"another rank died or the job was stopped (mpiexec's message names the rank). {where}")
        previous = signal.signal(signal.SIGTERM, ended)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def _silent(*args, **kwargs) -> None:
    pass


def run_train_command(train, args) -> int:
    """Run the command's `train(args, trainer_class)` on every rank: ranks other than 0 print
    nothing and draw no plots; an error on any rank ends the job (MPI_Abort) after that rank
    says what went wrong; on rank 0 a job ended by mpiexec says which checkpoint is intact."""
    try:
        _comm.init()
    except ImportError as exc:
        print(f"convgrad train: {exc}", file=sys.stderr)
        return 2
    comm = _comm.communicator()
    rank, world = comm.Get_rank(), comm.Get_size()
    if rank:
        args.no_plots, args.no_progress = True, True
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if rank else sys.stdout):
            return train(args, DistributedTrainer)
    except JobEnded as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    except Exception as exc:            # this rank cannot go on; the others would wait for it forever
        if world == 1:
            raise
        print(f"convgrad train (rank {rank} of {world}): {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        comm.Abort(1)
        return 1
