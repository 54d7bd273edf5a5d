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
says which checkpoint is intact (see DistributedTrainer.fit). The "stop now?" (SIGINT on rank 0)
and "checkpoint now?" decisions are rank 0's, broadcast every step, so the ranks never diverge.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

from .. import checkpoint, rundir
from ..parallel import DataParallel, available_cpus
from ..stepping import is_explicit
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
    """Trainer on every rank of the communicator (see the module docstring). Takes Trainer's
    arguments; the model must be explicit (its own backward: GlobalBatch splits its batches)."""

    stop_signals = (signal.SIGINT,)     # SIGTERM on rank 0 is mpiexec ending the job (see fit)

    def __init__(self, model, optimizer, loss_fn, out: str = "runs/run", *, threads: int = 1, **options):
        self.comm = _comm.communicator()
        self.rank, self.world = self.comm.Get_rank(), self.comm.Get_size()
        limit_threads(threads)
        if not is_explicit(model):          # checked before the run directory is claimed
            raise ValueError("convgrad train under mpiexec needs a model with its own backward; this one is "
                             "forward-only (recorded mode), which is not supported across ranks yet")
        if self.rank:
            options.update(progress=False, log=_silent)
        super().__init__(model, optimizer, loss_fn, out, threads=threads, **options)
        convert_sync_batchnorm(model)           # the same Parameters: the optimiser keeps them
        self.runner = GlobalBatch(model if threads == 1 else DataParallel(model, threads), self.comm)
        self._saved = None                      # what the last checkpoint holds (rank 0)
        self.log(f"data-parallel over {self.world} MPI rank(s) x {threads} thread(s): each batch split "
                 f"across the ranks, rank 0 writes {self.out}")

    # ---- rank 0 decides, every rank follows ------------------------------------------------
    def _claim(self, out: str, **how) -> str:
        self.comm.Barrier()         # every rank has checked its arguments (is --out used?) before the claim
        claimed = error = None
        if self.rank == 0:
            try:
                claimed = super()._claim(out, **how)
            except Exception as exc:        # every rank raises it, none waits for the others
                error = exc
        claimed, error = self.comm.bcast((claimed, error), root=0)
        if error is not None:
            raise error
        return claimed

    def _stop_signal(self, stop) -> str | None:
        stop.signal = self.comm.bcast(stop.signal if self.rank == 0 else None, root=0)
        return stop.signal

    def _checkpoint_due(self) -> bool:
        return self.comm.bcast(super()._checkpoint_due() if self.rank == 0 else None, root=0)

    # ---- rank 0 alone writes ----------------------------------------------------------------
    def save(self, best: bool = False) -> None:
        if self.rank == 0:
            super().save(best)
            self._saved = (f"after epoch {self.epoch}" if self.partial is None else
                           f"at step {self.step}, epoch {self.epoch + 1}")

    def _final_results(self) -> None:
        if self.rank == 0:
            return super()._final_results()
        if self.test_loader is None or not self.history or self.best is None:
            return
        if self.best["epoch"] != self.history[-1]["epoch"]:     # rank 0 evaluates the best model: join it
            current = self.model.state_dict()
            self.model.load_state_dict(checkpoint.load(os.path.join(self.out, rundir.BEST))["model"])
            evaluate(self.runner, self.test_loader)
            self.model.load_state_dict(current)

    def _plots(self) -> None:
        if self.test_loader is not None and self.test_predictions is None:      # a sharded evaluation
            _, _, self.test_predictions = evaluate(self.runner, self.test_loader)
        if self.rank == 0:
            super()._plots()

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs: int = 1, test_loader=None) -> list:
        """Train (every rank); on rank 0, mpiexec's SIGTERM ends it with JobEnded naming the intact checkpoint."""
        for name, loader in (("training", train_loader), ("validation", val_loader), ("test", test_loader)):
            if loader is not None:
                self._check_batches(name, loader)
        if test_loader is None and val_loader is not None and self.plots:
            raise ValueError("a distributed run's plots need a test loader")
        with self._sigterm_ends_job():
            return super().fit(train_loader, val_loader, epochs, test_loader)

    def _check_batches(self, name: str, loader) -> None:
        smallest = len(loader.labels) - (len(loader) - 1) * loader.batch_size     # the last batch
        if smallest < self.world:
            raise ValueError(f"convgrad train: with {self.world} ranks every batch needs at least {self.world} "
                             f"images, but a {name} batch has {smallest}: choose another --batch-size "
                             f"(or --limit-train/--limit-test)")

    @contextlib.contextmanager
    def _sigterm_ends_job(self):
        if self.rank != 0:
            yield
            return

        def ended(signum, frame):
            where = (f"The checkpoint {self.checkpoint_path} ({self._saved}) is intact: run the same "
                     f"command with --resume to continue." if self._saved else
                     f"The checkpoint {self.checkpoint_path} this run resumed from is intact: run the same command "
                     f"with --resume to continue." if os.path.isfile(self.checkpoint_path) else
                     "No checkpoint had been written yet.")
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
    and write nothing; an error on any rank ends the job (MPI_Abort) after that rank
    says what went wrong; on rank 0 a job ended by mpiexec says which checkpoint is intact."""
    try:
        _comm.init()
    except ImportError as exc:
        print(f"convgrad train: {exc}", file=sys.stderr)
        return 2
    comm = _comm.communicator()
    rank, world = comm.Get_rank(), comm.Get_size()
    if args.threads is None:
        args.threads = max(1, available_cpus() // ranks_on_this_node(comm))
    if rank:
        args.no_progress = True
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if rank else sys.stdout), \
                contextlib.redirect_stderr(devnull if rank else sys.stderr):
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
