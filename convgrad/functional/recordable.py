"""Functional ops meet recorded mode here without importing it.

`recordable(plain, forward, backward, grads)` returns `plain` for arrays; called with any
convgrad.Tensor it hands the call to the recorder that convgrad.autograd registers, which runs
`forward` (the same arguments, returning (y, cache)) and records `backward(dy, cache)` whose
results are the gradients of the arguments named in `grads`, in that order.
"""
from __future__ import annotations

import functools
import inspect

_recorder = None


def set_recorder(recorder) -> None:
    """recorder.is_tensor(value) -> bool; recorder.record(name, forward, backward, grads, arguments)."""
    global _recorder
    _recorder = recorder


def recordable(plain, forward, backward, grads: tuple):
    signature = inspect.signature(plain)

    @functools.wraps(plain)
    def op(*args, **kwargs):
        rec = _recorder
        if rec is not None and (any(map(rec.is_tensor, args)) or any(map(rec.is_tensor, kwargs.values()))):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return rec.record(plain.__name__, forward, backward, grads, dict(bound.arguments))
        return plain(*args, **kwargs)
    return op
