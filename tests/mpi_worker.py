"""Run under mpiexec by tests/test_distributed.py (not a test module itself):

    mpiexec -n P python tests/mpi_worker.py OUT_DIR [--overlap 0|1] [--bucket-mb MB]

For each case trains the model of distributed_case.py for STEPS steps in float64: "ddp" and "syncbn" on this
rank's DistributedSampler shard with DistributedDataParallel (and SyncBatchNorm), "global" with
BatchNorm and Dropout on whole batches through GlobalBatch (as `convgrad train`), "recorded" as
"ddp" in recorded mode (loss.backward(), then allreduce_gradients()), "threads" as "global"
without BatchNorm and Dropout, each rank's share split across 2 threads. Rank 0 writes
the final parameters and buffers, and the reduction statistics, to OUT.npz.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed_case import THREADS_BATCH, build, data, local_batches, sgd, whole_batches  # noqa: E402

import convgrad  # noqa: E402
from convgrad import distributed, nn  # noqa: E402
from convgrad.parallel import DataParallel  # noqa: E402


CASES = ("ddp", "syncbn", "global", "recorded", "threads")


def train(case: str, out: str, overlap: bool, bucket_mb: float) -> None:
    rank, world = distributed.init()
    # every rank but 0 starts from other weights: the broadcast must make them equal
    model = build(case in ("syncbn", "global"), seed=0 if rank == 0 else 100 + rank, dropout=case == "global")
    if case in ("syncbn", "global"):
        model = distributed.convert_sync_batchnorm(model)
    wrapped = DataParallel(model, 2) if case == "threads" else model   # "threads": 2 threads in each rank
    ddp = distributed.DistributedDataParallel(wrapped, bucket_mb=bucket_mb, overlap=overlap,
                                              reduce="sum" if case in ("global", "threads") else "mean")
    runner = distributed.GlobalBatch(ddp) if case in ("global", "threads") else ddp
    batches = {"global": whole_batches(), "threads": whole_batches(THREADS_BATCH)}.get(case) or \
        local_batches(rank, world)
    opt = sgd(model)
    x, y = data()
    loss_fn = nn.CrossEntropyLoss()
    split_parts = 0
    for idx in batches:
        runner.zero_grad()
        if case == "recorded":              # recorded mode: the tape fills .grad, then the reduction
            loss_fn(model(convgrad.tensor(x[idx])), y[idx]).backward()
            ddp.allreduce_gradients()
        else:
            loss_fn(runner(x[idx]), y[idx])
            runner.backward(loss_fn.backward(), input_grad=False)
        if case == "threads":
            split_parts = len(wrapped._parts or [None])      # the threads really split this rank's share
        opt.step()
    if rank == 0:
        np.savez(out, **model.state_dict(), split_parts=split_parts, stats_steps=ddp.stats["steps"],
                 stats_buckets=ddp.stats["buckets"], stats_bytes=ddp.stats["bytes"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", help="rank 0 writes OUT_DIR/CASE.npz for every case")
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--bucket-mb", type=float, default=4.0)
    args = parser.parse_args()
    for case in CASES:                      # one launch for all cases: mpiexec and imports cost seconds
        train(case, os.path.join(args.out_dir, f"{case}.npz"), bool(args.overlap), args.bucket_mb)


if __name__ == "__main__":
    main()
