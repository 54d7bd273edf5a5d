"""The recorder behind convgrad.functional's ops when they are called with Tensors: one Node per
call, holding that call's cache, whose backward is the op's own functional backward."""
from __future__ import annotations

import numpy as np

from ..functional import recordable
from .grad_mode import is_grad_enabled
from .graph import Node
from .tensor import Tensor, wrap_outputs


def _is_tensor(value) -> bool:
    return isinstance(value, Tensor)


def _record(name, forward, backward, grads, arguments):
    tensors = {k: v for k, v in arguments.items() if isinstance(v, Tensor)}
    if is_grad_enabled():
        for k, v in tensors.items():
            if k not in grads and v.requires_grad:
                raise RuntimeError(f"{name}: argument {k!r} requires grad, but {name} gives no gradient for it "
                                   f"(gradients flow to {', '.join(map(repr, grads))}); pass {k}.detach()")
    arrays = {k: (v.data if isinstance(v, Tensor) else v) for k, v in arguments.items()}
    out, cache = forward(**arrays)
    first = out[0] if isinstance(out, tuple) else out
    wants = is_grad_enabled() and any(tensors[k].requires_grad for k in grads if k in tensors)
    node = None
    if wants:
        inputs = [tensors.get(k) for k in grads]
        attrs = {k: v for k, v in arguments.items() if k not in grads and not isinstance(v, Tensor)}
        constants = {i: np.asarray(arrays[k]) for i, k in enumerate(grads)
                     if k not in tensors and arrays.get(k) is not None}
        node = Node(name, _functional_backward, (backward, cache, len(grads)), inputs, np.shape(first),
                    np.asarray(first).dtype, attrs=attrs, constants=constants)
    return wrap_outputs(out, node)


def _functional_backward(grad_out, cache, needs):
    backward, op_cache, n = cache
    grads = backward(grad_out, op_cache, needs) if getattr(backward, "takes_needs", False) else backward(grad_out, op_cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    return tuple(grads) + (None,) * (n - len(grads))


class _Recorder:
    is_tensor = staticmethod(_is_tensor)
    record = staticmethod(_record)


recordable.set_recorder(_Recorder)
