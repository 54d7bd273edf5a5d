"""convgrad vs PyTorch convolution, CPU, float32, side by side in one run.

    python benchmarks/bench_conv.py [--quick] [--json FILE] [--reps R] [--only SUBSTR]

Each shape is timed through the layer objects, as training calls them:

    convgrad   : y = layer.forward(x); layer.backward(g)        (one layer object, its workspace reused;
                 NumPy's BLAS on its 2 threads; the depthwise route splits its channels
                 across convgrad.set_num_threads(2); everything else on one thread)
    convgrad 2t: the same through DataParallel(layer, 2)          (the batch in two halves, one per thread,
                 as `convgrad train` runs; see convgrad/parallel.py)
    torch      : y = layer(x) with x.requires_grad; y.backward(g) (torch.set_num_threads(2))

for "fwd" (forward only, training mode, cache kept) and "fwd+bwd" (forward, then the
backward with a fixed grad_out: input, weight and bias gradients). The two libraries run
alternately and each number is the median of the interleaved rounds. GFLOP/s counts the
multiply-adds of the convolution (2 * N * C_out * prod(out) * C_in/g * prod(k) per pass,
three passes for fwd+bwd); %peak relates it to NumPy's float32 GEMM rate measured in the
same run. Target (issue): geometric-mean ratio convgrad/torch for fwd+bwd <= 1.5, no shape > 3.0;
it is reported for both convgrad columns.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LoadMonitor, gemm_peak, geomean, interleaved_samples, machine_info, markdown_table  # noqa: E402

import torch  # noqa: E402  (benchmark oracle only; the library never imports it)

import convgrad  # noqa: E402
from convgrad.memory import retain_freed_memory  # noqa: E402
from convgrad import nn  # noqa: E402
from convgrad.parallel import DataParallel  # noqa: E402

THREADS = 2
TARGET_GEOMEAN, TARGET_WORST = 1.5, 3.0

# (name, N, C_in, spatial, C_out, k, stride, pad, groups)
SHAPES = [
    ("mnist-conv1 1->32 28x28 k3", 64, 1, (28, 28), 32, 3, 1, 0, 1),
    ("mnist-conv2 32->64 13x13 k3", 64, 32, (13, 13), 64, 3, 1, 0, 1),
    ("cifar-stem 3->64 32x32 k3 p1", 64, 3, (32, 32), 64, 3, 1, 1, 1),
    ("64->64 32x32 k3 p1", 64, 64, (32, 32), 64, 3, 1, 1, 1),
    ("64->128 16x16 k3 s2 p1", 64, 64, (16, 16), 128, 3, 2, 1, 1),
    ("128->128 16x16 k3 p1 (N=32)", 32, 128, (16, 16), 128, 3, 1, 1, 1),
    ("1x1 64->64 32x32", 64, 64, (32, 32), 64, 1, 1, 0, 1),
    ("depthwise 64 32x32 k3 p1 g64", 64, 64, (32, 32), 64, 3, 1, 1, 64),
    ("conv1d 16->32 L1024 k5", 64, 16, (1024,), 32, 5, 1, 0, 1),
]


def conv_flops(n, c_in, spatial, c_out, k, stride, pad, groups) -> float:
    """Multiply-adds x 2 of one convolution pass."""
    out = [(s + 2 * pad - k) // stride + 1 for s in spatial]
    return 2.0 * n * c_out * math.prod(out) * (c_in // groups) * k ** len(spatial)


def make_pair(n, c_in, spatial, c_out, k, stride, pad, groups, seed=0):
    """The same convolution in both libraries, same weights; input and a fixed grad_out."""
    nd = len(spatial)
    cg_cls = {1: nn.Conv1d, 2: nn.Conv2d}[nd]
    th_cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d}[nd]
    cg = cg_cls(c_in, c_out, k, stride=stride, padding=pad, groups=groups)
    th = th_cls(c_in, c_out, k, stride=stride, padding=pad, groups=groups)
    with torch.no_grad():
        th.weight.copy_(torch.from_numpy(cg.weight.data))
        th.bias.copy_(torch.from_numpy(cg.bias.data))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *spatial), dtype=np.float32)
    y = cg.forward(x)
    g = rng.standard_normal(y.shape, dtype=np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tg = torch.from_numpy(g.copy())
    return cg, th, x, g, tx, tg


def check_agreement(cg, th, x, g, tx, tg) -> float:
    """Largest relative difference over y, dx, dw, db (float32: expect ~1e-6..1e-5)."""
    cg.zero_grad()
    y = cg.forward(x)
    dx = cg.backward(g)
    th.zero_grad()
    tx.grad = None
    ty = th(tx)
    ty.backward(tg)
    pairs = [(y, ty), (dx, tx.grad), (cg.weight.grad, th.weight.grad), (cg.bias.grad, th.bias.grad)]
    return max(float(np.abs(a - b.detach().numpy()).max() / (np.abs(b.detach().numpy()).max() + 1e-30))
               for a, b in pairs)


def runners(cg, th, x, g, tx, tg):
    """{pass: {contender: zero-argument callable}}. The 2-thread contender wraps its own copy
    of the layer, so the two convgrad contenders do not share work buffers."""
    dp = DataParallel(copy.deepcopy(cg), THREADS)

    def fwdbwd(layer):
        def run():
            layer.forward(x)
            layer.backward(g)
        return run

    def th_fwd():
        th(tx)

    def th_fwdbwd():
        tx.grad = None
        th(tx).backward(tg)

    return {"fwd": {"convgrad": lambda: cg.forward(x), "convgrad 2t": lambda: dp.forward(x), "torch": th_fwd},
            "fwd+bwd": {"convgrad": fwdbwd(cg), "convgrad 2t": fwdbwd(dp), "torch": th_fwdbwd}}


def check_parallel_agreement(cg, x, g) -> float:
    """DataParallel's y and dx against the unsplit layer's (float32 rounding only)."""
    dp = DataParallel(copy.deepcopy(cg), THREADS)
    y, dx = cg.forward(x), cg.backward(g)
    y2, dx2 = dp.forward(x), dp.backward(g)
    return max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-30)) for a, b in ((y, y2), (dx, dx2)))


def run(shapes, reps, min_time, max_reps, peak):
    results = []
    for name, n, c_in, spatial, c_out, k, stride, pad, groups in shapes:
        cg, th, x, g, tx, tg = make_pair(n, c_in, spatial, c_out, k, stride, pad, groups)
        err = max(check_agreement(cg, th, x, g, tx, tg), check_parallel_agreement(cg, x, g))
        flops = conv_flops(n, c_in, spatial, c_out, k, stride, pad, groups)
        for pass_name, fns in runners(cg, th, x, g, tx, tg).items():
            samples = interleaved_samples(fns, reps=reps, warmup=2, min_time=min_time, max_reps=max_reps)
            med = {lib: statistics.median(s) for lib, s in samples.items()}
            f = flops * (3 if pass_name == "fwd+bwd" else 1)
            row = {"shape": name, "pass": pass_name, "N": n, "C_in": c_in, "spatial": list(spatial),
                   "C_out": c_out, "k": k, "stride": stride, "pad": pad, "groups": groups,
                   "gflop": f / 1e9, "max_rel_err": err}
            for lib in ("convgrad", "convgrad 2t", "torch"):
                row[f"{lib}_ms"] = med[lib] * 1e3
                row[f"{lib}_min_ms"] = min(samples[lib]) * 1e3
                row[f"{lib}_reps"] = len(samples[lib])
                row[f"{lib}_gflops"] = f / med[lib] / 1e9
                row[f"{lib}_pct_peak"] = 100.0 * row[f"{lib}_gflops"] / peak
            row["ratio"] = med["convgrad"] / med["torch"]
            row["ratio_2t"] = med["convgrad 2t"] / med["torch"]
            results.append(row)
            print(f"  {name:32s} {pass_name:8s} convgrad {row['convgrad_ms']:8.2f} ms  2t {row['convgrad 2t_ms']:8.2f} ms  "
                  f"torch {row['torch_ms']:8.2f} ms  ratio {row['ratio']:5.2f}  2t {row['ratio_2t']:5.2f}  "
                  f"(max rel diff {err:.1e})", file=sys.stderr, flush=True)
        del cg, th, x, g, tx, tg
    return results


def report(results, peak, peak_after) -> str:
    headers = ["shape", "pass", "convgrad ms", "convgrad 2t ms", "torch ms", "ratio", "ratio 2t",
               "convgrad GFLOP/s", "convgrad %peak", "torch GFLOP/s", "torch %peak"]
    rows = [[r["shape"], r["pass"], f"{r['convgrad_ms']:.2f}", f"{r['convgrad 2t_ms']:.2f}", f"{r['torch_ms']:.2f}",
             f"{r['ratio']:.2f}", f"{r['ratio_2t']:.2f}", f"{r['convgrad_gflops']:.1f}", f"{r['convgrad_pct_peak']:.0f}%",
             f"{r['torch_gflops']:.1f}", f"{r['torch_pct_peak']:.0f}%"] for r in results]
    lines = [markdown_table(headers, rows), ""]
    worst_err = max(r["max_rel_err"] for r in results)
    lines.append(f"Largest relative difference convgrad (both columns) vs torch (y, dx, dw, db; float32): {worst_err:.1e}")
    lines.append(f"NumPy float32 GEMM peak: {peak:.1f} GFLOP/s (before), {peak_after:.1f} GFLOP/s (after); "
                 f"%peak uses the before value.")
    for key, label in (("ratio", "convgrad"), ("ratio_2t", "convgrad 2t")):
        for pass_name in ("fwd", "fwd+bwd"):
            rows_p = [r for r in results if r["pass"] == pass_name]
            if rows_p:
                worst = max(rows_p, key=lambda r: r[key])
                lines.append(f"{label:11s} {pass_name:8s} geomean ratio /torch: {geomean([r[key] for r in rows_p]):.2f}   "
                             f"worst: {worst[key]:.2f} ({worst['shape']})")
        fb = [r[key] for r in results if r["pass"] == "fwd+bwd"]
        if fb:
            ok = geomean(fb) <= TARGET_GEOMEAN and max(fb) <= TARGET_WORST
            lines.append(f"{label:11s} target (fwd+bwd geomean <= {TARGET_GEOMEAN}, worst <= {TARGET_WORST}): "
                         f"{'MET' if ok else 'NOT MET'}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (rough numbers, ~4x faster)")
    ap.add_argument("--reps", type=int, default=None, help="minimum interleaved rounds per measurement")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--only", metavar="SUBSTR", help="only shapes whose name contains SUBSTR")
    args = ap.parse_args(argv)
    retain_freed_memory()          # both libraries, this process: no page faults for reused sizes

    torch.set_num_threads(THREADS)
    convgrad.set_num_threads(THREADS)      # the depthwise route splits its channels across them
    reps = args.reps or (5 if args.quick else 15)
    min_time = 0.3 if args.quick else 1.5
    max_reps = 15 if args.quick else 60
    shapes = [s for s in SHAPES if args.only is None or args.only in s[0]]

    t0 = time.perf_counter()
    with LoadMonitor() as load:
        peak = gemm_peak(reps=3 if args.quick else 7)
        print(f"NumPy float32 GEMM peak: {peak:.1f} GFLOP/s; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads", file=sys.stderr, flush=True)
        results = run(shapes, reps, min_time, max_reps, peak)
        peak_after = gemm_peak(reps=3 if args.quick else 7)
    print(report(results, peak, peak_after))
    if load.other is not None:
        warn = "  WARNING: a busy machine; timings are not comparable with a quiet run" if load.other > 0.1 else ""
        print(f"Other processes used {100 * load.other:.0f}% of the CPUs during the run.{warn}")
    print(f"\n({time.perf_counter() - t0:.0f} s; torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"convgrad {getattr(convgrad, '__version__', '?')}; {machine_info()})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                       "gemm_peak_gflops": peak, "other_load": load.other, "gemm_peak_after_gflops": peak_after, "results": results,
                       "geomean_fwd": geomean([r["ratio"] for r in results if r["pass"] == "fwd"]) if results else None,
                       "geomean_fwd_bwd": geomean([r["ratio"] for r in results if r["pass"] == "fwd+bwd"])
                       if results else None,
                       "geomean_fwd_bwd_2t": geomean([r["ratio_2t"] for r in results if r["pass"] == "fwd+bwd"])
                       if results else None}, f, indent=2)


if __name__ == "__main__":
    main()
