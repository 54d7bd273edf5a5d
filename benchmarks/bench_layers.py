"""convgrad vs PyTorch for the non-convolution layers a CNN spends time in, same run.

    python benchmarks/bench_layers.py [--quick] [--json FILE]

forward+backward (and forward alone) through the layer objects, float32, torch with 2
threads, medians of interleaved runs. Target (issue): no layer slower than 2x torch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_medians, machine_info, markdown_table  # noqa: E402

import torch  # noqa: E402

from convgrad import nn  # noqa: E402
from convgrad.memory import retain_freed_memory  # noqa: E402

TARGET = 2.0

# (name, convgrad layer factory, torch layer factory, input shape)
CASES = [
    ("MaxPool2d 2x2/2 (64,32,26,26)", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (64, 32, 26, 26)),
    ("MaxPool2d 2x2/2 (64,64,32,32)", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (64, 64, 32, 32)),
    ("BatchNorm2d(64) (64,64,32,32)", lambda: nn.BatchNorm2d(64), lambda: torch.nn.BatchNorm2d(64), (64, 64, 32, 32)),
    ("Linear 1600->128 (64,1600)", lambda: nn.Linear(1600, 128, generator=0), lambda: torch.nn.Linear(1600, 128),
     (64, 1600)),
    ("ReLU (64,64,32,32)", lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (64, 64, 32, 32)),
    ("CrossEntropyLoss (64,10)", None, None, (64, 10)),
]


def _pair(make_cg, make_th, shape, rng):
    cg, th = make_cg(), make_th()
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in cg.state_dict().items()}
    th.load_state_dict(state)
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(cg.forward(x).shape, dtype=np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tg = torch.from_numpy(g.copy())

    def cg_fb():
        cg.forward(x)
        cg.backward(g)

    def th_fb():
        tx.grad = None
        th(tx).backward(tg)

    return {"fwd": {"convgrad": lambda: cg.forward(x), "torch": lambda: th(tx)},
            "fwd+bwd": {"convgrad": cg_fb, "torch": th_fb}}


def _loss_pair(shape, rng):
    cg, th = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    logits = rng.standard_normal(shape, dtype=np.float32)
    target = rng.integers(0, shape[1], size=shape[0])
    tl, tt = torch.from_numpy(logits.copy()).requires_grad_(True), torch.from_numpy(target)

    def cg_fb():
        cg.forward(logits, target)
        cg.backward()

    def th_fb():
        tl.grad = None
        th(tl, tt).backward()

    return {"fwd": {"convgrad": lambda: cg.forward(logits, target), "torch": lambda: th(tl, tt)},
            "fwd+bwd": {"convgrad": cg_fb, "torch": th_fb}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    retain_freed_memory()          # both libraries, this process: no page faults for reused sizes
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    reps, min_time = (5, 0.3) if args.quick else (15, 1.0)
    rows, results = [], []
    for name, make_cg, make_th, shape in CASES:
        fns = _loss_pair(shape, rng) if make_cg is None else _pair(make_cg, make_th, shape, rng)
        for pass_name, pair in fns.items():
            med = interleaved_medians(pair, reps=reps, warmup=2, min_time=min_time, max_reps=60)
            ratio = med["convgrad"] / med["torch"]
            results.append({"layer": name, "pass": pass_name, "convgrad_ms": med["convgrad"] * 1e3,
                            "torch_ms": med["torch"] * 1e3, "ratio": ratio})
            rows.append([name, pass_name, f"{med['convgrad'] * 1e3:.3f}", f"{med['torch'] * 1e3:.3f}", f"{ratio:.2f}"])
            print(f"  {name:34s} {pass_name:8s} ratio {ratio:.2f}", file=sys.stderr, flush=True)
    print(markdown_table(["layer", "pass", "convgrad ms", "torch ms", "ratio"], rows))
    worst = max((r for r in results if r["pass"] == "fwd+bwd"), key=lambda r: r["ratio"])
    print(f"\nworst fwd+bwd ratio: {worst['ratio']:.2f} ({worst['layer']}); target <= {TARGET}: "
          f"{'MET' if worst['ratio'] <= TARGET else 'NOT MET'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
