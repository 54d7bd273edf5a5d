"""Data parallelism over CPU threads. For example::

    runner = DataParallel(model, threads=2)
    logits = runner(x)              # x (N, ...) -> (N, ...), the batch split across threads
    runner.backward(dlogits)        # the parameter gradients of all parts, added into model's

forward cuts the batch into `threads` contiguous parts. Part 0 runs through `model` itself on
the calling thread; part t through replica t, a copy of the model made once whose parameters
are pointed at the model's own arrays before every call, on a worker thread (its buffers are
private copies of the model's, refreshed before every call: only part 0 updates the model's).
The outputs are concatenated in order. backward sends the same parts of the output gradient
back through the same members, then adds each replica's parameter gradients to the model's,
in thread order: the unsplit gradient up to the order of the float additions, and the same
result for the same number of threads every time.

The parts really run at once because NumPy releases the GIL inside its array loops and BLAS
calls. While they run, BLAS is held to one thread per caller (threadpoolctl): each caller
starting BLAS's own two-thread pool oversubscribes the cores (measured 2.5x slower than not
splitting at all).

Layers that couple the samples of a batch meet through batch_parts.py: in training BatchNorm
adds its statistics (and its backward's two sums) over the parts, and Dropout's mask for the
whole batch is drawn by part 0 from the model's generator; each part uses its rows. So the
split changes nothing but the order of float additions, in training as in eval. Without
threadpoolctl installed DataParallel runs unsplit (and says so once).
"""
from __future__ import annotations

import copy
import threading
import warnings

import numpy as np

from . import _threads
from ._threads import available_cpus  # noqa: F401  (re-exported: the default thread count)
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from .batch_parts import BatchParts
from .nn.calls import free_caches, freeing_caches
from .nn.module import Module, Sequential

MIN_PART = 4        # samples per part below which splitting is not worth a thread


_controller = None


def _blas_one_thread():
    """A context manager holding BLAS to one thread, or None without threadpoolctl."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            warnings.warn("DataParallel: threadpoolctl is not installed, so the batch is not split across "
                          "threads (pip install threadpoolctl)", RuntimeWarning, stacklevel=3)
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas") if _controller else None


def _backward(member: Module, grad: np.ndarray, input_grad: bool):
    if input_grad:
        return member.backward(grad)
    if isinstance(member, Sequential) or getattr(member, "skips_input_grad", False):
        return member.backward(grad, input_grad=False)
    member.backward(grad)
    return None


class DataParallel(Module):
    """Runs `module` on `threads` parts of each batch at once (see the module docstring).
    threads=None: the CPUs available to the process. `module` maps (N, ...) -> (N, ...)."""

    def __init__(self, module: Module, threads: int | None = None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module, got {type(module).__name__}")
        threads = available_cpus() if threads is None else threads
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"DataParallel: threads must be a positive integer, got {threads!r}")
        self.module = module
        self.threads = int(threads)
        object.__setattr__(self, "_replicas", [])
        object.__setattr__(self, "_parts", None)     # the batch slices of the last forward; None: unsplit
        object.__setattr__(self, "_group", None)     # their BatchParts, which its backward meets through

    # ---- members --------------------------------------------------------------------------
    def _members(self, count: int) -> list:
        """The module and count - 1 replicas, synchronised with it."""
        master = list(self.module.modules())
        if len(self._replicas) < count - 1 or any(len(list(r.modules())) != len(master) for r in self._replicas):
            object.__setattr__(self, "_replicas", [copy.deepcopy(self.module) for _ in range(count - 1)])
        for replica in self._replicas[:count - 1]:
            for m, r in zip(master, replica.modules()):
                object.__setattr__(r, "training", m.training)
                if hasattr(m, "batch_rows"):           # Dropout's rows of a batch spread over processes
                    r.batch_rows = m.batch_rows
                for name, p in m._parameters.items():
                    rp = r._parameters[name]
                    rp.data, rp.grad = p.data, None
                for name, b in m._buffers.items():
                    own = r._buffers.get(name)
                    if b is None or own is None or own is b or own.shape != b.shape or own.dtype != b.dtype:
                        setattr(r, name, None if b is None else b.copy())
                    else:
                        np.copyto(own, b)
        return [self.module, *self._replicas[:count - 1]]

    def _split(self, n: int) -> list | None:
        parts = min(self.threads, n // MIN_PART)
        if parts < 2 or _threads.in_parallel_region():
            return None
        bounds = [n * i // parts for i in range(parts + 1)]
        return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]

    @staticmethod
    def _run(group: BatchParts, calls: list) -> list | None:
        """Run [(fn, arg), ...] at once as the parts of `group` (forward and backward of one
        batch share one), the first on this thread, BLAS held to one thread meanwhile.
        Returns the results in order, or None without threadpoolctl."""
        limit = _blas_one_thread()
        if limit is None:
            return None
        grad_mode = enable_grad if is_grad_enabled() else no_grad      # thread-local: the parts take the caller's
        freeing = freeing_caches()                                      # (as is free_caches)

        def run(indexed):
            index, (fn, arg) = indexed
            with group.enter(index), grad_mode(), free_caches(freeing):
                return fn(arg)

        try:
            with limit:                      # the parts mark their threads busy: no nested splitting
                return _threads.run_parts(run, list(enumerate(calls)))
        except threading.BrokenBarrierError:
            if group.error is not None:      # the error of the part that broke the meeting point
                raise group.error from None
            raise

    # ---- forward / backward ---------------------------------------------------------------
    def forward(self, x):
        """x (N, ...) -> module(x) (N, ...), computed in parts on `threads` threads."""
        parts = self._split(len(x)) if isinstance(x, np.ndarray) and x.ndim >= 1 else None
        outs = group = None
        if parts is not None:
            members = self._members(len(parts))
            group = BatchParts(parts)
            outs = self._run(group, [(m.forward, x[sl]) for m, sl in zip(members, parts)])
        object.__setattr__(self, "_parts", parts if outs is not None else None)
        object.__setattr__(self, "_group", group if outs is not None else None)
        if outs is None:
            return self.module(x)
        return np.concatenate(outs)

    def backward(self, grad_out, input_grad: bool = True):
        """grad_out (N, ...) -> dx (N, ...), or None with input_grad=False (the input is data).
        The module's parameter gradients receive the sum over the parts."""
        parts = self._parts
        if parts is None:
            return _backward(self.module, grad_out, input_grad)
        n = parts[-1].stop
        if not isinstance(grad_out, np.ndarray) or grad_out.ndim < 1 or len(grad_out) != n:
            shape = getattr(grad_out, "shape", type(grad_out).__name__)
            raise ValueError(f"DataParallel backward: expected grad_output with {n} samples (the forward's batch), "
                             f"got {shape}")
        members = [self.module, *self._replicas[:len(parts) - 1]]
        dxs = self._run(self._group, [(lambda g, m=m: _backward(m, g, input_grad), grad_out[sl])
                         for m, sl in zip(members, parts)])
        master = list(self.module.parameters())
        for replica in members[1:]:
            for p, rp in zip(master, replica.parameters()):
                if rp.grad is not None:
                    p.accumulate(rp.grad)
                    rp.grad = None
        return np.concatenate(dxs) if input_grad else None

    def extra_repr(self) -> str:
        return f"threads={self.threads}"
