"""Data-parallel training on MPI: 1 process x 2 threads against 2 processes x 1 thread, convgrad
and PyTorch side by side in one run, and the time convgrad spends in the gradient allreduce.

    python benchmarks/bench_distributed.py [--models lenet cnn] [--steps 20] [--repeats 3] [--json FILE]

Each configuration trains `--steps` SGD steps (after 3 untimed ones) on a fixed synthetic
Fashion-MNIST-shaped batch of 64 (float32) in fresh processes:

  convgrad 1x2          one process, DataParallel over 2 threads (as `convgrad train --threads 2`;
                        models with BatchNorm/Dropout run unsplit, BLAS on 2 threads)
  convgrad 2x1          mpiexec -n 2, GlobalBatch + DistributedDataParallel (as `convgrad train`
                        under mpiexec): 32 images per rank, one thread each, buckets started
                        during backward (overlap)
  convgrad 2x1 no-ovl   the same with every bucket reduced after the backward
  torch 1x2             torch.set_num_threads(2)
  torch 2x1             mpiexec -n 2, torch DistributedDataParallel over gloo on 127.0.0.1,
                        32 images per rank, torch.set_num_threads(1) (plain BatchNorm: torch's
                        SyncBatchNorm has no CPU kernel)

The configurations are interleaved within each repeat, and each is summarised by its median
images/s over the repeats with the range. For convgrad's 2x1 runs, rank 0 reports the seconds
per step spent in the reduction (DistributedDataParallel.stats: copying gradients into the
buckets, starting, polling, waiting, copying back; SyncBatchNorm's reductions are not in it)
and the bytes reduced per step, and the time one allreduce of those bytes takes when both ranks
start it together (the transfer, without waiting for the slower rank). From those bytes the
script estimates a ring allreduce on
8 and 64 nodes over 10 Gb/s (see estimate()).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import machine_info, markdown_table  # noqa: E402

GLOBAL_BATCH = 64
WARMUP = 3
CONFIGS = ("convgrad 1x2", "convgrad 2x1", "convgrad 2x1 no-ovl", "torch 1x2", "torch 2x1")
LINK_BYTES_PER_S = 10e9 / 8          # 10 Gb/s
LINK_LATENCY_S = 50e-6               # per message on an ordinary TCP/Ethernet cluster network (assumed)


# ---- the workers (one per process) ---------------------------------------------------------------
def _batch():
    g = np.random.default_rng(0)
    return g.standard_normal((GLOBAL_BATCH, 1, 28, 28)).astype(np.float32), g.integers(0, 10, GLOBAL_BATCH)


def _torch_model(name):
    import torch
    nn = torch.nn
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))

    def cbr(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(256, 10))


def worker_convgrad(name, steps, processes, overlap):
    from convgrad import models, nn, optim
    from convgrad.memory import retain_freed_memory
    from convgrad.parallel import DataParallel
    retain_freed_memory()
    model = models.build(name, generator=0)
    x, y = _batch()
    comm = None
    if processes > 1:
        from convgrad import distributed
        from convgrad.distributed.training import limit_threads
        distributed.init()
        limit_threads(1)                    # as `convgrad train` under mpiexec on 2 cores
        comm = distributed.communicator()
        model = distributed.convert_sync_batchnorm(model)
        runner = distributed.GlobalBatch(model, overlap=overlap)
    else:
        runner = DataParallel(model, 2)
    opt, crit = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()
    start = None
    for step in range(WARMUP + steps):
        if step == WARMUP:
            if comm is not None:
                comm.Barrier()
                stats0 = dict(runner.stats)
            start = time.perf_counter()
        model.zero_grad()
        crit(runner(x), y)
        runner.backward(crit.backward(), input_grad=False)
        opt.step()
    seconds = time.perf_counter() - start
    result = {"images_per_s": steps * GLOBAL_BATCH / seconds, "step_s": seconds / steps}
    if comm is not None:
        s = runner.stats
        result.update(allreduce_s_per_step=(s["seconds"] - stats0["seconds"]) / steps,
                      allreduce_bytes_per_step=(s["bytes"] - stats0["bytes"]) / steps, buckets=s["buckets"],
                      parameters=sum(p.data.size for p in model.parameters()))
        result["transfer_s"] = _transfer_seconds(comm, int(result["allreduce_bytes_per_step"]))
        if comm.Get_rank():
            return None
    return result


def _transfer_seconds(comm, nbytes: int, reps: int = 10) -> float:
    """Median seconds of one allreduce of nbytes of float32 when both ranks start it together
    (a barrier first): the transfer itself, without waiting for a slower rank."""
    from convgrad.distributed.comm import allreduce_sum
    buffer = np.ones(max(1, nbytes // 4), np.float32)
    times = []
    for _ in range(reps):
        comm.Barrier()
        t = time.perf_counter()
        allreduce_sum(buffer, comm)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def worker_torch(name, steps, processes, port):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1 if processes > 1 else 2)
    model = _torch_model(name)
    x, y = (torch.from_numpy(a) for a in _batch())
    rank = 0
    if processes > 1:
        import torch.distributed as dist
        rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=processes)
        share = slice(GLOBAL_BATCH * rank // processes, GLOBAL_BATCH * (rank + 1) // processes)
        x, y = x[share], y[share]
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt, crit = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), torch.nn.CrossEntropyLoss()
    for step in range(WARMUP + steps):
        if step == WARMUP:
            if processes > 1:
                torch.distributed.barrier()
            start = time.perf_counter()
        opt.zero_grad()
        crit(model(x), y).backward()
        opt.step()
    seconds = time.perf_counter() - start
    if processes > 1:
        torch.distributed.destroy_process_group()
    return None if rank else {"images_per_s": steps * GLOBAL_BATCH / seconds, "step_s": seconds / steps}


# ---- the driver ----------------------------------------------------------------------------------
def _mpiexec():
    return shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(config, name, steps):
    library, layout = config.split()[:2]
    processes = int(layout[0])
    cmd = [sys.executable, __file__, "--worker", library, "--model", name, "--steps", str(steps),
           "--processes", str(processes), "--overlap", "0" if "no-ovl" in config else "1",
           "--port", str(_free_port())]
    env = dict(os.environ)
    if processes > 1:       # Open MPI refuses root unless told; only this mpiexec is told
        cmd = [_mpiexec(), "-n", str(processes), "--oversubscribe", *cmd]
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=1800).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def estimate(bytes_per_step: float, step_s: float, buckets: int, nodes: int) -> dict:
    """Weak scaling (each node keeps its share of 32 images a step) of a ring allreduce: each node
    sends and receives 2 (P-1)/P of the gradient bytes, in 2 (P-1) messages per bucket.
    Without overlap a step costs compute + allreduce; efficiency = compute / that."""
    volume = 2 * (nodes - 1) / nodes * bytes_per_step
    seconds = volume / LINK_BYTES_PER_S + 2 * (nodes - 1) * buckets * LINK_LATENCY_S
    return {"nodes": nodes, "allreduce_s": seconds, "efficiency": step_s / (step_s + seconds),
            "speedup": nodes * step_s / (step_s + seconds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet", "cnn"], choices=("lenet", "cnn"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", choices=("convgrad", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--overlap", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "convgrad":
            result = worker_convgrad(args.model, args.steps, args.processes, bool(args.overlap))
        else:
            result = worker_torch(args.model, args.steps, args.processes, args.port)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    if _mpiexec() is None:
        sys.exit("bench_distributed: no mpiexec found; pip install 'convgrad[distributed]'")
    load_before = os.getloadavg()
    runs = {(m, c): [] for m in args.models for c in CONFIGS}
    for repeat in range(args.repeats):
        for m in args.models:
            order = CONFIGS if repeat % 2 == 0 else CONFIGS[::-1]
            for c in order:
                runs[m, c].append(run_config(c, m, args.steps))
                print(f"  repeat {repeat + 1} {m:<6} {c:<20} {runs[m, c][-1]['images_per_s']:7.0f} images/s",
                      file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    summary, rows = {}, []
    for m in args.models:
        med = {c: statistics.median(r["images_per_s"] for r in runs[m, c]) for c in CONFIGS}
        for c in CONFIGS:
            rates = [r["images_per_s"] for r in runs[m, c]]
            library, layout = c.split()[0], " ".join(c.split()[1:])
            torch_match = "torch " + c.split()[1]
            ratio = med[c] / med[torch_match] if library == "convgrad" else None
            extra = ""
            if "allreduce_s_per_step" in runs[m, c][0]:
                ar = statistics.median(r["allreduce_s_per_step"] for r in runs[m, c])
                step = statistics.median(r["step_s"] for r in runs[m, c])
                transfer = statistics.median(r["transfer_s"] for r in runs[m, c])
                extra = f"{ar * 1e3:.1f} ms ({ar / step:.0%} of the step; transfer alone {transfer * 1e3:.1f} ms)"
            rows.append([m, library, layout, f"{med[c]:.0f}", f"{min(rates):.0f}-{max(rates):.0f}",
                         "" if ratio is None else f"{ratio:.2f}", extra])
        summary[m] = {"median_images_per_s": med, "runs": {c: runs[m, c] for c in CONFIGS}}
        two = runs[m, "convgrad 2x1 no-ovl"]
        bytes_per_step = statistics.median(r["allreduce_bytes_per_step"] for r in two)
        compute = statistics.median(r["step_s"] - r["allreduce_s_per_step"] for r in two)
        summary[m]["allreduce_bytes_per_step"] = bytes_per_step
        summary[m]["compute_s_per_step"] = compute
        summary[m]["estimate_10gbps"] = [estimate(bytes_per_step, compute, two[0]["buckets"], n) for n in (8, 64)]
    print(f"global batch {GLOBAL_BATCH}, float32, {args.steps} steps after {WARMUP}, median (range) of "
          f"{args.repeats} repeat(s); load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"(2 cores{', shared with other work' if max(load_before[0], load_after[0]) > 2.5 else ''})")
    print(markdown_table(["model", "library", "processes x threads", "images/s", "range",
                          "convgrad/torch (speed)", "convgrad allreduce per step"], rows))
    for m in args.models:
        s = summary[m]
        overlap_gain = s["median_images_per_s"]["convgrad 2x1"] / s["median_images_per_s"]["convgrad 2x1 no-ovl"]
        print(f"\n{m}: overlap/no-overlap images/s {overlap_gain:.2f}; allreduce volume "
              f"{s['allreduce_bytes_per_step'] / 1e6:.2f} MB per step (float32 gradients), compute "
              f"{s['compute_s_per_step'] * 1e3:.0f} ms per step of 32 images per rank")
        for e in s["estimate_10gbps"]:
            print(f"  {e['nodes']:>2} nodes on 10 Gb/s (ring allreduce, {LINK_LATENCY_S * 1e6:.0f} us per message): "
                  f"{e['allreduce_s'] * 1e3:.1f} ms allreduce per step, efficiency {e['efficiency']:.0%}, "
                  f"speed-up {e['speedup']:.1f}x over one node")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "load_average": [load_before, load_after], "summary": summary},
                      f, indent=2)


if __name__ == "__main__":
    main()
