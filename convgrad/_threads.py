"""Intra-op threads: a route whose work NumPy runs on one core (many small BLAS calls and
copies, e.g. depthwise convolution) splits its independent channels into one part per
thread. NumPy releases the GIL inside its loops and BLAS calls, so the parts run at once.

    set_num_threads(n) / get_num_threads()      (default: the CPUs available, as torch)

A part that is already running on a convgrad thread (or inside DataParallel) does not split
again: the cores are taken. Parts that each call BLAS hold it to one thread meanwhile
(blas_one_thread, through threadpoolctl): every caller starting BLAS's own pool oversubscribes
the cores.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_local = threading.local()
_state = {"threads": None, "pool": None, "workers": 0}
_lock = threading.Lock()
_blas = {"controller": None}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """Threads a splittable route may use (1: never split)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    with _lock:
        _state["threads"] = n


def get_num_threads() -> int:
    """Threads a splittable route may use: set_num_threads's value, by default the CPUs available."""
    if _state["threads"] is None:
        _state["threads"] = available_cpus()
    return _state["threads"]


def in_parallel_region() -> bool:
    return getattr(_local, "busy", False)


@contextmanager
def parallel_region():
    """Mark the calling thread as one of several running at once (no nested splitting)."""
    before = in_parallel_region()
    _local.busy = True
    try:
        yield
    finally:
        _local.busy = before


def _blas_controller():
    """threadpoolctl's ThreadpoolController (made once), or False without threadpoolctl."""
    if _blas["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas["controller"] = False
        else:
            _blas["controller"] = ThreadpoolController()
    return _blas["controller"]


def blas_one_thread():
    """A context manager holding BLAS to one thread (process-wide) while it is open, or None
    without threadpoolctl. The limit takes effect when this is called: enter it at once."""
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller else None


def blas_parts(n: int, min_part: int) -> list[slice] | None:
    """parts(n, min_part), or None without threadpoolctl (parts that call BLAS need
    blas_one_thread)."""
    return parts(n, min_part) if _blas_controller() else None


def parts(n: int, min_part: int) -> list[slice] | None:
    """Contiguous slices of range(n), one per thread, or None when not worth splitting."""
    count = min(get_num_threads(), n // max(1, min_part))
    if count < 2 or in_parallel_region():
        return None
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        if _state["pool"] is None or _state["workers"] < workers:
            _state["pool"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convgrad")
            _state["workers"] = workers
        return _state["pool"]


def _marked(fn, arg):
    with parallel_region():
        return fn(arg)


def run_parts(fn, args: list) -> list:
    """[fn(a) for a in args], the first on this thread and the others on the pool, at once.
    Waits for every part before raising the first error."""
    futures = [_pool(len(args) - 1).submit(_marked, fn, a) for a in args[1:]]
    results, error = [], None
    try:
        results.append(_marked(fn, args[0]))
    except BaseException as e:
        error = e
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
    return results
