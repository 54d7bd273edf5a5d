"""convgrad.summary(model, input_shape): layers, output shapes and parameter counts (as torchinfo)."""
from __future__ import annotations

import numpy as np

from ._dtype import get_default_dtype
from .autograd import Tensor, no_grad
from .nn.module import Module


def _shape_of(out) -> str:
    if isinstance(out, tuple):
        return ", ".join(_shape_of(o) for o in out)
    data = out.data if isinstance(out, Tensor) else out
    return str(list(np.shape(data)))


def _recording(module, method, outputs):
    def recorded(*args, **kwargs):
        out = method(*args, **kwargs)
        outputs[id(module)] = _shape_of(out)
        return out
    return recorded


def summary(model: Module, input_shape, dtype=None, print_fn=print) -> str:
    """Run one forward on zeros of input_shape (batch included) without recording, and list each
    module with the shape of its output and its own parameter count; returns the table (and
    prints it with print_fn unless that is None). Modules not called on their own (e.g. a ReLU
    fused into the max-pool after it) show '-'."""
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a Module, got {type(model).__name__}")
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"summary: input_shape must be a sequence of ints, got {input_shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"summary: input_shape must not be negative, got {shape}")
    outputs: dict[int, str] = {}
    patched = []
    for _, m in model.named_modules():
        for method in ("forward", "forward_relu"):       # forward_relu: a max-pool with the ReLU fused in
            if hasattr(m, method):
                object.__setattr__(m, method, _recording(m, getattr(m, method), outputs))
                patched.append((m, method))
    try:
        with no_grad():
            model(np.zeros(shape, dtype or get_default_dtype()))
    finally:
        for m, method in patched:
            del m.__dict__[method]
    rows = [("Layer (type)", "Output Shape", "Param #")]
    for name, m in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        own = sum(p.data.size for p in m._parameters.values() if p is not None)
        label = "  " * depth + (f"{name} ({type(m).__name__})" if name else type(m).__name__)
        rows.append((label, outputs.get(id(m), "-"), f"{own:,}" if own else "--"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    rule = "=" * (sum(widths) + 4)
    lines = [rule, f"{rows[0][0]:<{widths[0]}}  {rows[0][1]:<{widths[1]}}  {rows[0][2]:>{widths[2]}}", rule]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows[1:]]
    total = sum(p.data.size for p in model.parameters())
    trainable = sum(p.data.size for p in model.parameters() if p.requires_grad)
    lines += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", rule]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
