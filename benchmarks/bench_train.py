"""One training epoch of a built-in model in convgrad and in PyTorch, same recipe, same run.

    python benchmarks/bench_train.py [--model lenet|cnn|resnet] [--batch-size 64] [--epochs 1]
                                     [--repeats 1] [--limit-train N] [--allocator retain|default]
                                     [--json FILE]

Both sides start from the same initial weights (convgrad's seeded init, copied into torch's
twin of the model, tests/torch_twins.py) and see the same batches in the same order (convgrad's
DataLoader feeds both): SGD momentum 0.9, lr 0.01, standardised inputs, float32, 2 threads —
torch's intra-op threads, convgrad's DataParallel (each batch split in two halves, one per
thread, as `convgrad train` runs; BatchNorm and Dropout see the whole batch through
batch_parts.py; --threads 1 times convgrad unsplit, its BLAS still on 2 threads). Each side
runs in its own subprocess so its peak memory (ru_maxrss) is its own. convgrad keeps patch
matrices for the backward as `convgrad train` does (set_kept_budget(cli.KEPT_PATCHES)). --allocator retain (the
default, as `convgrad train` runs) applies convgrad.memory.retain_freed_memory() to both
sides; --allocator default applies it to neither. The convgrad and torch runs alternate
(--repeats). Reports training seconds per epoch (median), the ratio convgrad/torch with its
spread over the repeats, images/s, peak RSS and test accuracy after each epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from common import LoadMonitor, machine_info, markdown_table  # noqa: E402


def _loaders(limit_train, batch_size):
    from convgrad.data import DataLoader, load_dataset
    data = load_dataset("fashion-mnist")
    x, y = data.train
    if limit_train:
        x, y = x[:limit_train], y[:limit_train]
    train = DataLoader(x, y, batch_size, shuffle=True, seed=0, mean=data.mean, std=data.std)
    test = DataLoader(*data.test, 1000, shuffle=False, mean=data.mean, std=data.std)
    return train, test


def run_convgrad(args):
    from convgrad import models, nn, optim
    from convgrad.cli import KEPT_PATCHES
    from convgrad.functional.convolution import set_kept_budget
    from convgrad.parallel import DataParallel
    from convgrad.stepping import train_step
    from convgrad.train import evaluate
    set_kept_budget(KEPT_PATCHES)       # as `convgrad train` runs (convgrad's own memory-for-speed setting)
    epochs, limit_train, init_path, threads = args.epochs, args.limit_train, args.init, args.threads
    model = models.build(args.model, generator=0)
    runner = DataParallel(model, threads)
    np.savez(init_path, **model.state_dict())
    opt = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9)
    crit = nn.CrossEntropyLoss()
    train, test = _loaders(limit_train, args.batch_size)
    results = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in train:
            model.zero_grad()
            train_step(model, runner, crit, x, y)    # as convgrad train: no input gradient (torch skips
            opt.step()                               # it too), each cache freed once used
        seconds = time.perf_counter() - start
        results.append({"seconds": seconds, "images": len(train.labels),
                        "test_accuracy": evaluate(runner, test)[1]})
    return results


def run_torch(args):
    import torch
    from torch_twins import torch_model
    epochs, limit_train, init_path = args.epochs, args.limit_train, args.init
    torch.set_num_threads(args.threads)
    model = torch_model(torch, args.model)
    with np.load(init_path) as init:
        model.load_state_dict({k: torch.from_numpy(init[k]) for k in init.files})
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = torch.nn.CrossEntropyLoss()
    train, test = _loaders(limit_train, args.batch_size)
    results = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in train:
            opt.zero_grad()
            crit(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
        results.append({"seconds": seconds, "images": len(train.labels),
                        "test_accuracy": correct / len(test.labels)})
    return results


def _child(args):
    if args.allocator == "retain":
        from convgrad.memory import retain_freed_memory
        retain_freed_memory()       # as `convgrad train` runs; the torch child too, for the same allocator
    runner = run_convgrad if args.child == "convgrad" else run_torch
    results = runner(args)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"results": results, "peak_rss_mb": peak_mb}))


def _spawn(which, args, init):
    cmd = [sys.executable, __file__, "--child", which, "--epochs", str(args.epochs), "--init", init,
           "--threads", str(args.threads if which == "convgrad" else 2), "--model", args.model,
           "--batch-size", str(args.batch_size), "--allocator", args.allocator]
    if args.limit_train:
        cmd += ["--limit-train", str(args.limit_train)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("lenet", "cnn", "resnet"), default="lenet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--allocator", choices=("retain", "default"), default="retain",
                        help="retain: retain_freed_memory() on both sides (as convgrad train); default: on neither")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="alternate convgrad/torch this many times")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2, help="convgrad's DataParallel threads (torch: 2)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", choices=("convgrad", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--init", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    runs = {"convgrad": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp, LoadMonitor() as load:
        init = os.path.join(tmp, "init.npz")
        for _ in range(args.repeats):
            for which in ("convgrad", "torch"):       # convgrad first: it writes the shared init
                runs[which].append(_spawn(which, args, init))
    rows, summary = [], {}
    for which, reps in runs.items():
        per_epoch = [r["results"] for r in reps]
        seconds = float(np.median([e["seconds"] for run in per_epoch for e in run]))
        images = per_epoch[0][0]["images"]
        summary[which] = {"seconds_per_epoch": seconds, "images_per_s": images / seconds,
                          "peak_rss_mb": max(r["peak_rss_mb"] for r in reps),
                          "test_accuracy": [e["test_accuracy"] for e in per_epoch[0]]}
    ratio = summary["convgrad"]["seconds_per_epoch"] / summary["torch"]["seconds_per_epoch"]
    pair_ratios = [c["results"][0]["seconds"] / t["results"][0]["seconds"]
                   for c, t in zip(runs["convgrad"], runs["torch"])]
    for which, s in summary.items():
        rows.append([which, f"{s['seconds_per_epoch']:.1f}", f"{s['images_per_s']:.0f}",
                     f"{s['peak_rss_mb']:.0f}", " / ".join(f"{a:.4f}" for a in s["test_accuracy"])])
    print(f"{args.model} on Fashion-MNIST, SGD(0.01, momentum 0.9), batch {args.batch_size}, {args.epochs} epoch(s), "
          f"convgrad on {args.threads} DataParallel thread(s), torch on 2 intra-op threads, allocator "
          f"{args.allocator} on both, median of {args.repeats} run(s) each")
    print(markdown_table(["library", "s / epoch (train)", "images/s", "peak RSS MB", "test accuracy per epoch"],
                         rows))
    print(f"\nratio convgrad/torch (epoch time): {ratio:.2f} (each alternating pair's first epoch: "
          f"{min(pair_ratios):.2f}-{max(pair_ratios):.2f})")
    if load.other is not None:
        print(f"Other processes used {100 * load.other:.0f}% of the CPUs during the run (machine shared).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "model": args.model, "batch_size": args.batch_size,
                       "allocator": args.allocator, "summary": summary, "ratio": ratio,
                       "pair_ratios": pair_ratios, "other_load": load.other}, f, indent=2)


if __name__ == "__main__":
    main()
