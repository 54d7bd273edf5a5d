"""The Winograd route against the channel-major route and torch, 3x3 stride-1 convolutions,
float32, side by side in one run.

    python benchmarks/bench_winograd.py [--reps R] [--only SUBSTR] [--pass fwd|fwd+bwd|both] [--split]

Every shape is timed through one nn.Conv2d per convgrad contender (its workspace reused),
the route forced with conv_route, and torch's Conv2d with the same weights
(torch.set_num_threads(2); NumPy's BLAS on its own threads).
"other" is the route choose_route takes without Winograd (per-sample for C_in <= 7, else
channel-major). The contenders run
interleaved (common.interleaved_samples); each ratio is median(convgrad) / median(torch),
with the ratios of the 25th and 75th percentiles as its spread, and min / min (the least
disturbed rounds of a shared machine).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import geomean, interleaved_samples  # noqa: E402

import torch  # noqa: E402  (benchmark oracle only)

from convgrad import nn  # noqa: E402
from convgrad.functional import conv_route  # noqa: E402
from convgrad.parallel import DataParallel  # noqa: E402
from convgrad.functional.convolution.routes import PER_SAMPLE_MAX_PATCH  # noqa: E402

# (name, N, C_in, side, C_out, pad)
SHAPES = [
    ("resnet18 64ch 56x56", 32, 64, 56, 64, 1),
    ("resnet18 128ch 28x28", 32, 128, 28, 128, 1),
    ("resnet18 256ch 14x14", 32, 256, 14, 256, 1),
    ("resnet18 512ch 7x7", 32, 512, 7, 512, 1),
    ("cnn 1->32 28x28", 64, 1, 28, 32, 1),
    ("cnn 32->32 28x28", 64, 32, 28, 32, 1),
    ("cnn 32->64 14x14", 64, 32, 14, 64, 1),
    ("cnn 64->64 14x14", 64, 64, 14, 64, 1),
    ("bench mnist-conv1 1->32 28x28 p0", 64, 1, 28, 32, 0),
    ("bench mnist-conv2 32->64 13x13 p0", 64, 32, 13, 64, 0),
    ("bench cifar-stem 3->64 32x32", 64, 3, 32, 64, 1),
    ("bench 64->64 32x32", 64, 64, 32, 64, 1),
    ("bench 128->128 16x16", 32, 128, 16, 128, 1),
]
ROUTES = ("winograd", "other")       # other: the route choose_route takes without Winograd


def other_route(c_in: int) -> str:
    """The route a 3x3 convolution takes when Winograd is not chosen (routes.choose_route's rule)."""
    return "per-sample" if c_in * 9 <= PER_SAMPLE_MAX_PATCH else "channel-major"


def contenders(n, c_in, side, c_out, pad, passes, split=False):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, side, side), dtype=np.float32)
    th = torch.nn.Conv2d(c_in, c_out, 3, padding=pad)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    g = rng.standard_normal(tuple(th(tx).shape), dtype=np.float32)
    tg = torch.from_numpy(g)
    fns = {}
    for route in ROUTES:
        layer = nn.Conv2d(c_in, c_out, 3, padding=pad)
        layer.load_state_dict({k: v.detach().numpy() for k, v in th.state_dict().items()})
        if split:
            layer = DataParallel(layer, 2)

        def run(layer=layer, route=route if route == "winograd" else other_route(c_in)):
            with conv_route(route):
                layer.forward(x)
                if passes == "fwd+bwd":
                    layer.backward(g)
        fns[route] = run

    def torch_run():
        tx.grad = None
        y = th(tx)
        if passes == "fwd+bwd":
            y.backward(tg)
    fns["torch"] = torch_run
    return fns


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--split", action="store_true",
                    help="convgrad through DataParallel(layer, 2) (the batch in two halves, one per thread, as "
                         "`convgrad train` and bench_resnet --split run)")
    ap.add_argument("--only", metavar="SUBSTR")
    ap.add_argument("--pass", dest="passes", choices=("fwd", "fwd+bwd", "both"), default="both")
    args = ap.parse_args()
    torch.set_num_threads(2)
    passes = ("fwd", "fwd+bwd") if args.passes == "both" else (args.passes,)
    ratios = {(p, r): [] for p in passes for r in ROUTES}
    heads = "  ".join(f"{r + ' / torch (IQR) min':>32s}" for r in ROUTES)
    print(f"{'shape':36s} {'pass':8s} {'torch ms':>9s}  {heads}")
    for name, n, c_in, side, c_out, pad in SHAPES:
        if args.only and args.only not in name:
            continue
        for p in passes:
            s = interleaved_samples(contenders(n, c_in, side, c_out, pad, p, args.split), reps=args.reps, warmup=2)
            t = statistics.median(s["torch"])
            tq = statistics.quantiles(s["torch"], n=4)
            cells = []
            for r in ROUTES:
                q = statistics.quantiles(s[r], n=4)
                ratio = statistics.median(s[r]) / t
                ratios[(p, r)].append(ratio)
                low = min(s[r]) / min(s["torch"])
                cells.append(f"{ratio:5.2f} ({q[0] / tq[0]:.2f}-{q[2] / tq[2]:.2f}) min {low:.2f}")
            print(f"{name:36s} {p:8s} {t * 1e3:9.2f}  " + "  ".join(f"{c:>32s}" for c in cells), flush=True)
    for p in passes:
        print(f"geomean {p:8s} " + "  ".join(f"{r} {geomean(ratios[(p, r)]):.2f}" for r in ROUTES if ratios[(p, r)]))


if __name__ == "__main__":
    main()
