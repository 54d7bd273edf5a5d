"""Run under mpiexec by tests/test_distributed.py (not a test module itself):

    mpiexec -n P python tests/mpi_worker.py ddp|syncbn|global OUT.npz [--overlap 0|1] [--bucket-mb MB]

Trains the model of distributed_case.py for STEPS steps in float64: "ddp" and "syncbn" on this
rank's DistributedSampler shard with DistributedDataParallel (and SyncBatchNorm), "global" with
BatchNorm and Dropout on whole batches through GlobalBatch (as `convgrad train`), "recorded" as
"ddp" in recorded mode (loss.backward(), then allreduce_gradients()). Rank 0 writes
the final parameters and buffers, and the reduction statistics, to OUT.npz.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed_case import build, data, local_batches, sgd, whole_batches  # noqa: E402

import convgrad  # noqa: E402
from convgrad import distributed, nn  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=("ddp", "syncbn", "global", "recorded"))
    parser.add_argument("out")
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--bucket-mb", type=float, default=4.0)
    args = parser.parse_args()
    rank, world = distributed.init()
    # every rank but 0 starts from other weights: the broadcast must make them equal
    model = build(args.case in ("syncbn", "global"), seed=0 if rank == 0 else 100 + rank, dropout=args.case == "global")
    if args.case in ("syncbn", "global"):
        model = distributed.convert_sync_batchnorm(model)
    ddp = distributed.DistributedDataParallel(model, bucket_mb=args.bucket_mb, overlap=bool(args.overlap),
                                              reduce="sum" if args.case == "global" else "mean")
    runner = distributed.GlobalBatch(ddp) if args.case == "global" else ddp
    batches = whole_batches() if args.case == "global" else local_batches(rank, world)
    opt = sgd(model)
    x, y = data()
    loss_fn = nn.CrossEntropyLoss()
    for idx in batches:
        runner.zero_grad()
        if args.case == "recorded":         # recorded mode: the tape fills .grad, then the reduction
            loss_fn(model(convgrad.tensor(x[idx])), y[idx]).backward()
            ddp.allreduce_gradients()
        else:
            loss_fn(runner(x[idx]), y[idx])
            runner.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    if rank == 0:
        np.savez(args.out, **model.state_dict(), stats_steps=ddp.stats["steps"], stats_buckets=ddp.stats["buckets"],
                 stats_bytes=ddp.stats["bytes"])


if __name__ == "__main__":
    main()
