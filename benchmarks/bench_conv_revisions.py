"""bench_conv.py's shapes, fwd+bwd, in this checkout, in another revision (imported as the
package `convgrad_base`) and in torch, interleaved in one process, float32.

    mkdir -p /tmp/cgb/x && git archive <rev> convgrad | tar -x -C /tmp/cgb/x \\
        && mv /tmp/cgb/x/convgrad /tmp/cgb/convgrad_base
    python benchmarks/bench_conv_revisions.py --base /tmp/cgb [--threads 1] [--reps 9] [--rounds 2]

Three contenders per shape, run alternately (common.interleaved_samples): the same layer and
weights in both revisions, and torch. Prints the median milliseconds, the ratios to torch
of both revisions and new/base, and the geometric means; --rounds repeats the whole sweep
(the spread between rounds shows the noise). --threads sets both libraries alike:
torch.set_num_threads(n) and, for n != 2, NumPy's BLAS via threadpoolctl (1 thread is far less
sensitive to a busy machine than two spinning BLAS threads).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_conv import SHAPES, make_pair  # noqa: E402
from common import LoadMonitor, geomean, interleaved_samples, markdown_table  # noqa: E402


def _base_layer(base_nn, cg, spatial, c_in, c_out, k, stride, pad, groups):
    cls = {1: base_nn.Conv1d, 2: base_nn.Conv2d}[len(spatial)]
    layer = cls(c_in, c_out, k, stride=stride, padding=pad, groups=groups)
    layer.weight.data[...] = cg.weight.data
    layer.bias.data[...] = cg.bias.data
    return layer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="directory holding the package convgrad_base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.base)
    import torch
    import convgrad_base
    import convgrad_base.nn as base_nn
    import convgrad
    from convgrad.memory import retain_freed_memory
    retain_freed_memory()                       # both libraries, this process
    torch.set_num_threads(args.threads)
    convgrad.set_num_threads(args.threads)
    convgrad_base.set_num_threads(args.threads)       # each package has its own thread setting
    limit = None
    if args.threads != 2:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(args.threads)
    rows, ratios = [], {"base": [], "new": []}
    with LoadMonitor() as load:
        for rnd in range(args.rounds):
            for name, n, c_in, spatial, c_out, k, stride, pad, groups in SHAPES:
                cg, th, x, g, tx, tg = make_pair(n, c_in, spatial, c_out, k, stride, pad, groups)
                base = _base_layer(base_nn, cg, spatial, c_in, c_out, k, stride, pad, groups)
                np.testing.assert_allclose(base.forward(x), cg.forward(x), rtol=1e-5, atol=1e-5)

                def run(layer):
                    return lambda: (layer.forward(x), layer.backward(g))

                def run_torch():
                    tx.grad = None
                    th(tx).backward(tg)
                samples = interleaved_samples({"base": run(base), "new": run(cg), "torch": run_torch},
                                              reps=args.reps, warmup=2)
                med = {k_: statistics.median(v) * 1e3 for k_, v in samples.items()}
                rb, rn = med["base"] / med["torch"], med["new"] / med["torch"]
                ratios["base"].append(rb)
                ratios["new"].append(rn)
                rows.append([rnd + 1, name, f"{med['base']:.1f}", f"{med['new']:.1f}", f"{med['torch']:.1f}",
                             f"{rb:.2f}", f"{rn:.2f}", f"{med['new'] / med['base']:.2f}"])
                print("  " + " | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
    del limit
    print(f"fwd+bwd, float32, {args.threads} thread(s) each, {args.reps} interleaved rounds per shape, "
          f"{args.rounds} sweep(s); base = {args.base}")
    print(markdown_table(["sweep", "shape", "base ms", "new ms", "torch ms", "base/torch", "new/torch", "new/base"],
                         rows))
    for key in ("base", "new"):
        print(f"{key:4s}/torch geomean {geomean(ratios[key]):.2f}, worst {max(ratios[key]):.2f}")
    if load.other is not None:
        print(f"Other processes used {100 * load.other:.0f}% of the CPUs during the run (machine shared).")


if __name__ == "__main__":
    main()
