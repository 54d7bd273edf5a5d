"""How a Module call runs: explicit (arrays in, the module keeps its cache), recorded (Tensors
in: one Node holding that call's own cache) or cache-free (under `no_grad`).

A module's cache is its *state*: the instance attributes forward sets, other than its
parameters, buffers, submodules and `training` (`_cache` by convention). A snapshot is that
state for the module and every submodule; restoring one puts a call's caches back.

Explicit mode allows a module to be called several times in one pass (one outermost call)
before its backward: each repeat call pushes the earlier call's snapshot, and the module's
backward pops it when done, so backward calls in reverse order find their own caches (last
in, first out). Calls in separate passes (a new outermost call each) replace the cache, as an
inference loop needs; walking back through a chain of such calls that used a module twice
(whose first cache was replaced) is an error naming the module, never a wrong gradient. Recorded mode needs no such order: each node
carries its own snapshot.

Inside `free_caches()` (per thread, as no_grad) a module's cache is dropped as soon as its
backward has run, as torch frees a graph's saved tensors: a training step's memory then falls
through the backward instead of holding every cache until the next forward. A second backward
of that forward is an error naming the module.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import threading

import numpy as np

from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..autograd.graph import Node
from ..autograd.tensor import Tensor, _from_foreign, wrap_outputs

_MACHINERY = frozenset({"_parameters", "_buffers", "_modules", "training", "_in_backward"})
_local = threading.local()
_passes = itertools.count(1)
_calls = itertools.count()


def _state(m) -> dict:
    d = m.__dict__
    params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
    return {k: v for k, v in d.items()
            if k not in _MACHINERY and k not in params and k not in buffers and k not in modules}


def _subtree(module) -> list:
    """module and every submodule, once each (no names built: this runs on every recorded call)."""
    found, seen, i = [module], {id(module)}, 0
    while i < len(found):
        for child in found[i]._modules.values():
            if id(child) not in seen:
                seen.add(id(child))
                found.append(child)
        i += 1
    return found


def snapshot(module) -> list:
    """The state (caches) of module and of every submodule."""
    return [(m, _state(m)) for m in _subtree(module)]


def restore(snap: list, current: list | None = None) -> None:
    """Put a snapshot back: attributes set since are removed, the snapshot's values restored.
    current: the snapshot of the state now, if just taken (saves taking it again)."""
    for i, (m, state) in enumerate(snap):
        d = m.__dict__
        now = current[i][1] if current is not None else _state(m)
        for k in now.keys() - state.keys():
            d.pop(k, None)
        d.update(state)


def freeing_caches() -> bool:
    """Whether modules drop their forward cache once their backward has run (this thread)."""
    return getattr(_local, "free_caches", False)


@contextlib.contextmanager
def free_caches(enabled: bool = True):
    """While open, on this thread (and in the parts DataParallel runs for it), each module drops
    its forward cache (`_cache`) as soon as its backward has run, as torch frees a graph's saved
    tensors after backward: the memory of a training step falls through the backward instead
    of holding every layer's cache until the next forward. A second backward of the same
    forward is then a RuntimeError naming the module (outside, it is allowed: gradient checks
    and Jacobians use it). `convgrad train` runs its backward passes inside.

    Example:
        >>> model, loss_fn = nn.Linear(3, 2), nn.MSELoss()
        >>> loss = loss_fn(model(np.ones((4, 3), np.float32)), np.zeros((4, 2), np.float32))
        >>> with nn.free_caches():
        ...     dx = model.backward(loss_fn.backward())
        >>> dx.shape
        (4, 3)
    """
    before = freeing_caches()
    _local.free_caches = bool(enabled)
    try:
        yield
    finally:
        _local.free_caches = before


def _has_tensor(args, kwargs) -> bool:
    return any(isinstance(a, Tensor) for a in args) or any(isinstance(a, Tensor) for a in kwargs.values())


def call(module, args, kwargs, own_backward: bool):
    """Module.__call__: dispatch on the mode. torch tensors are read as arrays (without torch)."""
    if not all(isinstance(a, (np.ndarray, Tensor)) for a in args):
        args = tuple(_from_foreign(a) for a in args)
    if not own_backward:                              # forward-only: its Tensor ops record themselves
        args = tuple(Tensor(a) if isinstance(a, np.ndarray) else a for a in args)
        return module.forward(*args, **kwargs)
    if _has_tensor(args, kwargs):
        return _recorded(module, args, kwargs)
    if not is_grad_enabled():
        before = snapshot(module)
        try:
            return module.forward(*args, **kwargs)
        finally:
            restore(before)
    return _explicit(module, args, kwargs)


def _explicit(module, args, kwargs):
    depth = getattr(_local, "depth", 0)
    if depth == 0:
        _local.pass_id = next(_passes)
    d = module.__dict__
    if d.get("_call_pass") == _local.pass_id:        # a repeat call in this pass: keep the earlier cache
        d["_call_stack"] = (snapshot(module), d.get("_call_stack"))
    else:                                            # a new pass: an earlier call not yet differentiated
        d["_call_pass"], d["_call_stack"] = _local.pass_id, None     # loses its cache (an "orphan")
        d["_call_orphan"] = d.get("_call_seq") if d.get("_call_differentiated") is False else None
    d["_call_seq"], d["_call_differentiated"] = next(_calls), False
    d.pop("_cache_freed", None)
    _local.depth = depth + 1
    try:
        return module.forward(*args, **kwargs)
    finally:
        _local.depth = depth


def _backward_of_orphan(d: dict) -> bool:
    """A second backward of a call, made after the backward of some call that came between an
    orphaned earlier call of this module and this one: the caller is walking back through a
    chain that used this module twice, and wants the orphan's cache, which is gone. (A second
    backward straight after the first, as gradient checks do, is fine.)"""
    orphan, last = d.get("_call_orphan"), getattr(_local, "last_backward", None)
    return (bool(d.get("_call_differentiated")) and d.get("_call_stack") is None and orphan is not None
            and last is not None and orphan < last < d["_call_seq"])


def pops_call_stack(backward):
    """Wrap a Module subclass's backward: when done, the cache of the call before is put back."""
    if getattr(backward, "_pops_call_stack", False):
        return backward

    @functools.wraps(backward)
    def wrapper(self, *args, **kwargs):
        d = self.__dict__
        if d.get("_in_backward"):                    # super().backward inside a subclass's backward
            return backward(self, *args, **kwargs)
        if _backward_of_orphan(d):
            raise RuntimeError(
                f"{type(self).__name__}.backward(): this module was called again, outside one forward pass, "
                f"before the backward of its earlier call, so that call's cache is gone and its gradient would "
                f"be wrong. Call it inside one Module's forward or a Sequential (each call then keeps its own "
                f"cache), or use recorded mode (call the model with convgrad.tensor(x), then loss.backward())")
        d["_in_backward"] = True
        try:
            return backward(self, *args, **kwargs)
        finally:
            d["_in_backward"] = False
            _local.last_backward = d.get("_call_seq")
            stack = d.get("_call_stack")
            if stack is not None:
                restore(stack[0])
            else:
                d["_call_differentiated"] = True
                if freeing_caches() and d.get("_cache") is not None:
                    d["_cache"], d["_cache_freed"] = None, True
    wrapper._pops_call_stack = True
    return wrapper


def _recorded(module, args, kwargs):
    """One node for the whole call, run through the module's own backward."""
    arrays = tuple(a.data if isinstance(a, Tensor) else a for a in args)
    kwarrays = {k: (v.data if isinstance(v, Tensor) else v) for k, v in kwargs.items()}
    wants = is_grad_enabled() and (any(isinstance(a, Tensor) and a.requires_grad for a in args)
                                   or any(p is not None and p.requires_grad
                                          for m in _subtree(module) for p in m._parameters.values()))
    if not wants:
        with no_grad():
            return wrap_outputs(call(module, arrays, kwarrays, True), None)
    before = snapshot(module)
    out = _explicit(module, arrays, kwarrays)
    after = snapshot(module)
    restore(before, after)
    first = out[0] if isinstance(out, tuple) else out
    y = first if hasattr(first, "shape") else np.asarray(first)
    inputs = [a if isinstance(a, Tensor) else None for a in args]
    constants = {i: np.asarray(a) for i, a in enumerate(args) if not isinstance(a, Tensor) and a is not None}
    node = Node(type(module).__name__, _module_backward, (module, before, after, len(inputs)), inputs, y.shape,
                y.dtype, module=module, constants=constants)
    return wrap_outputs(out, node)


def _module_backward(grad_out, cache, needs):
    """Restore the call's caches, run the module's backward, put back the state from before the call."""
    module, before, after, n_inputs = cache
    restore(after)
    try:
        if not needs[0] and getattr(module, "skips_input_grad", False):
            grads = module.backward(grad_out, input_grad=False)
        else:
            grads = module.backward(grad_out)
        if n_inputs > 1 and needs[1] and not isinstance(grads, tuple) and hasattr(module, "target_backward"):
            grads = (grads, module.target_backward(grad_out))     # a loss's target that requires grad
    finally:
        restore(before)
    if n_inputs == 1:
        return (grads,)
    if isinstance(grads, tuple):
        return grads + (None,) * (n_inputs - len(grads))
    return (grads,) + (None,) * (n_inputs - 1)
