"""What the private caches of issue 11 cost: the layers of this checkout against those of another
revision (imported as the package `convgrad_base`), interleaved in one process, float32.

    mkdir -p /tmp/cgb/x && git archive main convgrad | tar -x -C /tmp/cgb/x \
        && mv /tmp/cgb/x/convgrad /tmp/cgb/convgrad_base
    python benchmarks/bench_private_caches.py --base /tmp/cgb [--reps 25] [--only conv|steps]

A forward now keeps what its backward needs independent of the caller's arrays (a copy of the
input for the norm layers, Linear and the convolutions, a 1-byte mask for ReLU, a copy of the
output for sigmoid/tanh/softmax); this prints the median and minimum milliseconds of both
revisions and the ratio of the medians. On a shared machine run it several times: the spread
is large. --only steps times whole training steps of the built-in models (forward, loss,
backward) in both revisions: what the layer-level costs add up to where they matter. There
this checkout keeps patch matrices within the budget `convgrad train` sets (cli.KEPT_PATCHES),
as the revision before issue 11 always did.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time

import numpy as np


def conv_cases(mod, x):
    """The convolutions keep a private copy of their input (issue 11): 3x3, 1x1, depthwise, transposed."""
    def fb(layer):
        gy = np.random.default_rng(1).standard_normal(layer(x).shape, dtype=np.float32)
        return lambda: (layer(x), layer.backward(gy))
    layers = {"Conv2d 64->64 k3 p1": mod.Conv2d(64, 64, 3, padding=1, generator=0),
              "Conv2d 1x1 64->64": mod.Conv2d(64, 64, 1, generator=0),
              "Conv2d depthwise 64 k3 p1": mod.Conv2d(64, 64, 3, padding=1, groups=64, generator=0),
              "ConvTranspose2d 64->32 k2 s2": mod.ConvTranspose2d(64, 32, 2, stride=2, generator=0)}
    out = {}
    for name, layer in layers.items():
        out[f"{name} fwd"] = lambda layer=layer: layer(x)
        out[f"{name} fwd+bwd"] = fb(layer)
    return out


def step_cases(mod, batch=64):
    """One training step (forward, cross-entropy, backward) of each built-in model, batch 64
    of 1x28x28 images, the same initial weights in both revisions (the seeded init)."""
    models = importlib.import_module(mod.__name__.rpartition(".")[0] + ".models")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    out = {}
    for name in ("lenet", "cnn", "resnet"):
        model, loss = models.build(name, generator=0), mod.CrossEntropyLoss()

        def step(model=model, loss=loss):
            model.zero_grad()
            loss(model(x), labels)
            model.backward(loss.backward())
        out[f"{name} training step, batch {batch}"] = step
    return out


def cases(mod, x, g, xl, gl, only="all"):
    if only == "conv":
        return conv_cases(mod, x[:16])
    if only == "steps":
        return step_cases(mod)
    bn, relu, lin, gn, sig = (mod.BatchNorm2d(64), mod.ReLU(), mod.Linear(1600, 128, generator=0),
                              mod.GroupNorm(8, 64), mod.Sigmoid())
    # a revision without no_grad (before recorded mode) runs those cases plainly: the same forward
    no_grad = getattr(sys.modules[mod.__name__.rpartition(".")[0]], "no_grad", contextlib.nullcontext)

    def inference(layer):
        def run():
            with no_grad():
                return layer(x)
        return run
    return {"BatchNorm2d fwd": lambda: bn(x), "BatchNorm2d fwd+bwd": lambda: (bn(x), bn.backward(g)),
            "BatchNorm2d eval fwd, no_grad": inference(mod.BatchNorm2d(64).eval()),
            "ReLU fwd": lambda: relu(x), "ReLU fwd+bwd": lambda: (relu(x), relu.backward(g)),
            "ReLU fwd, no_grad": inference(relu),
            "Linear 1600->128 fwd": lambda: lin(xl), "Linear 1600->128 fwd+bwd": lambda: (lin(xl), lin.backward(gl)),
            "GroupNorm(8, 64) fwd+bwd": lambda: (gn(x), gn.backward(g)),
            "Sigmoid fwd+bwd": lambda: (sig(x), sig.backward(g))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="directory holding the package convgrad_base")
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--only", choices=("layers", "conv", "steps"), default="layers",
                    help="layers: norm/activation/linear (default); conv: the convolutions' private input copy "
                         "(batch 16 of the same 64x32x32 input); steps: training steps of lenet, cnn, resnet")
    ap.add_argument("--cpu", action="store_true",
                    help="time each call by this thread's CPU time (time.thread_time) with BLAS held to one "
                         "thread: far less disturbed by other processes than wall time")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.base)
    import convgrad_base.nn as base_nn
    from convgrad import nn
    from convgrad.memory import retain_freed_memory
    retain_freed_memory()
    clock = time.perf_counter
    if args.cpu:
        import convgrad
        import convgrad_base
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
        convgrad.set_num_threads(1)
        convgrad_base.set_num_threads(1)
        clock = time.thread_time
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64, 32, 32), dtype=np.float32)
    g = rng.standard_normal(x.shape, dtype=np.float32)
    xl, gl = rng.standard_normal((64, 1600), dtype=np.float32), rng.standard_normal((64, 128), dtype=np.float32)
    if args.only == "steps":
        from convgrad.cli import KEPT_PATCHES
        from convgrad.functional.convolution import set_kept_budget
        set_kept_budget(KEPT_PATCHES)
    a, b = cases(base_nn, x, g, xl, gl, args.only), cases(nn, x, g, xl, gl, args.only)
    times = {k: ([], []) for k in a}
    for r in range(args.reps):
        for k in a:
            order = ((0, a[k]), (1, b[k])) if r % 2 else ((1, b[k]), (0, a[k]))
            for which, fn in order:
                t = clock()
                fn()
                times[k][which].append(clock() - t)
    what = "CPU ms (one thread)" if args.cpu else "ms"
    print(f"| case | base {what} (median, min) | this checkout {what} (median, min) | ratio of medians "
          f"| paired ratios: median [quartiles] |")
    print("|---|---:|---:|---:|---:|")
    for k, (ta, tb) in times.items():
        pairs = np.array(tb) / np.array(ta)          # each pair ran back to back
        q1, q2, q3 = np.percentile(pairs, [25, 50, 75])
        print(f"| {k} | {1e3 * np.median(ta):.2f}, {1e3 * min(ta):.2f} | {1e3 * np.median(tb):.2f}, "
              f"{1e3 * min(tb):.2f} | {np.median(tb) / np.median(ta):.2f} | {q2:.2f} [{q1:.2f}, {q3:.2f}] |")

if __name__ == "__main__":
    main()
