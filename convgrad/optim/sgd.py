"""Stochastic gradient descent with momentum, Nesterov, dampening and weight decay (torch's rule)."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_bool, check_real


class SGD(Optimizer):
    """torch.optim.SGD. Per parameter, with g = grad (-grad if maximize)::

        g = g + weight_decay * p
        b = g (first step), else b = momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b            (when momentum != 0)
        p = p - lr * g

    State per parameter: "momentum_buffer" (only when momentum != 0).

    Example:
        >>> fc = nn.Linear(2, 1)
        >>> opt = cg.optim.SGD(fc.parameters(), lr=0.1, momentum=0.9)
        >>> before = fc.weight.data.copy()
        >>> y = fc(np.ones((1, 2), dtype=np.float32))
        >>> _ = fc.backward(np.ones_like(y))             # fills weight.grad and bias.grad
        >>> opt.step()                                   # p = p - lr * grad (the first step's buffer is grad)
        >>> bool(np.allclose(fc.weight.data, before - 0.1 * fc.weight.grad))
        True
        >>> opt.zero_grad()
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        for key in ("lr", "momentum", "weight_decay"):
            check_real("SGD", key, group[key], minimum=0.0)
        check_real("SGD", "dampening", group["dampening"])
        check_bool("SGD", "nesterov", group["nesterov"])
        check_bool("SGD", "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def step(self, closure=None):
        """One update of every parameter with a grad; returns closure() if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            momentum = float(group["momentum"])
            dampening = float(group["dampening"])
            weight_decay = float(group["weight_decay"])
            nesterov = bool(group["nesterov"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = self._grad(p, bool(group["maximize"]))
                if weight_decay != 0:
                    g = g + weight_decay * p.data
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g, dtype=p.data.dtype, copy=True)
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if nesterov else buf
                p.data -= lr * g
        return loss
