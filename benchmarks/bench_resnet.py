"""ResNet-18 (ImageNet layout, 224x224) one training step in convgrad and in PyTorch.

    python benchmarks/bench_resnet.py [--batch 8 32 64 128] [--steps 3] [--repeats 2] [--threads 2]
                                      [--allocator retain default] [--split] [--breakdown] [--json FILE]
    python benchmarks/bench_resnet.py --interleaved [--batch 32] [--steps 6]    # time only

One step = forward, cross-entropy loss, backward (input gradient skipped on both sides: the
images need none; convgrad inside nn.free_caches(), as `convgrad train` runs it, so each layer's
cache is freed once its backward has run, as torch frees its graph), float32, 1000 classes, the same initial weights on both sides (convgrad's
seeded init, copied into torch). Each (library, batch, allocator) runs in its own subprocess,
so its peak RSS (ru_maxrss) is its own; the subprocesses alternate convgrad, torch, torch,
convgrad, ... `--repeats` times, and each reports the median of its `--steps` timed steps after
one untimed step. Threads (--threads, default 2): torch.set_num_threads(n); convgrad as a user
runs this model (NumPy's BLAS on its threads, limited to n by threadpoolctl when n != 2), or with
--split as `convgrad train` runs it: through DataParallel(model, n), each batch in n parts on n
threads (BLAS on one thread per part; BatchNorm's statistics over the whole batch).

Allocator: "retain" applies convgrad.memory.retain_freed_memory() (glibc keeps freed blocks)
in *both* children, "default" in neither; both columns are reported.

--interleaved: time only, both libraries in one process with their steps alternating, so a
busy machine slows both alike (the subprocess runs above see different moments of the load).

--breakdown: a convgrad child also reports, after the forward (before the backward), where
its memory is held: the layers' workspaces, the conv caches' saved patch matrices, and the
other forward caches (inputs and activations kept for backward), deduplicated by buffer.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from common import LoadMonitor, machine_info, markdown_table  # noqa: E402

LAYERS = ((64, 1), (128, 2), (256, 2), (512, 2))     # (channels, first block's stride), 2 blocks each
CLASSES = 1000
MIB = 1024 * 1024


def _retain_freed_memory() -> bool:
    """convgrad.memory.retain_freed_memory, loaded from its file so the torch child does not
    import (and pay the memory of) the convgrad package."""
    spec = importlib.util.spec_from_file_location("_cg_memory", os.path.join(ROOT, "convgrad", "memory.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.retain_freed_memory()


def convgrad_resnet18(generator=0):
    from convgrad import nn
    from convgrad.nn import init
    rng = init.make_rng(generator)
    blocks, c_in = [], 64
    for c, stride in LAYERS:
        blocks += [nn.BasicBlock(c_in, c, stride, generator=rng), nn.BasicBlock(c, c, 1, generator=rng)]
        c_in = c
    return nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False, generator=rng), nn.BatchNorm2d(64),
                         nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1), *blocks, nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(512, CLASSES, generator=rng))


def torch_resnet18():
    """The same graph and state_dict names as convgrad_resnet18 (torchvision's layout)."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                             if stride != 1 or c_in != c_out else None)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))

    blocks, c_in = [], 64
    for c, stride in LAYERS:
        blocks += [BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)]
        c_in = c
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, CLASSES))


def _batch(batch, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 3, 224, 224), dtype=np.float32),
            rng.integers(0, CLASSES, size=batch).astype(np.int64))


def _nbytes_by_buffer(arrays) -> int:
    """Bytes of distinct memory blocks behind the arrays (views counted once)."""
    seen = {}
    for a in arrays:
        base = a
        while isinstance(base.base, np.ndarray):
            base = base.base
        seen[id(base)] = base.nbytes
    return sum(seen.values())


def _arrays_in(obj, depth=0):
    if isinstance(obj, np.ndarray):
        yield obj
    elif depth > 4 or obj is None:
        return
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays_in(v, depth + 1)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _arrays_in(v, depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            if name not in ("w", "workspace"):
                yield from _arrays_in(getattr(obj, name), depth + 1)


def memory_breakdown(model) -> dict:
    """MiB held between forward and backward, by kind (each buffer counted once overall)."""
    from convgrad import nn
    kinds = {"conv saved patches": [], "conv cached inputs": [], "other caches": [], "conv workspaces (rest)": []}
    for m in model.modules():
        cache = getattr(m, "_cache", None)
        if isinstance(m, nn.Conv2d):
            kinds["conv workspaces (rest)"] += list(_arrays_in(m._workspace))
            if cache is not None:
                kinds["conv saved patches"] += list(_arrays_in(cache.saved))
                kinds["conv cached inputs"] += [cache.x]
        elif cache is not None:
            kinds["other caches"] += list(_arrays_in(cache))
    try:                                      # the engine's per-thread scratch pool, where it has one
        from convgrad.functional.convolution import workspace
        kinds["conv scratch pool"] = list(getattr(workspace._pool, "blocks", {}).values())
    except ImportError:
        pass
    out, counted = {}, set()
    for kind, arrays in kinds.items():
        fresh = [a for a in arrays if id(_root(a)) not in counted]
        out[kind] = _nbytes_by_buffer(fresh) / MIB
        counted |= {id(_root(a)) for a in fresh}
    return out


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def run_convgrad(batch, steps, init_path, breakdown, split_threads=None):
    from convgrad import nn
    from convgrad.parallel import DataParallel
    model = convgrad_resnet18()
    runner = DataParallel(model, split_threads) if split_threads else model
    with np.load(init_path) as init:
        model.load_state_dict({k: init[k] for k in init.files})
    crit = nn.CrossEntropyLoss()
    x, t = _batch(batch)
    times, extra = [], {}
    for step in range(steps + 1):
        start = time.perf_counter()
        model.zero_grad()
        logits = runner(x)
        if breakdown and step == 0:
            extra["held_after_forward_mib"] = memory_breakdown(model)
        loss = crit(logits, t)
        grad = crit.backward()
        with nn.free_caches():          # each layer's cache freed once used (convgrad train; torch frees its graph)
            runner.backward(grad, input_grad=False)
        times.append(time.perf_counter() - start)
        if step == 0:
            extra["loss"] = float(loss)
            extra["logits"] = logits[:2, :5].tolist()
            extra["conv1_grad"] = model[0].weight.grad.reshape(-1).tolist()
    return times[1:], extra


def run_torch(batch, steps, init_path, threads):
    import torch
    torch.set_num_threads(threads)
    model = torch_resnet18()
    with np.load(init_path) as init:
        missing = model.load_state_dict({k: torch.from_numpy(init[k]) for k in init.files}, strict=False)
    if missing.missing_keys and any(not k.endswith("num_batches_tracked") for k in missing.missing_keys):
        raise RuntimeError(f"torch model did not get every weight: {missing}")
    crit = torch.nn.CrossEntropyLoss()
    xn, tn = _batch(batch)
    x, t = torch.from_numpy(xn), torch.from_numpy(tn)
    times, extra = [], {}
    for step in range(steps + 1):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        logits = model(x)
        loss = crit(logits, t)
        loss.backward()
        times.append(time.perf_counter() - start)
        if step == 0:
            extra["loss"] = float(loss)
            extra["logits"] = logits[:2, :5].detach().tolist()
            extra["conv1_grad"] = model[0].weight.grad.reshape(-1).tolist()
        del logits, loss
    return times[1:], extra


def interleaved(batch, steps, threads, retain, split=False):
    """Time only: both libraries in this process, steps alternating (convgrad, torch, torch,
    convgrad, ...) after one untimed step each, so a busy machine slows both alike.
    -> {"convgrad": [s, ...], "torch": [s, ...]}."""
    import torch
    from convgrad import nn
    if retain:
        _retain_freed_memory()
    torch.set_num_threads(threads)
    limit = None
    if threads != 2:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(threads)
    from convgrad.parallel import DataParallel
    cg, th = convgrad_resnet18(), torch_resnet18()
    runner = DataParallel(cg, threads) if split else cg
    th.load_state_dict({k: torch.from_numpy(v) for k, v in cg.state_dict().items()}, strict=False)
    crit_cg, crit_th = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    xn, tn = _batch(batch)
    x, t = torch.from_numpy(xn), torch.from_numpy(tn)

    def step_cg():
        cg.zero_grad()
        crit_cg(runner(xn), tn)
        grad = crit_cg.backward()
        with nn.free_caches():
            runner.backward(grad, input_grad=False)

    def step_th():
        th.zero_grad(set_to_none=True)
        crit_th(th(x), t).backward()
    fns = {"convgrad": step_cg, "torch": step_th}
    times = {"convgrad": [], "torch": []}
    for name in fns:
        fns[name]()
    for r in range(steps):
        for name in (("convgrad", "torch") if r % 2 == 0 else ("torch", "convgrad")):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
        print(f"  batch {batch} round {r}: convgrad {times['convgrad'][-1]:.2f} s, torch {times['torch'][-1]:.2f} s",
              file=sys.stderr, flush=True)
    del limit
    return times


def _child(args):
    retained = _retain_freed_memory() if args.allocator == ["retain"] else False
    if args.child == "convgrad":
        limit = None
        if args.threads != 2 and not args.split:     # NumPy's BLAS to this many threads (threadpoolctl)
            from threadpoolctl import threadpool_limits
            limit = threadpool_limits(args.threads)
        times, extra = run_convgrad(args.child_batch, args.steps, args.init, args.breakdown,
                                    args.threads if args.split else None)
        del limit
    else:
        times, extra = run_torch(args.child_batch, args.steps, args.init, args.threads)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "peak_rss_mib": peak, "retained": retained, **extra}))


def _spawn(which, batch, allocator, args, init):
    cmd = [sys.executable, __file__, "--child", which, "--child-batch", str(batch), "--steps", str(args.steps),
           "--allocator", allocator, "--init", init, "--threads", str(args.threads)] + (["--breakdown"] if args.breakdown else []) \
        + (["--split"] if args.split else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_init(path):
    sys.path.insert(0, ROOT)
    model = convgrad_resnet18()
    np.savez(path, **model.state_dict())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32, 64, 128])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per subprocess (after one untimed)")
    ap.add_argument("--repeats", type=int, default=1, help="subprocesses per library and setting, alternated")
    ap.add_argument("--allocator", nargs="+", choices=("retain", "default"), default=["retain", "default"])
    ap.add_argument("--breakdown", action="store_true", help="convgrad: where memory is held after the forward")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads of both libraries: torch.set_num_threads, NumPy's BLAS via threadpoolctl")
    ap.add_argument("--split", action="store_true",
                    help="convgrad through DataParallel(model, threads), as convgrad train runs it")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", choices=("convgrad", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--child-batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    ap.add_argument("--interleaved", action="store_true",
                    help="time only: both libraries in one process, steps alternating (no RSS)")
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)
    if args.interleaved:
        return _main_interleaved(args)
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp, LoadMonitor() as load:
        init = os.path.join(tmp, "init.npz")
        _write_init(init)
        for batch in args.batch:
            for allocator in args.allocator:
                runs = {"convgrad": [], "torch": []}
                for rep in range(args.repeats):
                    for which in (("convgrad", "torch") if rep % 2 == 0 else ("torch", "convgrad")):
                        runs[which].append(_spawn(which, batch, allocator, args, init))
                        print(f"  batch {batch:4d} {allocator:8s} {which:8s} "
                              f"{json.dumps({k: v for k, v in runs[which][-1].items() if k not in ('logits', 'conv1_grad')})}",
                              file=sys.stderr, flush=True)
                results.append(_summarise(batch, allocator, runs))
                rows.append(_row(results[-1]))
    print(f"ResNet-18, 224x224, float32, one training step (forward + loss + backward), {args.threads} thread(s) "
          f"each{' (convgrad: DataParallel)' if args.split else ''}, {args.steps} timed steps per subprocess, {args.repeats} subprocess(es) each, alternated")
    print(markdown_table(["batch", "allocator", "convgrad s/step", "torch s/step", "time ratio",
                          "convgrad peak RSS MiB", "torch peak RSS MiB", "RSS ratio", "agreement"], rows))
    if args.breakdown:
        for r in results:
            if r.get("breakdown"):
                print(f"batch {r['batch']} ({r['allocator']}): convgrad memory held after forward (MiB): "
                      + ", ".join(f"{k} {v:.0f}" for k, v in r["breakdown"].items()))
    _finish(args, load, {"results": results})


def _main_interleaved(args):
    rows, results = [], []
    with LoadMonitor() as load:
        for batch in args.batch:
            for allocator in args.allocator:
                times = interleaved(batch, args.steps, args.threads, allocator == "retain", args.split)
                med = {k: statistics.median(v) for k, v in times.items()}
                per_round = [c / t for c, t in zip(times["convgrad"], times["torch"])]
                results.append({"batch": batch, "allocator": allocator, "times": times,
                                "time_ratio": med["convgrad"] / med["torch"], "round_ratios": per_round})
                rows.append([batch, allocator, f"{med['convgrad']:.2f}", f"{med['torch']:.2f}",
                             f"{med['convgrad'] / med['torch']:.2f}",
                             f"{min(per_round):.2f}-{max(per_round):.2f}"])
    print(f"ResNet-18, 224x224, float32, one training step, {args.threads} thread(s) each"
          f"{' (convgrad: DataParallel)' if args.split else ''}, both libraries in one "
          f"process, {args.steps} alternating rounds (time only)")
    print(markdown_table(["batch", "allocator", "convgrad s/step", "torch s/step", "ratio of medians",
                          "per-round ratios"], rows))
    _finish(args, load, {"interleaved": results})


def _finish(args, load, payload: dict):
    """The load line, and --json: machine, threads, payload and load, written atomically."""
    if load.other is not None:
        print(f"Other processes used {100 * load.other:.0f}% of the CPUs during the run (machine shared).")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"machine": machine_info(), "threads": args.threads, **payload, "other_load": load.other},
                      f, indent=2)
        os.replace(args.json + ".tmp", args.json)


def _summarise(batch, allocator, runs):
    out = {"batch": batch, "allocator": allocator}
    for which, reps in runs.items():
        ok = [r for r in reps if "error" in r] == []
        if not ok:
            out[which] = {"error": next(r["error"] for r in reps if "error" in r)}
            continue
        times = [t for r in reps for t in r["times"]]
        out[which] = {"seconds": statistics.median(times), "seconds_min": min(times), "seconds_max": max(times),
                      "peak_rss_mib": max(r["peak_rss_mib"] for r in reps), "loss": reps[0]["loss"],
                      "logits": reps[0]["logits"], "conv1_grad": reps[0]["conv1_grad"]}
        if which == "convgrad" and "held_after_forward_mib" in reps[0]:
            out["breakdown"] = reps[0]["held_after_forward_mib"]
    cg, th = out["convgrad"], out["torch"]
    if "error" not in cg and "error" not in th:
        out["time_ratio"] = cg["seconds"] / th["seconds"]
        out["rss_ratio"] = cg["peak_rss_mib"] / th["peak_rss_mib"]
        logit_err = np.abs(np.array(cg["logits"]) - np.array(th["logits"])).max() / np.abs(th["logits"]).max()
        grad_err = (np.abs(np.array(cg.pop("conv1_grad")) - np.array(th["conv1_grad"])).max()
                    / (np.abs(th.pop("conv1_grad")).max() + 1e-30))
        out["agreement"] = {"logits": float(logit_err), "conv1_grad": float(grad_err)}
    return out


def _row(r):
    cg, th = r["convgrad"], r["torch"]

    def cell(side, key, fmt):
        if "error" in side:
            return "failed: " + side["error"][:40]
        return fmt.format(side[key]) + (f" ({side['seconds_min']:.2f}-{side['seconds_max']:.2f})" if key == "seconds" else "")
    agree = (f"logits {r['agreement']['logits']:.0e}, conv1 dW {r['agreement']['conv1_grad']:.0e}"
             if "agreement" in r else "")
    return [r["batch"], r["allocator"], cell(cg, "seconds", "{:.2f}"), cell(th, "seconds", "{:.2f}"),
            f"{r['time_ratio']:.2f}" if "time_ratio" in r else "-", cell(cg, "peak_rss_mib", "{:.0f}"),
            cell(th, "peak_rss_mib", "{:.0f}"), f"{r['rss_ratio']:.2f}" if "rss_ratio" in r else "-", agree]


if __name__ == "__main__":
    main()
