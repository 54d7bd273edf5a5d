"""DistributedDataParallel: the model replicated on every MPI rank, gradients averaged by allreduce.

    rank, world_size = distributed.init()
    model = DistributedDataParallel(model)       # rank 0's parameters and buffers broadcast to all
    logits = model(x)                            # x: this rank's share of the global batch
    model.backward(loss_fn.backward(), input_grad=False)   # Parameter.grad: the mean over ranks

As torch's: each rank's loss is the mean over its own samples, and averaging the gradients
over ranks gives the gradient of the mean over the global batch when the shares are equal
(DistributedSampler pads them equal). reduce="sum" adds them instead, for callers that scale
the loss by the global batch themselves (see split.py).

Gradients travel in buckets of about `bucket_mb` MB: parameters are taken in reverse
registration order (the order backward reaches them), each bucket is one flat array and one
MPI_Iallreduce. When the model is a Sequential (and overlap=True), its children's backward
runs step by step here and a bucket is started as soon as the last of its parameters has its
gradient, so its transfer runs while the earlier layers' backward still computes; every step
polls the requests in flight (MPI moves a non-blocking transfer on only inside MPI calls).
Other models, or overlap=False, reduce all buckets after the backward. A model without a
backward of its own (forward-only, recorded mode) is run as `loss_fn(ddp.module(t), y).backward()`
followed by `ddp.allreduce_gradients()`. `stats` counts the
bytes reduced and the seconds spent in the reduction (starting, polling, waiting, copying).
"""
from __future__ import annotations

import time

import numpy as np

from ..nn.module import Module, Sequential
from ..parallel import _backward as backward_of
from . import comm as _comm

DEFAULT_BUCKET_MB = 4.0


class _Bucket:
    def __init__(self, params: list):
        self.params = params
        self.buffer = np.empty(sum(p.data.size for p in params), params[0].data.dtype)
        self.pending = len(params)
        self.request = None


class GradientReducer:
    """Allreduce of the parameters' gradients in buckets, started as buckets fill (module docstring)."""

    def __init__(self, params: list, comm, bucket_bytes: int, average: bool):
        self.comm, self.average = comm, average
        self.world = comm.Get_size()
        self.buckets, current, size = [], [], 0
        for p in reversed(params):              # backward reaches the last layers first
            if current and (size + p.data.nbytes > bucket_bytes or p.data.dtype != current[0].data.dtype):
                self.buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p.data.nbytes
        if current:
            self.buckets.append(_Bucket(current))
        self.bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self.stats = {"steps": 0, "bytes": 0, "seconds": 0.0, "buckets": len(self.buckets)}
        self._ready, self._next = set(), 0

    def begin(self) -> None:
        self._ready, self._next = set(), 0
        for b in self.buckets:
            b.pending, b.request = len(b.params), None

    def ready(self, params) -> None:
        """These parameters' gradients are final: start every bucket that is now complete, in order."""
        start = time.perf_counter()
        for p in params:
            bucket = self.bucket_of.get(id(p))
            if bucket is not None and id(p) not in self._ready:
                self._ready.add(id(p))
                bucket.pending -= 1
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            self._launch(self.buckets[self._next])
            self._next += 1
        in_flight = [b.request for b in self.buckets[:self._next] if b.request is not None]
        if in_flight:
            _comm.mpi().Request.Testall(in_flight)
        self.stats["seconds"] += time.perf_counter() - start

    def _launch(self, bucket: _Bucket) -> None:
        offset = 0
        for p in bucket.params:
            n = p.data.size
            bucket.buffer[offset:offset + n] = 0 if p.grad is None else p.grad.reshape(-1)
            offset += n
        MPI = _comm.mpi()
        bucket.request = self.comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)

    def finish(self) -> None:
        """Start what is left, wait for everything and write the reduced gradients back."""
        self.ready([p for b in self.buckets for p in b.params])
        start = time.perf_counter()
        _comm.wait([b.request for b in self.buckets])
        for bucket in self.buckets:
            if self.average:
                bucket.buffer /= self.world
            offset = 0
            for p in bucket.params:
                n = p.data.size
                reduced = bucket.buffer[offset:offset + n].reshape(p.data.shape)
                if p.grad is None:
                    p.grad = reduced.copy()
                else:
                    p.grad[...] = reduced
                offset += n
            self.stats["bytes"] += bucket.buffer.nbytes
        self.stats["steps"] += 1
        self.stats["seconds"] += time.perf_counter() - start


class DistributedDataParallel(Module):
    """`module` on every rank, its gradients averaged (or summed) over ranks after backward.

    module     any Module; a Sequential gets its buckets started during backward (overlap)
    bucket_mb  bucket size in MB (10**6 bytes)
    reduce     "mean" (torch's DDP) or "sum"
    overlap    start buckets during a Sequential's backward (False: all after it)
    comm       an mpi4py communicator (default: the one distributed.init() chose)

    forward(x): (N_local, ...) -> module(x); backward(grad_out, input_grad=True) -> dx of the
    local batch (None with input_grad=False). state_dict/load_state_dict are the module's, so
    checkpoints carry no wrapper prefix.
    """

    def __init__(self, module: Module, bucket_mb: float = DEFAULT_BUCKET_MB, reduce: str = "mean",
                 overlap: bool = True, comm=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if reduce not in ("mean", "sum"):
            raise ValueError(f"DistributedDataParallel: reduce must be 'mean' or 'sum', got {reduce!r}")
        if not bucket_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_mb must be > 0, got {bucket_mb!r}")
        self.module = module
        self.bucket_mb, self.reduce, self.overlap = float(bucket_mb), reduce, bool(overlap)
        object.__setattr__(self, "comm", comm or _comm.communicator())
        self.broadcast_state()
        trained = [p for p in module.parameters() if getattr(p, "requires_grad", True)]   # frozen ones stay out
        object.__setattr__(self, "reducer", GradientReducer(trained, self.comm, int(self.bucket_mb * 1e6),
                                                            reduce == "mean"))

    @property
    def stats(self) -> dict:
        """{"steps", "bytes", "seconds", "buckets"}: reductions done, bytes reduced, time in them."""
        return self.reducer.stats

    def broadcast_state(self, root: int = 0) -> None:
        """Overwrite every parameter and buffer with root's (as at construction)."""
        for p in self.module.parameters():
            p.data = p.data if p.data.flags.c_contiguous else p.data.copy(order="C")
            _comm.broadcast_(p.data, root, self.comm)
        for m in self.module.modules():
            for name, b in list(m._buffers.items()):
                if b is not None:
                    b = b if b.flags.c_contiguous else b.copy(order="C")     # (0-d buffers stay 0-d)
                    _comm.broadcast_(b, root, self.comm)
                    setattr(m, name, b)

    def forward(self, x):
        """x (N_local, ...) -> module(x)."""
        return self.module(x)

    def backward(self, grad_out, input_grad: bool = True):
        """grad_out of the local output -> dx (None with input_grad=False); every parameter's
        .grad becomes the mean (or sum) over ranks."""
        self.reducer.begin()
        if self.overlap and isinstance(self.module, Sequential) and getattr(self.module, "_steps", None):
            dx = _sequential_backward(self.module, grad_out, input_grad, self.reducer)
        else:
            dx = backward_of(self.module, grad_out, input_grad)
        self.reducer.finish()
        return dx

    def allreduce_gradients(self) -> None:
        """Average (or sum) the gradients now in Parameter.grad over ranks, all buckets at once:
        for a forward-only module trained in recorded mode, call it after `loss.backward()`
        (the wrapper's own backward covers the explicit API and modules with a backward)."""
        self.reducer.begin()
        self.reducer.finish()

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        self.module.load_state_dict(state, strict)

    def extra_repr(self) -> str:
        return f"world_size={self.comm.Get_size()}, bucket_mb={self.bucket_mb}, reduce={self.reduce!r}"


def _sequential_backward(seq: Sequential, grad, input_grad: bool, reducer: GradientReducer):
    """Sequential.backward step by step, telling the reducer after each step which gradients
    are final (a parameter shared by several steps: after the last of them to run)."""
    steps = list(reversed(seq._steps))
    uses = {}
    for m in steps:
        for p in m.parameters():
            uses[id(p)] = uses.get(id(p), 0) + 1
    for i, m in enumerate(steps):
        if i < len(steps) - 1:
            grad = m.backward(grad)
        else:
            grad = backward_of(m, grad, input_grad)
        final = []
        for p in m.parameters():
            uses[id(p)] -= 1
            if uses[id(p)] == 0:
                final.append(p)
        reducer.ready(final)
    return grad
