"""Recorded mode against explicit mode: the cost of the tape, side by side in one run.

    python benchmarks/bench_recorded.py [--steps 100] [--reps 5] [--resnet-batch 8] [--resnet-reps 3]

Three ways to train the same model (the same layer objects, so the same weights and work):
- explicit:      y = model(x); model.backward(loss_fn.backward())
- recorded:      loss_fn(model(convgrad.tensor(x)), y).backward()     (the model is one node)
- forward-only:  a Module without backward calling each layer on Tensors (one node per layer)

lenet: chunks of --steps SGD steps (batch 64, Fashion-MNIST-shaped random data), the three
variants interleaved --reps times; ResNet-18 (ImageNet layout, 224x224, batch 8): one training
step each, interleaved. Reported: median wall and CPU seconds (this process's threads; less
disturbed by other processes on a shared machine) and each variant's ratio to explicit, with the
spread over rounds (min-max of the per-round ratios). convgrad.memory.retain_freed_memory() is
applied (one process: every variant alike).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from bench_resnet import convgrad_resnet18  # noqa: E402
from common import LoadMonitor, machine_info, markdown_table  # noqa: E402

import convgrad as cg  # noqa: E402
from convgrad import models, nn  # noqa: E402
from convgrad.memory import retain_freed_memory  # noqa: E402


class LayerByLayer(nn.Module):
    """Forward-only: each child of a Sequential called on Tensors, so each is its own node."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        self.layers = list(seq)           # not registered: the same objects as the explicit model's

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def variants(model, loss_fn, opt, x, y):
    forward_only = LayerByLayer(model)

    def explicit():
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()

    def recorded():
        opt.zero_grad()
        loss_fn(model(cg.tensor(x)), y).backward()
        opt.step()

    def layer_by_layer():
        opt.zero_grad()
        loss_fn(forward_only(cg.tensor(x)), y).backward()
        opt.step()
    return {"explicit": explicit, "recorded": recorded, "forward-only": layer_by_layer}


def repeat(fn, n):
    def run():
        for _ in range(n):
            fn()
    return run


def interleaved(fns, reps, warmup=1):
    """Wall and CPU seconds (this process, all its threads) of each fn, run alternately, the
    order reversed every other round. CPU time is less disturbed by other processes' load."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for rnd in range(reps):
        for name in (names if rnd % 2 == 0 else names[::-1]):
            w0, c0 = time.perf_counter(), time.process_time()
            fns[name]()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def report(title, wall, cpu):
    rows = []
    for name in wall:
        cells = [name]
        for samples in (wall, cpu):
            ratios = [a / b for a, b in zip(samples[name], samples["explicit"])]
            cells += [f"{statistics.median(samples[name]):.3f}", f"{statistics.median(ratios):.3f}",
                      f"{min(ratios):.3f}-{max(ratios):.3f}"]
        rows.append(cells)
    print(f"\n{title}\n")
    print(markdown_table(["variant", "wall s", "wall ratio", "spread", "CPU s", "CPU ratio", "spread"], rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--resnet-batch", type=int, default=8)
    ap.add_argument("--resnet-reps", type=int, default=3)
    args = ap.parse_args(argv)
    retain_freed_memory()
    print(machine_info())
    rng = np.random.default_rng(0)

    model = models.lenet()
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    opt = cg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fns = {k: repeat(f, args.steps) for k, f in variants(model, nn.CrossEntropyLoss(), opt, x, y).items()}
    with LoadMonitor() as load:
        wall, cpu = interleaved(fns, args.reps)
    report(f"lenet, {args.steps} SGD steps of batch 64 (other processes' CPU load: {load.other:.2f})", wall, cpu)

    if args.resnet_reps:
        model = convgrad_resnet18()
        xb = rng.standard_normal((args.resnet_batch, 3, 224, 224)).astype(np.float32)
        yb = rng.integers(0, 1000, args.resnet_batch)
        opt = cg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        with LoadMonitor() as load:
            wall, cpu = interleaved(variants(model, nn.CrossEntropyLoss(), opt, xb, yb), args.resnet_reps)
        report(f"ResNet-18 224x224, one training step of batch {args.resnet_batch} "
               f"(other processes' CPU load: {load.other:.2f})", wall, cpu)


if __name__ == "__main__":
    main()
