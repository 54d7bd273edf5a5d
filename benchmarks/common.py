"""Timing helpers shared by the benchmarks in this directory.

Two-thread timings on this kind of machine drift by up to ~30% between rounds, so every
comparison here is made *in the same run*, with the contenders *interleaved* (A B B A A B
...) and summarised by the *median*. Nothing here touches OPENBLAS_* or other environment
variables: the benchmarks measure the libraries as a user would run them.

    interleaved_medians({"a": fa, "b": fb}, reps)   -> {"a": seconds, "b": seconds}
    interleaved_samples(...)                        -> {"a": [seconds, ...], "b": [...]}
    gemm_peak()                                     -> NumPy float32 GEMM GFLOP/s on this machine
    markdown_table(headers, rows)                   -> str
    geomean(values)                                 -> float
    with LoadMonitor() as load: ...; load.other     -> CPU share other processes took meanwhile
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import time
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np


def time_once(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of fn()."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved_samples(fns: Mapping[str, Callable[[], object]], reps: int = 15, warmup: int = 2,
                        min_time: float = 0.0, max_reps: int | None = None) -> dict[str, list[float]]:
    """Seconds of every timed call of each fn, the fns run alternately so drift hits them alike.

    Every round calls each fn once; the order is reversed on every other round (A B, B A, ...)
    so no contender systematically runs right after another. `warmup` untimed rounds come
    first (buffers allocated and faulted in, BLAS threads woken). At least `reps` timed rounds
    are run, and more (up to `max_reps`) until the slowest contender has `min_time` seconds
    of samples.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    max_reps = max(reps, max_reps or reps)
    rnd = 0
    while rnd < reps or (rnd < max_reps and max(sum(s) for s in samples.values()) < min_time):
        order = names if rnd % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(time_once(fns[name]))
        rnd += 1
    return samples


def interleaved_medians(fns: Mapping[str, Callable[[], object]], reps: int = 15, warmup: int = 2,
                        min_time: float = 0.0, max_reps: int | None = None) -> dict[str, float]:
    """Median seconds per call of each fn over interleaved rounds (see interleaved_samples)."""
    samples = interleaved_samples(fns, reps, warmup, min_time, max_reps)
    return {name: statistics.median(s) for name, s in samples.items()}


def gemm_peak(sizes: Sequence[int] = (1024, 2048), dtype=np.float32, reps: int = 5) -> float:
    """This machine's NumPy GEMM rate in GFLOP/s: the best median over square sizes of
    C = A @ B (2 n^3 flops) with a preallocated output, with whatever threads NumPy's BLAS uses."""
    rng = np.random.default_rng(0)
    best = 0.0
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)
        seconds = interleaved_medians({"gemm": lambda: np.matmul(a, b, out=c)}, reps=reps, warmup=2)["gemm"]
        best = max(best, 2.0 * n ** 3 / seconds / 1e9)
    return best


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of positive numbers."""
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; floats formatted by the caller (str() otherwise)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def machine_info() -> dict:
    """What the numbers depend on: CPU, Python, NumPy and its BLAS."""
    info = {"python": platform.python_version(), "machine": platform.machine(), "numpy": np.__version__,
            "cpu": _cpu_model()}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: not essential
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class LoadMonitor:
    """Context manager: how much of the machine's CPU time *other* processes used while the
    block ran (0.0 = idle machine, 1.0 = every core busy with someone else's work). Linux
    /proc/stat; None elsewhere. A benchmark run under heavy foreign load is not comparable
    with one on a quiet machine, even with interleaving (oversubscribed BLAS threads wait on
    each other), so the benchmarks print this next to their numbers."""

    def __enter__(self):
        self._start = (_cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter())
        self.other = None
        return self

    def __exit__(self, *exc):
        busy0, own0, t0 = self._start
        busy1, own1, t1 = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
        if busy0 is not None and busy1 is not None and t1 > t0:
            cores = os.cpu_count() or 1
            self.other = max(0.0, min(1.0, ((busy1 - busy0) - (own1 - own0)) / (cores * (t1 - t0))))
        return False


def _cpu_busy_seconds() -> float | None:
    """Seconds of non-idle CPU time of the whole machine since boot (all cores)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)           # idle + iowait
    busy = sum(fields[:8]) - idle                                      # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (a benchmark that runs
    each library in a subprocess, as bench_resnet does, is not foreign load)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
