"""One step of any model: explicit (its class defines backward) or forward-only (recorded mode).

    explicit:      logits = model(x);  loss = loss_fn(logits, y);  model.backward(loss_fn.backward())
    forward-only:  out = model(convgrad.tensor(x));  loss = loss_fn(out, y);  loss.backward()

A model is explicit when it differentiates itself (Module.has_backward: its class defines
`backward`, and a container's children all do); a forward-only model (or a Sequential holding
one) has only `forward`, and its operations record themselves on Tensors. Everything here returns plain ndarrays/floats to the caller, so the
Trainer and the tools never look at which kind of model they run.
"""
from __future__ import annotations

import numpy as np

from .nn.calls import free_caches
from .nn.module import Module


def is_explicit(model) -> bool:
    """Whether the model differentiates itself (Module.has_backward: its class defines backward, and
    a container's children all do); a model from before has_backward: its class defines backward."""
    has_backward = getattr(model, "has_backward", None)
    return has_backward() if callable(has_backward) else type(model).backward is not Module.backward


def _recorded():
    import convgrad
    if not hasattr(convgrad, "tensor"):
        raise TypeError("this model defines no backward, and this convgrad has no recorded mode "
                        "(convgrad.tensor) to differentiate it")
    return convgrad


def _array(value) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(getattr(value, "data", value))


def _scalar(value) -> float:
    return float(value.item()) if hasattr(value, "item") and not isinstance(value, float) else float(value)


def train_step(model, runner, loss_fn, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Forward and backward of one batch (parameter gradients accumulated, not applied).
    x (N, C, H, W), y (N,) -> (loss, logits (N, K) ndarray). `runner` runs an explicit model
    (e.g. DataParallel(model)); forward-only models run as themselves."""
    if is_explicit(model):
        logits = runner(x)
        loss = loss_fn(logits, y)
        grad = loss_fn.backward()
        with free_caches():                             # each layer's cache freed once used
            if hasattr(runner, "threads"):
                runner.backward(grad, input_grad=False)     # the images need no gradient
            else:
                runner.backward(grad)
        return _scalar(loss), _array(logits)
    cg = _recorded()
    out = model(cg.tensor(x))
    loss = loss_fn(out, y)
    loss.backward()
    return _scalar(loss), _array(out)


def logits(model, x: np.ndarray) -> np.ndarray:
    """The model's output for x as an ndarray, recording and keeping nothing for a backward."""
    cg = _recorded()
    with cg.no_grad():
        return _array(model(x) if is_explicit(model) else model(cg.tensor(x)))


def input_grad(model, x: np.ndarray, dlogits_fn) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, K), dL/dx (x's shape)) where dL/dlogits = dlogits_fn(logits): one backward pass.
    Parameter gradients are cleared afterwards (they are not wanted here)."""
    if is_explicit(model):
        out = _array(model(x))
        dx = model.backward(np.asarray(dlogits_fn(out), dtype=out.dtype))
        model.zero_grad()
        return out, np.asarray(dx)
    cg = _recorded()
    xt = cg.tensor(x, requires_grad=True)
    out = model(xt)
    values = _array(out)
    out.backward(cg.tensor(np.asarray(dlogits_fn(values), dtype=values.dtype)))
    model.zero_grad()
    return values, _array(xt.grad)
