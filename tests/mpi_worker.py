"""Run under mpiexec by tests/test_distributed.py (not a test module itself):

    mpiexec -n P python tests/mpi_worker.py ddp|syncbn OUT.npz [--overlap 0|1] [--bucket-mb MB]

Trains the model of distributed_case.py for STEPS steps on this rank's DistributedSampler
shard with DistributedDataParallel (SyncBatchNorm for "syncbn") in float64; rank 0 writes the
final parameters and buffers, and the DDP statistics, to OUT.npz.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distributed_case import STEPS, build, data, local_batches, sgd  # noqa: E402

from convgrad import distributed  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=("ddp", "syncbn"))
    parser.add_argument("out")
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--bucket-mb", type=float, default=4.0)
    args = parser.parse_args()
    rank, world = distributed.init()
    # every rank but 0 starts from other weights: the broadcast must make them equal
    model = build(args.case == "syncbn", seed=0 if rank == 0 else 100 + rank)
    if args.case == "syncbn":
        model = distributed.convert_sync_batchnorm(model)
    ddp = distributed.DistributedDataParallel(model, bucket_mb=args.bucket_mb, overlap=bool(args.overlap))
    opt = sgd(model)
    x, y = data()
    loss_fn = __import__("convgrad").nn.CrossEntropyLoss()
    for idx in local_batches(rank, world):
        ddp.zero_grad()
        loss_fn(ddp(x[idx]), y[idx])
        ddp.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    if rank == 0:
        np.savez(args.out, **model.state_dict(), stats_steps=ddp.stats["steps"], stats_buckets=ddp.stats["buckets"],
                 stats_bytes=ddp.stats["bytes"])


if __name__ == "__main__":
    main()
